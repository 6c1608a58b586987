#!/usr/bin/env python3
"""Reference fixtures for blipcuda's model parity tests, made by transformers itself.

What it writes (all under testdata/models/):
  tiny-base/     a tiny random BlipForImageTextRetrieval whose vision and text
                 widths are equal (like the ViT-B/16 checkpoints), in Hub
                 layout: config.json, preprocessor_config.json,
                 model.safetensors, tokenizer.json, tokenizer_config.json,
                 special_tokens_map.json, vocab.txt.
  tiny-large/    a tiny random model whose vision width differs from its text
                 width (like the ViT-L/16 checkpoints), saved as
                 pytorch_model.bin only (torch.save of a state dict that also
                 holds text_encoder.embeddings.position_ids, as the December
                 2022 uploads do), a config.json that omits
                 text_config.num_attention_heads (so transformers' default of
                 8 applies, the base-flickr pitfall), and vocab.txt only.
  images/        the three small PNG images the references are computed on.
  jpeg/photo.jpg a photo-like JPEG (4:2:0, quality 75), computed on separately
                 under "jpeg" (hf protocol) to check JPEG decoding end to end.
  expected.json  per model: the images' pixel_values SHA-256, the texts, and
                 under both protocols ("hf": exactly BlipForImageTextRetrieval;
                 "blip": BLIP's pre_caption cleaning, at most 35 tokens, [ENC]
                 at position 0 for ITM) the token ids, ITM logits for every
                 image × text, the ITC matrix, and the ITC embeddings.
  <model>/activations.safetensors  per-layer activations of image 0 and of
                 text 0 (text-only and against image 0), hf protocol.
  configs/       the real base and large architectures (BlipConfig with the
                 published dimensions) and their parameter counts.

Everything runs on the CPU in float32 with fixed seeds, so rerunning gives the
same files. Run from the repository root:

    python3 -m venv /tmp/blipfix && /tmp/blipfix/bin/pip install -r testdata/models/requirements.txt
    /tmp/blipfix/bin/python testdata/models/make_fixtures.py

Pinned: torch 2.15.0, transformers 4.57.6, pillow 12.0.0, safetensors 0.8.0
(requirements.txt). The vocabulary is the real bert-base-uncased one, read from
testdata/tokenizer/bert-base-uncased/vocab.txt.
"""

import copy
import hashlib
import json
import math
import os
import re
import shutil
import sys

import numpy as np
import torch
from PIL import Image, ImageDraw
from safetensors.torch import save_file
from transformers import (BlipConfig, BlipForImageTextRetrieval, BlipImageProcessor,
                          BertTokenizer, BertTokenizerFast)

ROOT = os.path.dirname(os.path.abspath(__file__))
VOCAB = os.path.join(ROOT, "..", "tokenizer", "bert-base-uncased", "vocab.txt")
ENC = 30523

TEXTS = [
    "A woman and her dog sitting on a beach.",
    "a red bus driving down a city street",
    "Two cats sleeping on a couch!",
    "An old man (with a hat) reads: \"the news\"; then sleeps...",
    "Café au lait on a wooden table, naïve art in the background",
    "a bowl of ramen 拉面 with chopsticks",
    "   extra   spaces\tand\ttabs   ",
    "a very long caption that goes on and on about a picture of a kitchen with a stove an oven "
    "a refrigerator a sink a window a table four chairs a cat a dog a bowl of fruit and a clock "
    "on the wall next to a calendar",
]


def pre_caption(caption, max_words=30):
    """salesforce/BLIP data/utils.py pre_caption, verbatim in behaviour."""
    caption = re.sub(r"([.!\"()*#:;~])", " ", caption.lower())
    caption = re.sub(r"\s{2,}", " ", caption)
    caption = caption.rstrip("\n")
    caption = caption.strip(" ")
    words = caption.split(" ")
    if len(words) > max_words:
        caption = " ".join(words[:max_words])
    return caption


JPEG_IMAGE = "jpeg/photo.jpg"  # relative to testdata/models (not in images/, which tools scan)


def make_images(d):
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(7)
    paths = []
    # 1: a smooth RGB gradient with shapes, landscape, upscaled to 384.
    w, h = 96, 64
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.stack([xx * 255 // (w - 1), yy * 255 // (h - 1), (xx + yy) * 255 // (w + h - 2)], -1).astype(np.uint8)
    im = Image.fromarray(arr, "RGB")
    dr = ImageDraw.Draw(im)
    dr.ellipse([20, 10, 60, 50], fill=(250, 240, 30))
    dr.rectangle([65, 30, 90, 60], fill=(20, 30, 200))
    paths.append(("scene.png", im))
    # 2: a portrait image with blocky texture.
    small = rng.integers(0, 256, size=(10, 6, 3), dtype=np.uint8)
    im = Image.fromarray(small, "RGB").resize((60, 100), Image.NEAREST)
    paths.append(("blocks.png", im))
    # 3: an RGBA image (alpha dropped by convert("RGB")), downscaled.
    w, h = 500, 420
    yy, xx = np.mgrid[0:h, 0:w]
    r = (128 + 127 * np.sin(xx / 23.0)).astype(np.uint8)
    g = (128 + 127 * np.cos(yy / 17.0)).astype(np.uint8)
    b = ((xx * yy) % 256).astype(np.uint8)
    a = (xx % 256).astype(np.uint8)
    im = Image.fromarray(np.stack([r, g, b, a], -1), "RGBA")
    paths.append(("waves_rgba.png", im))
    out = []
    for name, im in paths:
        p = os.path.join(d, name)
        im.save(p, optimize=True)
        out.append(name)
    return out


def randomize(model, seed):
    """Re-draw every parameter so that activations are O(1) and attention is
    far from uniform (transformers' own init uses std 1e-10 for the vision
    tower, which would make the test trivial)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("LayerNorm.weight") or ("layer_norm" in name and name.endswith(".weight")) \
                    or name.endswith("post_layernorm.weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() >= 2 and "embedding" not in name:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))
            else:
                p.copy_(torch.randn(p.shape, generator=g))


def pad_batch(tok, texts, max_length=None):
    enc = tok(texts, padding=True, truncation=max_length is not None, max_length=max_length,
              return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


def f32list(t):
    return [float(x) for x in t.reshape(-1).tolist()]


def run_protocol(model, tok, pixel_values, texts, protocol):
    if protocol == "hf":
        ids, mask = pad_batch(tok, texts)
        cleaned = texts
    else:
        cleaned = [pre_caption(t, 30) for t in texts]
        ids, mask = pad_batch(tok, cleaned, max_length=35)
    itm_ids = ids.clone()
    if protocol == "blip":
        itm_ids[:, 0] = ENC
    n_img, n_txt = pixel_values.shape[0], len(texts)
    logits = torch.zeros(n_img, n_txt, 2, dtype=pixel_values.dtype)
    with torch.no_grad():
        for i in range(n_img):
            px = pixel_values[i:i + 1].repeat(n_txt, 1, 1, 1)
            out = model(input_ids=itm_ids, attention_mask=mask, pixel_values=px, use_itm_head=True)
            logits[i] = out.itm_score
        itc = model(input_ids=ids, attention_mask=mask, pixel_values=pixel_values, use_itm_head=False).itm_score
        # The embeddings themselves, the way the model computes them.
        vis = model.vision_model(pixel_values=pixel_values).last_hidden_state
        img_emb = torch.nn.functional.normalize(model.vision_proj(vis[:, 0, :]), dim=-1)
        txt = model.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        txt_emb = torch.nn.functional.normalize(model.text_proj(txt[:, 0, :]), dim=-1)
    lengths = mask.sum(1).tolist()
    return {
        "texts": cleaned,
        "input_ids": [ids[j, :lengths[j]].tolist() for j in range(n_txt)],
        "itm_input_ids": [itm_ids[j, :lengths[j]].tolist() for j in range(n_txt)],
        "itm_logits": f32list(logits.float()),
        "itm_prob": f32list(torch.softmax(logits.float(), -1)[..., 1]),
        "itc": f32list(itc.float()),
        "image_embeds": f32list(img_emb.float()),
        "text_embeds": f32list(txt_emb.float()),
    }


def half_protocol(model, tok, pixel_values, texts, dtype):
    """transformers' own results with the model and pixels cast to dtype (the
    "blip" protocol, CPU): how far half precision itself moves P(match) and ITC
    from float32, the bar blipcuda's float16/bfloat16 are held to."""
    m = copy.deepcopy(model).to(dtype)
    r = run_protocol(m, tok, pixel_values.to(dtype), texts, "blip")
    return {k: r[k] for k in ("itm_logits", "itm_prob", "itc")}


def activations(model, tok, pixel_values, text):
    ids, mask = pad_batch(tok, [text])
    acts = {}
    with torch.no_grad():
        v = model.vision_model(pixel_values=pixel_values[:1], output_hidden_states=True)
        acts["vision.embeddings"] = v.hidden_states[0]
        for i, h in enumerate(v.hidden_states[1:]):
            acts[f"vision.layer.{i}"] = h
        acts["vision.post_layernorm"] = v.last_hidden_state
        t = model.text_encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        acts["text.embeddings"] = t.hidden_states[0]
        for i, h in enumerate(t.hidden_states[1:]):
            acts[f"text.layer.{i}"] = h
        img = v.last_hidden_state
        mm = model.text_encoder(input_ids=ids, attention_mask=mask, encoder_hidden_states=img,
                                encoder_attention_mask=torch.ones(img.shape[:-1], dtype=torch.long),
                                output_hidden_states=True)
        acts["multimodal.embeddings"] = mm.hidden_states[0]
        for i, h in enumerate(mm.hidden_states[1:]):
            acts[f"multimodal.layer.{i}"] = h
    return {k: v.contiguous().float() for k, v in acts.items()}


def make_jpeg():
    """A photo-like JPEG as cameras and COCO store them (4:2:0, quality 75,
    Pillow's defaults), not an upscale: gradients, shapes with soft and hard
    edges, fine texture and sensor-like noise. It is decoded by Pillow's
    libjpeg-turbo here and by blipcuda's own decoder in the Go test."""
    rng = np.random.default_rng(11)
    w, h = 320, 240
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    sky = np.stack([90 + 0.3 * yy, 140 + 0.25 * yy, 230 - 0.2 * yy], -1)
    ground = np.stack([70 + 30 * np.sin(xx / 9.0) * np.cos(yy / 5.0), 120 + 0.2 * xx, 40 + 0.1 * yy], -1)
    horizon = 140 + 12 * np.sin(xx / 40.0)
    arr = np.where((yy < horizon)[..., None], sky, ground)
    arr = arr + rng.normal(0, 4.0, arr.shape)
    im = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB")
    dr = ImageDraw.Draw(im)
    dr.ellipse([230, 25, 285, 80], fill=(252, 236, 150))
    dr.rectangle([40, 100, 120, 190], fill=(150, 60, 45))
    dr.polygon([(35, 100), (80, 60), (125, 100)], fill=(90, 30, 30))
    dr.rectangle([70, 150, 90, 190], fill=(60, 40, 20))
    for i in range(12):
        x0 = 150 + 12 * i
        dr.line([(x0, 200), (x0 + 5, 150 + 3 * i)], fill=(30, 90 + 8 * i, 30), width=3)
    os.makedirs(os.path.join(ROOT, "jpeg"), exist_ok=True)
    im.save(os.path.join(ROOT, JPEG_IMAGE), quality=75)
    return JPEG_IMAGE


def build(name, vision, text, seed, fmt, omit_text_heads, image_names, images_dir, tok):
    cfg = BlipConfig(vision_config=vision, text_config=text, image_text_hidden_size=256)
    torch.manual_seed(seed)
    model = BlipForImageTextRetrieval(cfg).eval()
    randomize(model, seed)
    d = os.path.join(ROOT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    if fmt == "safetensors":
        model.save_pretrained(d, safe_serialization=True)
    else:
        model.config.save_pretrained(d)
        sd = model.state_dict()
        # The December 2022 checkpoints carry this buffer; the loader must skip it.
        sd["text_encoder.embeddings.position_ids"] = torch.arange(text.get("max_position_embeddings", 512)).unsqueeze(0)
        torch.save(sd, os.path.join(d, "pytorch_model.bin"))
    if omit_text_heads:
        p = os.path.join(d, "config.json")
        c = json.load(open(p))
        assert c["text_config"]["num_attention_heads"] == 8, "the tiny-large text heads must be the default"
        del c["text_config"]["num_attention_heads"]
        json.dump(c, open(p, "w"), indent=2, sort_keys=True)
    proc = BlipImageProcessor()  # the published 384×384 bicubic CLIP-normalised config
    proc.save_pretrained(d)
    if fmt == "safetensors":
        tok_fast = BertTokenizerFast(vocab_file=VOCAB, do_lower_case=True, model_max_length=512)
        tok_fast.save_pretrained(d)
    else:
        shutil.copy(VOCAB, os.path.join(d, "vocab.txt"))

    # Reload from disk exactly as a user would, so the references come from
    # the saved files (and the config's default heads are applied).
    model = BlipForImageTextRetrieval.from_pretrained(d).eval()
    proc = BlipImageProcessor.from_pretrained(d)
    pil = [Image.open(os.path.join(images_dir, n)) for n in image_names]
    pixel_values = proc(pil, return_tensors="pt")["pixel_values"].float()
    entry = {
        "config": {"vision": vision, "text": text, "text_heads_in_file": not omit_text_heads},
        "images": image_names,
        "pixel_sha256": [hashlib.sha256(pixel_values[i].numpy().astype("<f4").tobytes()).hexdigest()
                         for i in range(pixel_values.shape[0])],
        "num_params": sum(p.numel() for p in model.parameters()),
        "inputs": TEXTS,
        "hf": run_protocol(model, tok, pixel_values, TEXTS, "hf"),
        "blip": run_protocol(model, tok, pixel_values, TEXTS, "blip"),
        "half": {"float16": half_protocol(model, tok, pixel_values, TEXTS, torch.float16),
                 "bfloat16": half_protocol(model, tok, pixel_values, TEXTS, torch.bfloat16)},
    }
    save_file(activations(model, tok, pixel_values, TEXTS[0]), os.path.join(d, "activations.safetensors"))
    # A real-photo-like JPEG, computed on its own (so the numbers above are
    # unchanged by it), "hf" protocol.
    jpeg_pv = proc([Image.open(os.path.join(ROOT, JPEG_IMAGE))], return_tensors="pt")["pixel_values"].float()
    entry["jpeg"] = {
        "image": JPEG_IMAGE,
        "pixel_sha256": hashlib.sha256(jpeg_pv[0].numpy().astype("<f4").tobytes()).hexdigest(),
        "hf": run_protocol(model, tok, jpeg_pv, TEXTS, "hf"),
    }
    return entry


def real_configs():
    out = {}
    base = BlipConfig(text_config={"num_attention_heads": 12}, image_text_hidden_size=256)
    large = BlipConfig(text_config={"num_attention_heads": 12},
                       vision_config={"hidden_size": 1024, "intermediate_size": 4096,
                                      "num_hidden_layers": 24, "num_attention_heads": 16},
                       image_text_hidden_size=256)
    d = os.path.join(ROOT, "configs")
    os.makedirs(d, exist_ok=True)
    for name, cfg in [("base", base), ("large", large)]:
        with torch.device("meta"):
            m = BlipForImageTextRetrieval(cfg)
        out[name] = {"num_params": sum(p.numel() for p in m.parameters()),
                     "num_tensors": len(m.state_dict())}
        cfg.to_json_file(os.path.join(d, f"{name}.json"))
    return out


def main():
    if not os.path.exists(VOCAB):
        sys.exit(f"missing {VOCAB}: the bert-base-uncased vocabulary (see testdata/tokenizer)")
    torch.set_num_threads(1)
    images_dir = os.path.join(ROOT, "images")
    image_names = make_images(images_dir)
    make_jpeg()
    tok = BertTokenizer(vocab_file=VOCAB, do_lower_case=True, model_max_length=512)
    expected = {
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__,
                     "pillow": Image.__version__},
        "real": real_configs(),
        "models": {
            "tiny-base": build("tiny-base",
                               vision={"hidden_size": 16, "intermediate_size": 40, "num_hidden_layers": 2,
                                       "num_attention_heads": 2, "image_size": 384, "patch_size": 16},
                               text={"hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 2,
                                     "num_attention_heads": 4},
                               seed=1, fmt="safetensors", omit_text_heads=False,
                               image_names=image_names, images_dir=images_dir, tok=tok),
            "tiny-large": build("tiny-large",
                                vision={"hidden_size": 24, "intermediate_size": 48, "num_hidden_layers": 3,
                                        "num_attention_heads": 3, "image_size": 384, "patch_size": 16},
                                text={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
                                      "num_attention_heads": 8},
                                seed=2, fmt="bin", omit_text_heads=True,
                                image_names=image_names, images_dir=images_dir, tok=tok),
        },
    }
    with open(os.path.join(ROOT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    print("wrote", os.path.join(ROOT, "expected.json"))


if __name__ == "__main__":
    main()
