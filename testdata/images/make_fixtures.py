#!/usr/bin/env python3
"""Generate the image fixtures for github.com/blipcuda/blipcuda/imageproc.

Pinned versions (see requirements.txt next to this file):
    pillow==12.0.0  transformers==4.57.6  numpy==2.4.6  torch==2.15.0 (imported by transformers only)

Run from anywhere (it writes next to itself), with a Python that has requirements.txt, e.g.:
    python3 -m venv "$VENV" && "$VENV/bin/pip" install -r testdata/images/requirements.txt
    "$VENV/bin/python" testdata/images/make_fixtures.py

The script is deterministic: every image is synthesised from fixed formulas and a seeded
numpy Generator, and every encoder is called with fixed options, so rerunning it with the
pinned versions rewrites byte-identical files.

What it writes:
  * small test images of odd sizes and modes (PNG, GIF, BMP, WebP lossless/lossy, JPEG,
    a few deliberately bad files);
  * fixtures.json: for each image what Pillow / transformers' slow BlipImageProcessor
    produce: SHA-256 of convert("RGB") bytes, of the 384x384 bicubic resize and of the
    float32 pixel_values, plus sampled values; extra resize cases (hashes of PIL bicubic
    resizes to many target sizes, a few stored in full); extra processor configurations.
  * *.ref.png next to each JPEG: the RGB that Pillow (libjpeg-turbo) decodes, stored
    losslessly, so the Go tests can measure the decoder difference.
"""

import hashlib
import io
import json
import os
import struct
import sys
import zlib

import numpy as np
import PIL
from PIL import Image
import transformers
from transformers import BlipImageProcessor

HERE = os.path.dirname(os.path.abspath(__file__))
BICUBIC = Image.Resampling.BICUBIC

EXPECTED_VERSIONS = {"pillow": "12.0.0", "transformers": "4.57.6", "numpy": "2.4.6"}


def check_versions():
    got = {"pillow": PIL.__version__, "transformers": transformers.__version__, "numpy": np.__version__}
    if got != EXPECTED_VERSIONS:
        sys.exit(f"version mismatch: want {EXPECTED_VERSIONS}, got {got}")


def sha(b):
    return hashlib.sha256(b).hexdigest()


def rng(seed):
    return np.random.default_rng(seed)


def u8(a):
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- synthetic content

def photo(w, h, seed, noise=6.0):
    """Photo-like RGB content: smooth gradients, some oriented texture, mild noise."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    u = x / max(w - 1, 1)
    v = y / max(h - 1, 1)
    r = 128 + 100 * np.sin(2 * np.pi * (1.3 * u + 0.2 * v)) * np.cos(2 * np.pi * 0.7 * v)
    g = 230 * u * v + 25 * np.sin(x / 3.0)
    b = 200 * (1 - u) + 40 * np.cos(y / 2.5 + x / 7.0)
    img = np.stack([r, g, b], -1)
    if noise:
        img = img + rng(seed).normal(0, noise, img.shape)
    return u8(img)


def smooth(w, h):
    """Large synthetic content that compresses well as PNG: integer ramps (stairs, no rounding
    noise), a triangle wave, thin dark lines, an inverted checker corner and two flat disks
    (sharp edges exercise the bicubic overshoot and clipping)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.int64)
    r = 40 + (x * 180) // max(w - 1, 1)
    g = 40 + (y * 180) // max(h - 1, 1)
    t = (2 * x + y) % 256
    b = 60 + np.minimum(t, 255 - t)
    img = np.stack([r, g, b], -1)
    lines = (x % 16 == 0) | (y % 23 == 0)
    img[lines] = img[lines] // 2
    checker = (((x // 4) + (y // 4)) % 2 == 0) & (x < w // 8) & (y < h // 8)
    img[checker] = 255 - img[checker]
    for cx, cy, rad, col in ((0.6, 0.4, 0.15, (250, 240, 20)), (0.3, 0.7, 0.1, (10, 20, 200))):
        disk = (x - cx * w) ** 2 + (y - cy * h) ** 2 < (rad * min(w, h)) ** 2
        img[disk] = col
    return img.astype(np.uint8)


def noise_img(w, h, seed):
    return rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ---------------------------------------------------------------- raw PNG writer (16-bit modes)

def png_bytes(w, h, color_type, bit_depth, rows, plte=b"", trns=b""):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + r for r in rows)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0))
    if plte:
        out += chunk(b"PLTE", plte)
    if trns:
        out += chunk(b"tRNS", trns)
    return out + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def png16(arr, color_type, trns=b""):
    """arr: uint16 array (h, w) or (h, w, c), big-endian encoded."""
    h, w = arr.shape[:2]
    rows = [arr[i].astype(">u2").tobytes() for i in range(h)]
    return png_bytes(w, h, color_type, 16, rows, trns=trns)


# ---------------------------------------------------------------- writing helpers

FILES = {}


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
    FILES[name] = len(data)


def save(im, name, fmt, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    write(name, b.getvalue())


# ---------------------------------------------------------------- reference pipeline

PROC = BlipImageProcessor()  # defaults == the BLIP checkpoints' preprocessor_config.json
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def processor_values(proc, im):
    """pixel_values[0] as transformers computes them. transformers infers the channel axis from the
    array shape and guesses channels-first when the height is 1 or 3; for those images we pass
    input_data_format="channels_last" (what the image really is) and record a note."""
    h = im.size[1]
    kw = {}
    if h in (1, 3):
        kw["input_data_format"] = "channels_last"
    out = proc(im, return_tensors="np", **kw)["pixel_values"][0]
    assert out.dtype == np.float32
    return out, bool(kw)


def samples_chw(pv, k=8):
    c, h, w = pv.shape
    pos = [(0, 0, 0), (1, h // 2, w // 2), (2, h - 1, w - 1), (0, h - 1, 0), (1, 0, w - 1)]
    r = rng(1234)
    while len(pos) < k:
        pos.append((int(r.integers(0, c)), int(r.integers(0, h)), int(r.integers(0, w))))
    out = []
    for cc, yy, xx in pos:
        v = np.float32(pv[cc, yy, xx])
        out.append({"c": cc, "y": yy, "x": xx, "v": float(v), "bits": int(v.view(np.uint32))})
    return out


def samples_hwc(a, k=6):
    h, w, _ = a.shape
    pos = [(0, 0), (h // 2, w // 2), (h - 1, w - 1)]
    r = rng(99)
    while len(pos) < k:
        pos.append((int(r.integers(0, h)), int(r.integers(0, w))))
    return [{"y": yy, "x": xx, "rgb": a[yy, xx].tolist()} for yy, xx in pos]


def reference(name, kind="exact", note=None, ref=None):
    """Open name with Pillow and record the reference pipeline."""
    im = Image.open(os.path.join(HERE, name))
    mode = im.mode
    size = im.size
    rgb = im.convert("RGB") if im.mode != "RGB" else im
    rgb_arr = np.asarray(rgb)
    resized = rgb.resize((384, 384), BICUBIC)
    res_arr = np.asarray(resized)
    pv, chlast = processor_values(PROC, im)
    # sanity: our understanding of the processor (rescale in float64 -> f32, normalize in f32)
    x = (res_arr.astype(np.float64) * (1 / 255)).astype(np.float32)
    manual = ((x - MEAN) / STD).transpose(2, 0, 1)
    assert np.array_equal(manual.view(np.uint32), pv.view(np.uint32)), name
    e = {
        "file": name,
        "kind": kind,
        "pil_mode": mode,
        "width": size[0],
        "height": size[1],
        "rgb_sha256": sha(np.ascontiguousarray(rgb_arr).tobytes()),
        "resized_sha256": sha(np.ascontiguousarray(res_arr).tobytes()),
        "pixel_values_sha256": sha(np.ascontiguousarray(pv).tobytes()),
        "resized_samples": samples_hwc(res_arr),
        "pixel_values_samples": samples_chw(pv),
    }
    if ref:
        e["ref"] = ref
    notes = []
    if note:
        notes.append(note)
    if chlast:
        notes.append("transformers guesses channels-first for height 1 or 3; generated with input_data_format=channels_last")
    if notes:
        e["note"] = "; ".join(notes)
    return e


def lossy_with_ref(name, im_rgb_source_name, save_fn):
    """Write a lossy file plus a PNG of Pillow's decode of it; the ref PNG gets an exact entry."""
    save_fn()
    dec = Image.open(os.path.join(HERE, name))
    dec.load()
    ref_name = name + ".ref.png"
    save(dec.convert("RGB") if dec.mode not in ("RGB", "L") else dec, ref_name, "PNG", optimize=True)
    return ref_name


# ---------------------------------------------------------------- main

def main():
    check_versions()
    for f in os.listdir(HERE):
        if f.endswith((".png", ".gif", ".bmp", ".webp", ".jpg", ".bin", ".json")):
            os.remove(os.path.join(HERE, f))

    entries = []
    exact = []  # names of exactly reproducible images

    def add(name, **kw):
        entries.append(reference(name, **kw))

    # --- RGB PNGs of various geometries
    geoms = {
        "photo_97x71": (97, 71),
        "tiny_1x1": (1, 1),
        "col_1x57": (1, 57),
        "row_57x1": (57, 1),
        "rows3_40x3": (40, 3),
        "tall_7x500": (7, 500),
        "wide_500x7": (500, 7),
        "up_50x37": (50, 37),
        "mixed_600x200": (600, 200),
        "mixed_150x900": (150, 900),
        "exact_384x384": (384, 384),
        "samew_384x500": (384, 500),
        "sameh_410x384": (410, 384),
        "extreme_2000x5": (2000, 5),
        "extreme_4x1500": (4, 1500),
        "photo_640x480": (640, 480),
    }
    for i, (n, (w, h)) in enumerate(geoms.items()):
        arr = photo(w, h, seed=10 + i) if w * h <= 20000 else smooth(w, h)
        save(Image.fromarray(arr, "RGB"), n + ".png", "PNG", optimize=True)
        add(n + ".png")
    save(Image.fromarray(smooth(1000, 750), "RGB"), "big_1000x750.png", "PNG", optimize=True)
    add("big_1000x750.png")
    save(Image.fromarray(noise_img(64, 48, 7), "RGB"), "noise_64x48.png", "PNG")
    add("noise_64x48.png")

    # --- other modes
    base = photo(61, 47, seed=3)
    a = np.zeros((47, 61), np.uint8)
    a[:, :] = (np.arange(61)[None, :] * 255 // 60).astype(np.uint8)
    a[:10, :] = 0  # fully transparent band: colours there must survive (alpha dropped, not composited)
    a[-6:, :] = 255
    rgba = Image.fromarray(np.dstack([base, a]), "RGBA")
    save(rgba, "rgba_61x47.png", "PNG", optimize=True)
    add("rgba_61x47.png")

    pimg = Image.fromarray(photo(45, 33, seed=4), "RGB").quantize(colors=37, method=Image.Quantize.MEDIANCUT)
    save(pimg, "p_45x33.png", "PNG")
    add("p_45x33.png")
    # palette with a tRNS chunk (per-entry alpha): alpha must be ignored, palette RGB kept
    ptr = pimg.copy()
    ptr.info["transparency"] = bytes([0, 64, 128, 200] + [255] * 4)
    save(ptr, "p_trns_45x33.png", "PNG", transparency=bytes([0, 64, 128, 200] + [255] * 4))
    add("p_trns_45x33.png")

    gray = Image.fromarray(photo(53, 29, seed=5)[:, :, 1], "L")
    save(gray, "l_53x29.png", "PNG")
    add("l_53x29.png")
    la = Image.merge("LA", [gray, Image.fromarray(a[:29, :53], "L")])
    save(la, "la_53x29.png", "PNG")
    add("la_53x29.png")
    bw = gray.point(lambda v: 255 if v > 110 else 0).convert("1")
    save(bw, "bw_53x29.png", "PNG")
    add("bw_53x29.png")

    # 16-bit PNGs (raw writer): Pillow opens 16-bit grey as I;16 and clips to 255 in convert("RGB");
    # 16-bit RGB/RGBA/LA keep the high byte.
    r16 = rng(6)
    g16 = (np.linspace(0, 400, 37 * 23).reshape(23, 37) + r16.integers(0, 30, (23, 37))).astype(np.uint16)
    g16[0, :5] = [0, 255, 256, 4660, 65535]
    write("i16_37x23.png", png16(g16, 0))
    add("i16_37x23.png", note="Pillow I;16 -> RGB clips values above 255")
    write("i16trns_37x23.png", png16(g16, 0, trns=struct.pack(">H", 100)))
    add("i16trns_37x23.png")
    rgb16 = (photo(31, 19, seed=8).astype(np.uint16) * 257 + r16.integers(0, 256, (19, 31, 3))).astype(np.uint16)
    write("rgb16_31x19.png", png16(rgb16, 2))
    add("rgb16_31x19.png")
    a16 = (np.arange(31 * 19).reshape(19, 31) * 111 % 65536).astype(np.uint16)
    write("rgba16_31x19.png", png16(np.dstack([rgb16, a16]), 6))
    add("rgba16_31x19.png")
    write("la16_31x19.png", png16(np.dstack([rgb16[:, :, 0], a16]), 4))
    add("la16_31x19.png")
    # 8-bit RGB with a tRNS colour key, and sub-8-bit grey
    rgbk = photo(20, 14, seed=9)
    rgbk[2:5, 2:5] = [10, 20, 30]
    write("rgbtrns_20x14.png", png_bytes(20, 14, 2, 8, [rgbk[i].tobytes() for i in range(14)], trns=struct.pack(">HHH", 10, 20, 30)))
    add("rgbtrns_20x14.png")
    g2 = rng(10).integers(0, 256, (9, 4), dtype=np.uint8)  # 16 px per row at 2 bits
    write("g2_16x9.png", png_bytes(16, 9, 0, 2, [g2[i].tobytes() for i in range(9)]))
    add("g2_16x9.png")

    # --- same content in other containers
    src = Image.open(os.path.join(HERE, "photo_97x71.png")).convert("RGB")
    save(src, "photo_97x71.gif", "GIF")
    add("photo_97x71.gif")
    save(src, "photo_97x71.bmp", "BMP")
    add("photo_97x71.bmp")
    save(src, "photo_97x71.webp", "WEBP", lossless=True, quality=100, method=4)
    add("photo_97x71.webp")
    save(rgba, "rgba_61x47.webp", "WEBP", lossless=True, exact=True, quality=100, method=4)
    add("rgba_61x47.webp")
    save(rgba, "rgba_61x47.bmp", "BMP")
    add("rgba_61x47.bmp")
    save(rgba, "rgba_61x47.gif", "GIF")
    add("rgba_61x47.gif")
    save(pimg, "p_45x33.bmp", "BMP")
    add("p_45x33.bmp")
    save(ptr, "p_trns_45x33.gif", "GIF", transparency=2)
    add("p_trns_45x33.gif", note="the transparent palette entry keeps its RGB in Pillow")
    save(gray, "l_53x29.gif", "GIF")
    add("l_53x29.gif")
    save(gray, "l_53x29.bmp", "BMP")
    add("l_53x29.bmp")
    save(bw, "bw_53x29.bmp", "BMP")
    add("bw_53x29.bmp")
    save(Image.open(os.path.join(HERE, "tall_7x500.png")), "tall_7x500.webp", "WEBP", lossless=True, quality=100)
    add("tall_7x500.webp")
    save(Image.open(os.path.join(HERE, "up_50x37.png")), "up_50x37.bmp", "BMP")
    add("up_50x37.bmp")
    save(Image.open(os.path.join(HERE, "up_50x37.png")), "up_50x37.gif", "GIF")
    add("up_50x37.gif")

    # GIF whose first frame is smaller than the logical screen (Pillow fills with the
    # transparency index, or index 0): patch a 30x20 GIF to a 34x25 screen, frame at (3,2).
    small = Image.fromarray(photo(30, 20, seed=11), "RGB").quantize(colors=16)
    for trns, nm in ((None, "gif_offset_34x25.gif"), (5, "gif_offset_trns_34x25.gif")):
        b = io.BytesIO()
        kw = {} if trns is None else {"transparency": trns}
        small.save(b, "GIF", **kw)
        d = bytearray(b.getvalue())
        d[6:10] = struct.pack("<HH", 34, 25)
        pos = d.index(b"\x2c", 13 + 3 * (2 << (d[10] & 7)))
        assert struct.unpack("<HHHH", d[pos + 1:pos + 9]) == (0, 0, 30, 20)
        d[pos + 1:pos + 5] = struct.pack("<HH", 3, 2)
        write(nm, bytes(d))
        add(nm)

    # --- lossy formats: reference PNGs hold Pillow's decode
    jpeg_src = {
        "jpg_photo_200x150": photo(200, 150, seed=12, noise=4.0),
        "jpg_noisy_96x64": noise_img(96, 64, 13),
        "jpg_smooth_160x120": np.asarray(Image.fromarray(smooth(1000, 750)).resize((160, 120), BICUBIC)),
    }
    for n, arr in jpeg_src.items():
        im = Image.fromarray(arr, "RGB")
        for sub, tag in ((0, "444"), (2, "420")):
            name = f"{n}_{tag}.jpg"
            ref = lossy_with_ref(name, n, lambda: save(im, name, "JPEG", quality=90, subsampling=sub, optimize=False, progressive=False))
            add(ref, note="Pillow decode of " + name)
            add(name, kind="jpeg", ref=ref)
    # odd sizes and other subsamplings exercise the chroma upsampling edges
    # (libjpeg-turbo uses the box filter when the subsampled width is <= 2)
    for (w, h, sub, tag) in ((97, 71, 2, "420"), (97, 71, 1, "422"), (5, 9, 2, "420"), (3, 5, 2, "420"),
                             (1, 1, 2, "420"), (6, 7, 1, "422")):
        name = f"jpg_odd_{w}x{h}_{tag}.jpg"
        im = Image.fromarray(photo(w, h, seed=16 + w), "RGB")
        ref = lossy_with_ref(name, "", lambda: save(im, name, "JPEG", quality=90, subsampling=sub))
        add(ref, note="Pillow decode of " + name)
        add(name, kind="jpeg", ref=ref)
    # JPEGs of flat 16x16 blocks at quality 100 have DC-only blocks, which Go's IDCT and
    # libjpeg-turbo's decode identically; what is left to compare is chroma upsampling and
    # colour conversion, which the Go side reproduces, so these are exact fixtures.
    r = rng(17)
    for sub, tag in ((2, "420"), (1, "422"), (0, "444")):
        c = r.integers(0, 256, (5, 6, 3), dtype=np.uint8)
        blocks = c.repeat(16, 0).repeat(16, 1)[:77, :93]
        name = f"jpg_blocks_93x77_{tag}.jpg"
        save(Image.fromarray(blocks, "RGB"), name, "JPEG", quality=100, subsampling=sub)
        add(name, note="DC-only JPEG: exact")
    name = "jpg_photo_200x150_prog.jpg"
    ref = lossy_with_ref(name, "", lambda: save(Image.fromarray(jpeg_src["jpg_photo_200x150"]), name, "JPEG", quality=85, progressive=True))
    add(ref, note="Pillow decode of " + name)
    add(name, kind="jpeg", ref=ref)
    name = "jpg_gray_53x29.jpg"
    ref = lossy_with_ref(name, "", lambda: save(gray, name, "JPEG", quality=90))
    add(ref, note="Pillow decode of " + name)
    add(name, kind="jpeg", ref=ref)
    name = "jpg_cmyk_61x47.jpg"
    ref = lossy_with_ref(name, "", lambda: save(Image.fromarray(base, "RGB").convert("CMYK"), name, "JPEG", quality=95))
    add(ref, note="Pillow decode of " + name + " converted to RGB")
    add(name, kind="jpeg", ref=ref)
    # Lossy WebP: VP8 decoding is exact integer arithmetic, and the Go side reproduces
    # libwebp's fancy chroma upsampling and YUV->RGB, so these are exact fixtures too.
    save(src, "webp_lossy_97x71.webp", "WEBP", quality=90, method=4)
    add("webp_lossy_97x71.webp", note="lossy WebP")
    save(Image.fromarray(photo(64, 48, seed=14), "RGB"), "webp_lossy_64x48.webp", "WEBP", quality=75, method=4)
    add("webp_lossy_64x48.webp", note="lossy WebP, even size")
    save(Image.fromarray(jpeg_src["jpg_photo_200x150"]), "webp_lossy_200x150.webp", "WEBP", quality=40, method=6)
    add("webp_lossy_200x150.webp", note="lossy WebP, several macroblock rows")
    save(Image.fromarray(photo(3, 5, seed=15), "RGB"), "webp_lossy_3x5.webp", "WEBP", quality=90)
    add("webp_lossy_3x5.webp", note="lossy WebP, tiny odd size")
    save(rgba, "webp_lossy_alpha_61x47.webp", "WEBP", quality=80, method=4)
    add("webp_lossy_alpha_61x47.webp", note="lossy WebP with alpha (VP8X + ALPH)")

    # --- bad files
    write("bad_empty.png", b"")
    good = open(os.path.join(HERE, "photo_97x71.png"), "rb").read()
    write("bad_truncated.png", good[: len(good) // 2])
    write("bad_text.jpg", b"this is not a JPEG file, just some text\n" * 3)
    jp = open(os.path.join(HERE, "jpg_photo_200x150_444.jpg"), "rb").read()
    write("bad_truncated.jpg", jp[: len(jp) // 3])
    gf = open(os.path.join(HERE, "photo_97x71.gif"), "rb").read()
    write("bad_truncated.gif", gf[: len(gf) // 2])
    write("bad_header_only.png", good[:33])
    # a valid PNG header declaring 100000x100000 RGB (10^10 px) followed by a tiny IDAT
    write("bad_huge_100000x100000.png", png_bytes(100000, 100000, 2, 8, [b"\x00\x00\x00"]))
    write("bad_zero_0x10.bmp", b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, 0, 10, 1, 24, 0, 0, 0, 0, 0, 0))
    bad = []
    for n in sorted(f for f in FILES if f.startswith("bad_")):
        im_ok = True
        try:
            with Image.open(os.path.join(HERE, n)) as im:
                im.load()
        except Exception as e:  # noqa: BLE001 - we only record what Pillow says
            im_ok = False
            msg = f"{type(e).__name__}: {e}"
        bad.append({"file": n, "pillow_error": None if im_ok else msg[:200]})

    # --- extra resize cases: PIL bicubic to many target sizes (hashes), a few in full
    targets = [(1, 1), (1, 7), (7, 1), (2, 2), (3, 5), (17, 9), (40, 60), (97, 71), (97, 200), (300, 71),
               (383, 385), (384, 384), (1000, 3), (3, 700), (200, 150), (130, 97)]
    resize_cases = []
    for n in ["photo_97x71.png", "noise_64x48.png", "tiny_1x1.png", "col_1x57.png", "row_57x1.png",
              "tall_7x500.png", "big_1000x750.png", "extreme_2000x5.png", "rgba_61x47.png"]:
        im = Image.open(os.path.join(HERE, n)).convert("RGB")
        for (w, h) in targets:
            out = np.asarray(im.resize((w, h), BICUBIC))
            resize_cases.append({"file": n, "width": w, "height": h, "sha256": sha(out.tobytes())})
    r = rng(2024)
    noise = Image.open(os.path.join(HERE, "noise_64x48.png")).convert("RGB")
    for _ in range(150):
        w, h = int(r.integers(1, 260)), int(r.integers(1, 260))
        out = np.asarray(noise.resize((w, h), BICUBIC))
        resize_cases.append({"file": "noise_64x48.png", "width": w, "height": h, "sha256": sha(out.tobytes())})
    full = []
    for n, (w, h) in [("noise_64x48.png", (17, 9)), ("photo_97x71.png", (40, 60)), ("tall_7x500.png", (9, 17)),
                      ("tiny_1x1.png", (3, 2))]:
        im = Image.open(os.path.join(HERE, n)).convert("RGB")
        out = np.asarray(im.resize((w, h), BICUBIC))
        full.append({"file": n, "width": w, "height": h, "rgb": out.reshape(-1).tolist()})

    # --- other processor configurations on one image
    cfgs = [
        {"size": {"height": 224, "width": 160}},
        {"size": 96, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]},
        {"do_normalize": False},
        {"do_rescale": False},
        {"do_rescale": False, "do_normalize": False},
        {"do_resize": False},
        {"rescale_factor": 0.0039, "image_mean": 0.45, "image_std": 0.27},
    ]
    config_cases = []
    for n in ["photo_97x71.png", "rgba_61x47.png"]:
        for c in cfgs:
            proc = BlipImageProcessor(**c)
            pv = proc(Image.open(os.path.join(HERE, n)), return_tensors="np")["pixel_values"][0]
            config_cases.append({"file": n, "config": c, "shape": list(pv.shape), "dtype": str(pv.dtype),
                                 "pixel_values_sha256": sha(np.ascontiguousarray(pv.astype(np.float32)).tobytes())})

    meta = {
        "generator": "make_fixtures.py",
        "versions": {"pillow": PIL.__version__, "transformers": transformers.__version__, "numpy": np.__version__},
        "processor": "transformers BlipImageProcessor() (slow, PIL path), defaults: 384x384 bicubic, 1/255, CLIP mean/std",
        "hashes": "sha256 of: rgb = np.asarray(im.convert('RGB')) HWC uint8; resized = rgb.resize((384,384), BICUBIC) HWC uint8; pixel_values = float32 CHW, native little-endian",
        "images": entries,
        "bad": bad,
        "resize_cases": resize_cases,
        "resize_full": full,
        "config_cases": config_cases,
    }
    with open(os.path.join(HERE, "fixtures.json"), "w") as f:
        # one JSON value per line keeps the file small and diffs readable
        f.write("{\n")
        items = list(meta.items())
        for i, (k, v) in enumerate(items):
            if isinstance(v, list):
                f.write(json.dumps(k) + ": [\n")
                f.write(",\n".join(json.dumps(e, separators=(",", ":")) for e in v))
                f.write("\n]")
            else:
                f.write(json.dumps(k) + ": " + json.dumps(v))
            f.write(",\n" if i < len(items) - 1 else "\n")
        f.write("}\n")
    total = sum(os.path.getsize(os.path.join(HERE, f)) for f in os.listdir(HERE))
    print(f"{len(entries)} images, {len(resize_cases)} resize cases, total size of directory {total} bytes")


if __name__ == "__main__":
    main()
