#!/usr/bin/env python3
"""transformers' BlipForImageTextRetrieval on a GPU: the reference side of
scripts/compare-gpu.sh. Three subcommands:

  build      writes random-weight checkpoints of the REAL architectures, in the
             Hub layout blipcuda.LoadCheckpoint and `blipcuda match --model DIR`
             read: base (ViT-B/16 384 px, 12 layers, width 768, 12 heads) and
             large (ViT-L/16: width 1024, 24 layers, 16 heads, MLP 4096), each
             with the BERT-base text encoder (12 heads, cross-attention reading
             the vision width). config.json, model.safetensors (float32),
             preprocessor_config.json and the bert-base-uncased tokenizer
             files (testdata/tokenizer/bert-base-uncased/vocab.txt).
             Weights: transformers' own init with a fixed seed, then every
             parameter redrawn as testdata/models/make_fixtures.py does
             (matrices N(0, 1/fan_in), LayerNorm weights 1 + 0.1·N, biases
             0.1·N, embedding tables N(0, 1)), so activations are O(1) and
             attention is far from uniform: transformers' init gives the vision
             tower std 1e-10, which would make every image look the same.
             Deterministic for a given seed and device.

  time       loads a checkpoint in each mode and times the workloads of the
             blipcuda GPU targets on the same inputs (CUDA synchronised around
             every timed call, torch.inference_mode):
               match14    1 image × 14 captions, ITM P(match) + ITC cosine end
                          to end from preprocessed pixels and token ids: the
                          image is encoded once, its features expanded to the
                          14 captions (a view: transformers' cross-attention
                          recomputes the image keys/values per caption), ITC
                          text pass, projections: p50/p99 latency.
               match14_onecall  the same through the documented one-call API,
                          model(pixel_values expanded to 14, use_itm_head=True)
                          + model(use_itm_head=False): the image is encoded 15
                          times (base model only).
               images256  ViT forward of a batch of 256 images + ITC projection
                          and normalisation: images/s.
               rerank256  1 image × 256 captions ITM from cached image features
                          (already on the GPU): captions/s.
             Modes: fp32-eager (TF32 off for matmul and cuDNN, as blipcuda's
             float32), fp16-sdpa and bf16-sdpa (attn_implementation="sdpa";
             when this transformers' BLIP does not support it, eager attention
             in that dtype, recorded as such), fp16-compile (torch.compile of
             the vision model and text encoder, float16; each new input shape
             compiles again, bounded by --compile-budget-s).
             Each eager mode also scores the reference inputs (--ref-images ×
             --ref-texts, the "hf" protocol: BertTokenizerFast, [CLS] for both
             heads) and stores ITM logits, P(match) and ITC, so blipcuda's
             `match --format json` output can be checked against fp32-eager,
             and transformers' own half precision against its float32.
             The JSON is rewritten after every measurement, so a run cut by a
             timeout keeps what it measured.

  smoke      build + time on a tiny config (CPU unless --device says), to
             prove the script end to end on a machine without a GPU.

Run from anywhere; paths default relative to the repository (or the
device-check tree) this file sits in:

  python bench/transformers_gpu.py build --out /tmp/ckpt --models base,large
  python bench/transformers_gpu.py time --ckpt /tmp/ckpt --models base,large \\
      --modes fp32-eager,fp16-sdpa,bf16-sdpa --out hf.json \\
      --ref-images testdata/models/images/scene.png,... --ref-texts texts.txt
  python bench/transformers_gpu.py smoke --out /tmp/smoke
"""

import argparse
import hashlib
import json
import math
import os
import statistics
import sys
import time

import torch
import transformers
from transformers import BertTokenizerFast, BlipConfig, BlipForImageTextRetrieval, BlipImageProcessor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VOCAB = os.path.join(ROOT, "testdata", "tokenizer", "bert-base-uncased", "vocab.txt")
CAPTIONS = os.path.join(HERE, "testdata", "captions.txt")

BASE_VISION = {}  # BlipConfig's defaults are ViT-B/16 at 384 px.
LARGE_VISION = {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16}
TINY_VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
TEXT = {"num_attention_heads": 12}
TINY_TEXT = {"hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def config(name):
    vision, text = {"base": (BASE_VISION, TEXT), "large": (LARGE_VISION, TEXT), "tiny": (TINY_VISION, TINY_TEXT)}[name]
    # BlipConfig sets text_config.encoder_hidden_size to the vision width.
    return BlipConfig(vision_config=dict(vision), text_config=dict(text), image_text_hidden_size=256)


def randomize(model, seed, device):
    """make_fixtures.py's randomize(), drawing on `device` (fast on a GPU)."""
    g = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("LayerNorm.weight") or ("layer_norm" in name and name.endswith(".weight")) \
                    or name.endswith("post_layernorm.weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g, device=device))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g, device=device))
            elif p.dim() >= 2 and "embedding" not in name:
                p.copy_(torch.randn(p.shape, generator=g, device=device) / math.sqrt(p[0].numel()))
            else:
                p.copy_(torch.randn(p.shape, generator=g, device=device))


def build(out, names, seed, device):
    res = {}
    for name in names:
        t0 = time.perf_counter()
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        cfg = config(name)
        torch.manual_seed(seed)
        with torch.device(device):
            model = BlipForImageTextRetrieval(cfg).eval()
        randomize(model, seed, device)
        model.save_pretrained(d, safe_serialization=True)
        BlipImageProcessor().save_pretrained(d)  # the published 384×384 bicubic, CLIP-normalised config
        BertTokenizerFast(vocab_file=VOCAB, do_lower_case=True, model_max_length=512).save_pretrained(d)
        n = sum(p.numel() for p in model.parameters())
        res[name] = {"dir": d, "num_params": n, "seconds": round(time.perf_counter() - t0, 2)}
        log(f"built {name}: {n/1e6:.1f} M parameters in {d} ({res[name]['seconds']} s)")
        del model
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return res


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return [l.rstrip("\n") for l in f if l.strip()]


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_calls(fn, runs, warmup, device):
    for _ in range(warmup):
        fn()
    sync(device)
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        sync(device)
        ts.append(time.perf_counter() - t0)
    return ts


def pct(ts, q):
    """Nearest-rank percentile, as bench/gpu_bench_test.go computes it."""
    s = sorted(ts)
    k = max(1, math.ceil(q / 100 * len(s)))
    return s[k - 1]


def summary(ts):
    return {"runs": len(ts), "p50_ms": pct(ts, 50) * 1e3, "p99_ms": pct(ts, 99) * 1e3,
            "mean_ms": statistics.fmean(ts) * 1e3, "min_ms": min(ts) * 1e3}


class Results:
    """The output JSON, rewritten atomically after every change."""

    def __init__(self, path, head):
        self.path, self.doc = path, dict(head)
        self.doc.setdefault("results", {})
        self.doc.setdefault("notes", [])
        self.save()

    def put(self, model, mode, key, value):
        self.doc["results"].setdefault(model, {}).setdefault(mode, {})[key] = value
        self.save()

    def note(self, s):
        log("note:", s)
        self.doc["notes"].append(s)
        self.save()

    def save(self):
        if not self.path:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.doc, f, indent=1)
            f.write("\n")
        os.replace(tmp, self.path)


def load_model(d, mode, device, res, model_name):
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[mode.split("-")[0]]
    kind = mode.split("-", 1)[1]
    attn = "eager"
    if kind == "sdpa":
        try:
            model = BlipForImageTextRetrieval.from_pretrained(d, attn_implementation="sdpa")
            attn = "sdpa"
        except (ValueError, ImportError) as e:
            res.note(f"{model_name} {mode}: attn_implementation=\"sdpa\" refused by transformers "
                     f"{transformers.__version__} ({str(e).splitlines()[0][:140]}); timed with eager attention")
            model = BlipForImageTextRetrieval.from_pretrained(d, attn_implementation="eager")
    else:
        model = BlipForImageTextRetrieval.from_pretrained(d, attn_implementation="eager")
    model = model.to(device=device, dtype=dtype).eval()
    return model, dtype, attn


class Parts:
    """The submodules a workload calls; compiled in the compile mode."""

    def __init__(self, model, compile_mode=None):
        self.model = model
        self.vision = model.vision_model
        self.text = model.text_encoder
        if compile_mode:
            self.vision = torch.compile(model.vision_model, mode=compile_mode, dynamic=False)
            self.text = torch.compile(model.text_encoder, mode=compile_mode, dynamic=False)

    def image_embeds(self, px):
        v = self.vision(pixel_values=px).last_hidden_state
        return v, torch.nn.functional.normalize(self.model.vision_proj(v[:, 0, :]).float(), dim=-1)

    def itm_logits(self, feats, ids, mask):
        n = ids.shape[0]
        img = feats.expand(n, -1, -1) if feats.shape[0] == 1 else feats
        att = torch.ones(img.shape[:-1], dtype=torch.long, device=img.device)
        h = self.text(input_ids=ids, attention_mask=mask, encoder_hidden_states=img,
                      encoder_attention_mask=att).last_hidden_state
        return self.model.itm_head(h[:, 0, :]).float()

    def text_embeds(self, ids, mask):
        h = self.text(input_ids=ids, attention_mask=mask).last_hidden_state
        return torch.nn.functional.normalize(self.model.text_proj(h[:, 0, :]).float(), dim=-1)


def run_mode(res, ckpt, model_name, mode, args, device, captions, ref):
    d = os.path.join(ckpt, model_name)
    t0 = time.perf_counter()
    model, dtype, attn = load_model(d, mode, device, res, model_name)
    compiled = mode.endswith("-compile")
    parts = Parts(model, args.compile_mode if compiled else None)
    res.put(model_name, mode, "setup", {"dtype": str(dtype).replace("torch.", ""), "attention": attn,
                                         "compiled": compiled, "load_s": round(time.perf_counter() - t0, 2)})
    tok = BertTokenizerFast.from_pretrained(d)
    size = model.config.vision_config.image_size
    g = torch.Generator().manual_seed(1)
    px1 = torch.randn(1, 3, size, size, generator=g).to(device=device, dtype=dtype)

    def toks(texts):
        e = tok(texts, padding=True, return_tensors="pt")
        return e["input_ids"].to(device), e["attention_mask"].to(device)

    n14, n256 = args.match_captions, args.rerank_captions
    ids14, mask14 = toks(captions[:n14])
    ids256, mask256 = toks((captions * (n256 // len(captions) + 1))[:n256])
    mode_t0 = time.perf_counter()

    def over_budget(what):
        if compiled and time.perf_counter() - mode_t0 > args.compile_budget_s:
            res.note(f"{model_name} {mode}: {what} skipped, compile budget of {args.compile_budget_s:.0f} s spent")
            return True
        return False

    with torch.inference_mode():
        # Reference outputs first: they are what the agreement check needs.
        # (Not in the compile modes: new shapes would cost compile time.)
        if ref is not None and not compiled:
            pixel_values, texts = ref
            ids, mask = toks(texts)
            px = pixel_values.to(device=device, dtype=dtype)
            feats, img_emb = parts.image_embeds(px)
            logits = torch.stack([parts.itm_logits(feats[i:i + 1], ids, mask) for i in range(px.shape[0])])
            itc = img_emb @ parts.text_embeds(ids, mask).T
            res.put(model_name, mode, "outputs", {
                "itm_logits": logits.cpu().tolist(),
                "itm_prob": torch.softmax(logits, -1)[..., 1].cpu().tolist(),
                "itc": itc.cpu().tolist(),
            })

        workloads = args.workloads.split(",")
        if "match14" in workloads and not over_budget("match14"):
            def match():
                feats, img_emb = parts.image_embeds(px1)
                p = torch.softmax(parts.itm_logits(feats, ids14, mask14), -1)[:, 1]
                return p, img_emb @ parts.text_embeds(ids14, mask14).T
            ts = time_calls(match, args.runs, args.warmup, device)
            res.put(model_name, mode, "match14", dict(summary(ts), captions=n14))
            log(f"{model_name} {mode} match14: p50 {pct(ts, 50)*1e3:.2f} ms, p99 {pct(ts, 99)*1e3:.2f} ms")

        if "match14" in workloads and model_name != "large" and not compiled and not over_budget("match14_onecall"):
            pxn = px1.expand(n14, -1, -1, -1)

            def onecall():
                model(input_ids=ids14, attention_mask=mask14, pixel_values=pxn, use_itm_head=True)
                model(input_ids=ids14, attention_mask=mask14, pixel_values=px1, use_itm_head=False)
            ts = time_calls(onecall, max(5, args.runs // 2), args.warmup, device)
            res.put(model_name, mode, "match14_onecall", dict(summary(ts), captions=n14))
            log(f"{model_name} {mode} match14_onecall: p50 {pct(ts, 50)*1e3:.2f} ms")

        if "rerank256" in workloads and not over_budget("rerank256"):
            feats, _ = parts.image_embeds(px1)

            def rerank():
                return torch.softmax(parts.itm_logits(feats, ids256, mask256), -1)[:, 1]
            ts = time_calls(rerank, args.rerank_runs, args.warmup, device)
            med = statistics.median(ts)
            res.put(model_name, mode, "rerank256", dict(summary(ts), captions=n256, captions_per_s=n256 / med))
            log(f"{model_name} {mode} rerank256: {n256/med:.0f} captions/s")

        if "images256" in workloads and not over_budget("images256"):
            nb = args.image_batch
            pxb = torch.randn(nb, 3, size, size, generator=g).to(device=device, dtype=dtype)

            def images():
                return parts.image_embeds(pxb)[1]
            runs = args.image_runs if dtype != torch.float32 else max(1, args.image_runs - 1)
            ts = time_calls(images, runs, 1, device)
            med = statistics.median(ts)
            res.put(model_name, mode, "images256", dict(summary(ts), images=nb, images_per_s=nb / med))
            log(f"{model_name} {mode} images{nb}: {nb/med:.1f} images/s")
            del pxb
    res.put(model_name, mode, "seconds", round(time.perf_counter() - t0, 1))
    del parts, model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def reference_inputs(args, ckpt, model_name):
    if not args.ref_images:
        return None
    from PIL import Image
    proc = BlipImageProcessor.from_pretrained(os.path.join(ckpt, model_name))
    paths = args.ref_images.split(",")
    pixel_values = proc([Image.open(p) for p in paths], return_tensors="pt")["pixel_values"].float()
    return pixel_values, read_lines(args.ref_texts)


def versions(device):
    v = {"torch": torch.__version__, "transformers": transformers.__version__, "python": sys.version.split()[0],
         "cuda_runtime": torch.version.cuda, "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        v.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1), cudnn=torch.backends.cudnn.version())
    return v


def time_main(args):
    device = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("transformers_gpu.py: torch sees no CUDA device")
    # float32 means float32: no TF32 in matmuls or in the patch-embedding
    # convolution (cuDNN allows TF32 by default), as blipcuda's float32.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    captions = read_lines(args.captions)
    res = Results(args.out, {"versions": versions(device), "workloads": args.workloads,
                             "runs": {"match14": args.runs, "rerank256": args.rerank_runs,
                                      "images256": args.image_runs, "warmup": args.warmup},
                             "ref_images": args.ref_images.split(",") if args.ref_images else [],
                             "ref_texts": read_lines(args.ref_texts) if args.ref_texts else []})
    for model_name in args.models.split(","):
        try:
            ref = reference_inputs(args, args.ckpt, model_name)
        except Exception as e:  # no Pillow, unreadable image: time anyway
            res.note(f"{model_name}: no reference outputs ({type(e).__name__}: {str(e)[:200]})")
            ref = None
        if ref is not None:
            res.put(model_name, "inputs", "pixel_sha256",
                    [hashlib.sha256(ref[0][i].numpy().astype("<f4").tobytes()).hexdigest()
                     for i in range(ref[0].shape[0])])
        for mode in args.modes.split(","):
            try:
                run_mode(res, args.ckpt, model_name, mode, args, device, captions, ref)
            except torch.cuda.OutOfMemoryError as e:
                res.note(f"{model_name} {mode}: out of memory ({str(e).splitlines()[0][:160]})")
                torch.cuda.empty_cache()
            except Exception as e:  # record and go on with the next mode
                res.note(f"{model_name} {mode}: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}")
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()
    return res


def add_time_args(p):
    p.add_argument("--ckpt", required=True, help="directory holding one checkpoint directory per model")
    p.add_argument("--models", default="base,large")
    p.add_argument("--modes", default="fp32-eager,fp16-sdpa,bf16-sdpa",
                   help="comma list of fp32-eager, fp16-eager, bf16-eager, fp16-sdpa, bf16-sdpa, fp16-compile, bf16-compile")
    p.add_argument("--workloads", default="match14,rerank256,images256")
    p.add_argument("--out", required=True, help="results JSON (rewritten after every measurement)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--captions", default=CAPTIONS)
    p.add_argument("--match-captions", type=int, default=14)
    p.add_argument("--rerank-captions", type=int, default=256)
    p.add_argument("--image-batch", type=int, default=256)
    p.add_argument("--runs", type=int, default=50, help="timed runs of match14 (p50/p99)")
    p.add_argument("--rerank-runs", type=int, default=10)
    p.add_argument("--image-runs", type=int, default=3, help="timed runs of images256 (one fewer in float32)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--ref-images", default="", help="comma list of image files for the reference outputs")
    p.add_argument("--ref-texts", default="", help="file of texts, one per line, for the reference outputs")
    p.add_argument("--compile-mode", default="default", help="torch.compile mode for the *-compile modes")
    p.add_argument("--compile-budget-s", type=float, default=100,
                   help="a *-compile mode starts no new workload after this many seconds")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write random-weight checkpoints of the real architectures")
    b.add_argument("--out", required=True)
    b.add_argument("--models", default="base,large", help="comma list of base, large, tiny")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    b.add_argument("--json", default="", help="also write what was built here")
    t = sub.add_parser("time", help="time transformers and write its outputs on the reference inputs")
    add_time_args(t)
    s = sub.add_parser("smoke", help="build + time a tiny model (CPU): proves the script end to end")
    s.add_argument("--out", required=True)
    s.add_argument("--device", default="cpu")
    s.add_argument("--compile", action="store_true", help="also run fp16-compile (slow on a CPU: minutes)")
    args = ap.parse_args()
    if not os.path.exists(VOCAB):
        sys.exit(f"transformers_gpu.py: missing {VOCAB} (the bert-base-uncased vocabulary)")

    if args.cmd == "build":
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            log("build: torch sees no CUDA device; drawing the weights on the CPU")
            args.device = "cpu"
        built = build(args.out, args.models.split(","), args.seed, args.device)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"seed": args.seed, "device": args.device, "built": built, **versions(args.device)}, f, indent=1)
    elif args.cmd == "time":
        time_main(args)
    else:
        build(args.out, ["tiny"], 0, args.device)
        images = [os.path.join(ROOT, "testdata", "models", "images", n) for n in ("scene.png", "blocks.png")]
        texts = os.path.join(args.out, "texts.txt")
        with open(texts, "w") as f:
            f.write("\n".join(read_lines(CAPTIONS)[:3]) + "\n")
        ns = ap.parse_args(["time", "--ckpt", args.out, "--models", "tiny", "--out", os.path.join(args.out, "hf.json"),
                            "--device", args.device,
                            "--modes", "fp32-eager,bf16-sdpa" + (",fp16-compile" if args.compile else ""),
                            "--runs", "3", "--rerank-runs", "2", "--image-runs", "2", "--warmup", "1",
                            "--image-batch", "4", "--rerank-captions", "16",
                            "--ref-images", ",".join(images), "--ref-texts", texts])
        res = time_main(ns)
        r = res.doc["results"]["tiny"]
        missing = [(m, w) for m in ("fp32-eager", "bf16-sdpa") for w in ("outputs", "match14", "rerank256", "images256")
                   if w not in r.get(m, {})]
        if missing:
            sys.exit(f"smoke: missing results {missing}; notes: {res.doc['notes']}")
        log("smoke ok:", os.path.join(args.out, "hf.json"))


if __name__ == "__main__":
    main()
