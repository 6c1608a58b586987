#!/usr/bin/env python3
"""Generate the JPEG decoder fixtures in testdata/images/jpeg/ for imageproc's JPEG decoder.

Every file here is decoded by Pillow 12.0.0 (its bundled libjpeg-turbo, default settings, as
transformers' BlipImageProcessor gets images) and jpeg/pillow.json records the SHA-256 of
Image.open(f).convert("RGB").tobytes() with the size, or Pillow's error for files it refuses.
The Go test (TestJPEGPillowExact) requires every pixel equal.

Requirements: the Python packages pinned in requirements.txt next to this file, and libjpeg-turbo's
command-line tools (cjpeg, jpegtran; Debian/Ubuntu package libjpeg-turbo-progs, 2.1.5 was used)
for what Pillow cannot write: 4:4:0, 4:1:1, 4:1:0 and unusual sampling factors, custom progressive
scan scripts, restart intervals in progressive files, arithmetic coding. Headers are also patched
byte-wise to reach every colour-space rule of libjpeg (Adobe transform, component IDs, no JFIF).

Run with the venv's python, e.g. `"$PYTHON" testdata/images/make_jpeg_fixtures.py`. The images are
deterministic (seeded numpy), so with the same versions the files come out byte-identical.
"""

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import PIL
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "jpeg")
sys.path.insert(0, HERE)
from make_fixtures import noise_img, photo, smooth  # noqa: E402  (same synthetic content)

CASES = []
BAD = []


def sha(b):
    return hashlib.sha256(b).hexdigest()


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def pil_jpeg(arr, **kw):
    b = io.BytesIO()
    mode = kw.pop("mode", None)
    im = Image.fromarray(arr) if mode is None else Image.fromarray(arr).convert(mode)
    im.save(b, "JPEG", **kw)
    return b.getvalue()


def cjpeg(arr, *args):
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "in.ppm")
        Image.fromarray(arr).save(src)
        return subprocess.run(["cjpeg", *args, src], check=True, capture_output=True).stdout


def jpegtran(data, *args, scans=None):
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "in.jpg")
        with open(src, "wb") as f:
            f.write(data)
        if scans is not None:
            sf = os.path.join(d, "scans.txt")
            with open(sf, "w") as f:
                f.write(scans)
            args = ("-scans", sf) + args
        return subprocess.run(["jpegtran", *args, src], check=True, capture_output=True).stdout


def segments(data):
    """(marker, start, end) of the marker segments before the first SOS."""
    out, p = [], 2
    while p < len(data):
        m = data[p + 1]
        n = int.from_bytes(data[p + 2 : p + 4], "big")
        out.append((m, p, p + 2 + n))
        if m == 0xDA:
            break
        p += 2 + n
    return out


def strip_markers(data, markers):
    segs = [s for s in segments(data) if s[0] in markers]
    for m, a, b in reversed(segs):
        data = data[:a] + data[b:]
    return data


def set_adobe_transform(data, t):
    for m, a, b in segments(data):
        if m == 0xEE and data[a + 4 : a + 9] == b"Adobe":
            return data[: a + 15] + bytes([t]) + data[a + 16 :]
    raise ValueError("no Adobe segment")


def set_component_ids(data, ids):
    """Renames the frame's components and the scans' references to them."""
    for m, a, b in segments(data):
        if m in (0xC0, 0xC1, 0xC2):
            nc = data[a + 9]
            old = [data[a + 10 + 3 * i] for i in range(nc)]
    remap = dict(zip(old, ids))
    buf = bytearray(data)
    p = 2
    while p < len(buf) - 1:
        if buf[p] != 0xFF or buf[p + 1] in (0x00, 0xFF) or 0xD0 <= buf[p + 1] <= 0xD9:
            p += 1
            continue
        m = buf[p + 1]
        n = int.from_bytes(buf[p + 2 : p + 4], "big")
        if m in (0xC0, 0xC1, 0xC2):
            for i in range(buf[p + 9]):
                buf[p + 10 + 3 * i] = remap[buf[p + 10 + 3 * i]]
        if m == 0xDA:
            for i in range(buf[p + 4]):
                buf[p + 5 + 2 * i] = remap[buf[p + 5 + 2 * i]]
        p += 2 + n
    return bytes(buf)


def pillow_rgb(data):
    im = Image.open(io.BytesIO(data))
    im.load()
    return im, im.convert("RGB").tobytes()


def case(name, data, note):
    write(name, data)
    im, rgb = pillow_rgb(data)
    CASES.append({"file": name, "width": im.size[0], "height": im.size[1], "pil_mode": im.mode,
                  "rgb_sha256": sha(rgb), "bytes": len(data), "note": note})


def bad(name, data, note):
    write(name, data)
    try:
        pillow_rgb(data)
        err = None
    except Exception as e:  # what Pillow says, for the record
        err = f"{type(e).__name__}: {e}"
    BAD.append({"file": name, "pillow_error": err, "note": note})


def main():
    got = {"pillow": PIL.__version__, "numpy": np.__version__}
    if got != {"pillow": "12.0.0", "numpy": "2.4.6"}:
        sys.exit(f"version mismatch: want pillow 12.0.0, numpy 2.4.6, got {got}")
    for tool in ("cjpeg", "jpegtran"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found (install libjpeg-turbo-progs)")
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))

    ph = photo(123, 77, seed=31, noise=5.0)
    nz = noise_img(64, 48, 32)
    sm = np.asarray(Image.fromarray(smooth(400, 300)).resize((131, 97), Image.Resampling.BICUBIC))
    p640 = np.asarray(Image.open(os.path.join(HERE, "photo_640x480.png")).convert("RGB"))
    big = np.asarray(Image.open(os.path.join(HERE, "big_1000x750.png")).convert("RGB"))

    # Pillow's writer: subsamplings, qualities, optimised tables, progressive, restarts.
    for sub, tag in ((0, "444"), (1, "422"), (2, "420")):
        case(f"photo_123x77_{tag}.jpg", pil_jpeg(ph, quality=80, subsampling=sub), f"Pillow {tag}")
        case(f"photo_123x77_{tag}_prog.jpg", pil_jpeg(ph, quality=80, subsampling=sub, progressive=True),
             f"Pillow progressive {tag} (libjpeg's simple progression: spectral selection and successive approximation)")
    for q in (1, 100):
        case(f"noise_64x48_420_q{q}.jpg", pil_jpeg(nz, quality=q, subsampling=2), f"quality {q}")
        case(f"photo_123x77_444_q{q}.jpg", pil_jpeg(ph, quality=q, subsampling=0), f"quality {q}")
    case("smooth_131x97_420_opt.jpg", pil_jpeg(sm, quality=90, optimize=True), "optimised Huffman tables")
    case("smooth_131x97_422_rst1.jpg", pil_jpeg(sm, quality=85, subsampling=1, restart_marker_blocks=1),
         "restart interval of 1 MCU")
    case("smooth_131x97_420_rstrow.jpg", pil_jpeg(sm, quality=85, restart_marker_rows=1), "restart every MCU row")
    case("smooth_131x97_gray.jpg", pil_jpeg(sm, quality=85, mode="L"), "grayscale")
    case("smooth_131x97_gray_prog.jpg", pil_jpeg(sm, quality=85, mode="L", progressive=True), "grayscale progressive")
    cmyk = pil_jpeg(sm, quality=90, mode="CMYK")
    case("smooth_131x97_cmyk.jpg", cmyk, "CMYK (Pillow writes inverted CMYK with an Adobe marker, transform 0)")
    case("smooth_131x97_ycck.jpg", set_adobe_transform(cmyk, 2), "the CMYK file relabelled YCCK (Adobe transform 2)")
    case("smooth_131x97_cmyk_noadobe.jpg", strip_markers(cmyk, {0xEE}), "4 components, no Adobe marker: CMYK")
    rgb = pil_jpeg(sm, quality=90, keep_rgb=True)
    case("smooth_131x97_rgb.jpg", rgb, "keep_rgb: RGB components, Adobe transform 0")
    case("smooth_131x97_rgb_as_ycc.jpg", set_adobe_transform(rgb, 1), "Adobe transform 1: YCbCr")
    jfif = pil_jpeg(sm, quality=90, subsampling=0)[2:20]  # SOI, then Pillow's 18-byte JFIF APP0
    assert jfif[:2] == b"\xff\xe0" and jfif[4:9] == b"JFIF\x00"
    case("smooth_131x97_rgb_jfif.jpg", rgb[:2] + jfif + rgb[2:],
         "JFIF and Adobe transform 0: JFIF wins, YCbCr (libjpeg's precedence)")
    nojfif = strip_markers(pil_jpeg(sm, quality=90, subsampling=0), {0xE0})
    case("smooth_131x97_nojfif.jpg", nojfif, "no JFIF, component IDs 1,2,3: YCbCr")
    case("smooth_131x97_nojfif_rgbids.jpg", set_component_ids(nojfif, b"RGB"), "no JFIF or Adobe, IDs 'R','G','B': RGB")
    case("smooth_131x97_nojfif_ids.jpg", set_component_ids(nojfif, b"\x07\x08\x09"), "no markers, other IDs: YCbCr")
    # Odd sizes, including the box-filter cases (subsampled width ≤ 2).
    for w, h in ((1, 1), (2, 2), (1, 7), (7, 1), (3, 3), (4, 9), (15, 17), (17, 15), (33, 9), (1000, 7), (7, 300)):
        src = photo(w, h, seed=w * 1000 + h)
        for sub, tag in ((2, "420"), (1, "422"), (0, "444")):
            if tag != "420" and (w, h) not in ((3, 3), (4, 9), (17, 15), (1000, 7)):
                continue
            case(f"odd_{w}x{h}_{tag}.jpg", pil_jpeg(src, quality=85, subsampling=sub), f"odd size {tag}")
    # The fixtures' photos.
    case("photo_640x480_420.jpg", pil_jpeg(p640, quality=75), "photo_640x480.png, quality 75, 4:2:0")
    case("big_1000x750_prog.jpg", pil_jpeg(big, quality=60, progressive=True, optimize=True),
         "big_1000x750.png, quality 60, progressive, optimised")

    # cjpeg / jpegtran (libjpeg-turbo) for what Pillow does not write.
    for samp, tag in (("1x2", "440"), ("4x1", "411"), ("4x2", "410"), ("2x1,1x2,1x1", "mixed"),
                      ("1x1,2x2,1x1", "chroma_bigger"), ("3x1", "311"), ("2x2,1x1,2x1", "h1v2")):
        case(f"photo_123x77_{tag}.jpg", cjpeg(ph, "-quality", "85", "-sample", samp), f"cjpeg -sample {samp}")
    case("smooth_131x97_gray_2x2.jpg", cjpeg(sm, "-grayscale", "-sample", "2x2"),
         "grayscale with sampling factors 2x2 (a non-interleaved scan of 8-row block rows)")
    case("odd_5x3_440.jpg", cjpeg(photo(5, 3, seed=53), "-sample", "1x2"), "cjpeg 4:4:0, odd size")
    case("odd_9x5_411.jpg", cjpeg(photo(9, 5, seed=95), "-sample", "4x1"), "cjpeg 4:1:1, odd size")
    base = pil_jpeg(ph, quality=85, subsampling=2)
    scans = ("0: 0-0, 0, 2;\n1: 0-0, 0, 1;\n2: 0-0, 0, 0;\n0: 0-0, 2, 1;\n0: 1-9, 0, 2;\n0: 0-0, 1, 0;\n"
             "2: 1-63, 0, 1;\n1: 1-63, 0, 0;\n0: 10-63, 0, 1;\n0: 1-9, 2, 1;\n0: 1-63, 1, 0;\n2: 1-63, 1, 0;\n")
    case("photo_123x77_420_scans.jpg", jpegtran(base, scans=scans),
         "jpegtran custom progression: non-interleaved DC, DC and AC successive approximation in several steps")
    case("photo_123x77_420_prog_rst.jpg", jpegtran(base, "-progressive", "-restart", "2B"),
         "progressive with a restart interval of 2")
    case("photo_123x77_420_rst3.jpg", jpegtran(base, "-restart", "3B"), "restart interval of 3 MCUs")
    case("photo_123x77_420_noopt.jpg", cjpeg(ph, "-quality", "85"), "cjpeg default tables")
    seq = jpegtran(base, scans="0: 0-63, 0, 0;\n1: 0-63, 0, 0;\n2: 0-63, 0, 0;\n")
    case("photo_123x77_420_3scans.jpg", seq, "sequential, one non-interleaved scan per component")
    sos = [i for i in range(len(seq) - 1) if seq[i] == 0xFF and seq[i + 1] == 0xDA]
    assert len(sos) == 3
    case("photo_123x77_420_noscan2.jpg", seq[: sos[2]] + b"\xff\xd9",
         "sequential, the Cr scan removed: that component decodes as zeros (mid-grey)")

    # Files Pillow refuses or that are damaged.
    p12 = bytearray(base)
    for m, a, b in segments(base):
        if m == 0xC0:
            p12[a + 4] = 12
    bad("bad_12bit.jpg", bytes(p12), "SOF declares 12-bit samples")
    bad("bad_arith.jpg", cjpeg(ph, "-arithmetic"), "arithmetic coding")
    bad("bad_truncated_half.jpg", base[: len(base) // 2], "half of a baseline file")
    prog = pil_jpeg(ph, quality=80, progressive=True)
    bad("bad_truncated_prog.jpg", prog[: 2 * len(prog) // 3], "progressive file cut inside a later scan")
    hdr = bytearray(base[: segments(base)[-1][2]])
    for m, a, b in segments(base):
        if m == 0xC0:
            hdr[a + 5 : a + 9] = b"\xff\xff\xff\xff"
    bad("bad_huge_65535x65535.jpg", bytes(hdr), "header declares 65535x65535, no data")
    bad("bad_noeoi.jpg", base[:-2], "complete scan, EOI marker missing (Pillow: truncated)")
    # Not bad for Pillow: an entropy segment cut short before a restart marker
    # (libjpeg pads with zeros and leaves the rest of the interval grey).
    rst = pil_jpeg(sm, quality=85, subsampling=1, restart_marker_rows=1)
    i = rst.index(b"\xff\xd1")
    case("smooth_131x97_422_short_interval.jpg", rst[: i - 40] + rst[i:],
         "40 bytes cut from the end of a restart interval: zero padding then grey")

    with open(os.path.join(OUT, "pillow.json"), "w") as f:
        json.dump({"generator": "testdata/images/make_jpeg_fixtures.py", "pillow": PIL.__version__,
                   "images": CASES, "bad": BAD}, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"{len(CASES)} images, {len(BAD)} bad files, {total} bytes in {OUT}")


if __name__ == "__main__":
    main()
