#!/usr/bin/env python3
"""The report of scripts/compare-gpu.sh: reads what its steps left in one
directory and writes report.md and report.json there. Standard library only.

  python3 bench/gpu_report.py DIR

DIR holds (each optional; what is missing is reported as missing):
  env.json                 card, driver, versions (written by compare-gpu.sh)
  steps.tsv                name, exit status, seconds, timeout of every step
  hf.json, hf_compile.json transformers_gpu.py time outputs
  go-*.txt, logs/go-*.log  `bench.test -test.v -test.bench Checkpoint...` outputs
  agree/MODEL-PRECISION.json  `blipcuda match --format json` on the reference inputs

Speed-ups are transformers time / blipcuda time for latency and blipcuda
throughput / transformers throughput for throughput: above 1 means blipcuda
is faster. Both sides are measured in the same run on the same card.
"""

import glob
import json
import os
import re
import sys

PRECISIONS = ["float32", "float16", "bfloat16"]
# blipcuda precision -> the transformers mode whose outputs it is held to,
# and the tolerance on P(match) and ITC (the brief's targets).
TOL = {"float32": 1e-4, "float16": 2e-3, "bfloat16": 2e-3}
WORKLOADS = [
    # key, go benchmark, title, metric kind
    ("match14", "CheckpointMatch", "1 image × 14 captions, ITM P(match) + ITC end to end (latency)", "latency"),
    ("images256", "CheckpointImages", "Image embedding, ViT + ITC projection, batch of 256 (images/s)", "images_per_s"),
    ("rerank256", "CheckpointRerank", "Re-ranking from cached image features, 1 image × 256 captions, ITM (captions/s)",
     "captions_per_s"),
]
GO_METRIC = {"images_per_s": "images/s", "captions_per_s": "captions/s"}


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def parse_go(paths):
    """Benchmark results and skip/fail reasons from `go test -v -bench` logs."""
    res, skips = {}, {}
    for p in paths:
        current, logs = None, {}
        for line in open(p, errors="replace"):
            line = line.rstrip("\n")
            m = re.match(r"^(Benchmark\S+?)(-\d+)?\s+(\d+)\s+(.*)$", line)
            if m:
                vals = {}
                f = m.group(4).split()
                for i in range(0, len(f) - 1, 2):
                    try:
                        vals[f[i + 1]] = float(f[i])
                    except ValueError:
                        pass
                vals["n"] = int(m.group(3))
                res[m.group(1)] = vals
                continue
            m = re.match(r"^\s*--- (SKIP|FAIL): (Benchmark\S+)", line)
            if m:
                name = m.group(2)
                why = [l for l in logs.get(name, []) if not l.startswith("loaded ")]
                skips[name] = f"{m.group(1)}: " + ("; ".join(why)[:300] if why else "(no reason logged)")
                continue
            m = re.match(r"^(Benchmark\S+)$", line)
            if m:
                current = m.group(1)
                continue
            m = re.match(r"^\s+\S+\.go:\d+: (.*)$", line)
            if m and current:
                logs.setdefault(current, []).append(m.group(1))
    return res, skips


def go_value(go, name, kind):
    v = go.get(name)
    if v is None:
        return None
    if kind == "latency":
        if "p50-ms" not in v:
            return None
        return {"p50_ms": v["p50-ms"], "p99_ms": v.get("p99-ms"), "runs": v["n"]}
    return {kind: v.get(GO_METRIC[kind]), "p50_ms": v.get("p50-ms"), "runs": v["n"]}


def fmt(x, nd=2):
    if x is None:
        return "—"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.1f}"
    return f"{x:.{nd}f}"


def speedup(kind, go, hf):
    if not go or not hf:
        return None
    if kind == "latency":
        return hf["p50_ms"] / go["p50_ms"] if go.get("p50_ms") and hf.get("p50_ms") else None
    return go[kind] / hf[kind] if go.get(kind) and hf.get(kind) else None


def maxdiff(a, b):
    """Max |a − b| over nested lists of equal shape."""
    if isinstance(a, list):
        if not isinstance(b, list) or len(a) != len(b):
            raise ValueError("shapes differ")
        return max((maxdiff(x, y) for x, y in zip(a, b)), default=0.0)
    return abs(float(a) - float(b))


def agreement(d, hf):
    rows = []
    if not hf:
        return rows
    results = hf.get("results", {})
    ref_images = [os.path.basename(p) for p in hf.get("ref_images", [])]
    for model in sorted(results):
        ref = results[model].get("fp32-eager", {}).get("outputs")
        if ref is None:
            continue
        for prec in PRECISIONS:
            row = {"model": model, "implementation": f"blipcuda {prec}", "precision": prec, "tolerance": TOL[prec]}
            got = load_json(os.path.join(d, "agree", f"{model}-{prec}.json"))
            if got is None:
                err = ""
                try:
                    err = open(os.path.join(d, "agree", f"{model}-{prec}.err")).read().strip().splitlines()[-1][:300]
                except (OSError, IndexError):
                    pass
                row["verdict"] = "not run" + (f": {err}" if err else "")
                rows.append(row)
                continue
            try:
                if [os.path.basename(p) for p in got["images"]] != ref_images or got["texts"] != hf["ref_texts"]:
                    raise ValueError("images or texts differ from the reference inputs")
                row["device"] = got.get("device")
                row["dp"] = maxdiff(got["itm_prob"], ref["itm_prob"])
                row["dlogit"] = maxdiff(got["itm_logits"], ref["itm_logits"])
                row["ditc"] = maxdiff(got["itc"], ref["itc"])
                ok = row["dp"] <= TOL[prec] and row["ditc"] <= TOL[prec] and got.get("device") == "cuda"
                row["verdict"] = "pass" if ok else ("FAIL" if got.get("device") == "cuda" else f"ran on {got.get('device')}")
            except (KeyError, ValueError, TypeError) as e:
                row["verdict"] = f"unreadable: {e}"
            rows.append(row)
        # transformers' own half precision against its float32, for context.
        for mode, out in sorted(results[model].items()):
            o = out.get("outputs") if isinstance(out, dict) else None
            if mode in ("fp32-eager", "inputs") or o is None:
                continue
            try:
                rows.append({"model": model, "implementation": f"transformers {mode}", "precision": mode,
                             "dp": maxdiff(o["itm_prob"], ref["itm_prob"]),
                             "dlogit": maxdiff(o["itm_logits"], ref["itm_logits"]),
                             "ditc": maxdiff(o["itc"], ref["itc"]), "verdict": "(context)"})
            except (KeyError, ValueError):
                pass
    return rows


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "."
    env = load_json(os.path.join(d, "env.json")) or {}
    hf_docs = [x for x in (load_json(os.path.join(d, "hf.json")), load_json(os.path.join(d, "hf_compile.json"))) if x]
    hf_main = hf_docs[0] if hf_docs else None
    go_logs = sorted(glob.glob(os.path.join(d, "go-*.txt")) + glob.glob(os.path.join(d, "logs", "go-*.log")))
    go, skips = parse_go(go_logs)
    for p in go_logs:
        m = re.search(r"loaded \S+ in \S+ on (.*)", open(p, errors="replace").read())
        if m:
            env.setdefault("blipcuda_device", m.group(1).strip())
            break
    steps = []
    try:
        for line in open(os.path.join(d, "steps.tsv")):
            f = line.rstrip("\n").split("\t")
            if len(f) >= 4:
                steps.append({"step": f[0], "status": f[1], "seconds": int(f[2]), "timeout": int(f[3]),
                              "command": f[4] if len(f) > 4 else ""})
    except OSError:
        pass

    # Versions: the transformers side reports its own.
    hv = (hf_main or {}).get("versions", {})
    md = ["# blipcuda vs transformers on the GPU", ""]
    md += [f"- date: {env.get('date', '?')}; revision: {env.get('revision', '?')}",
           f"- card: {env.get('gpu', hv.get('gpu', '?'))}; driver {env.get('driver', '?')} (CUDA {env.get('driver_cuda', '?')})",
           f"- transformers side: torch {hv.get('torch', '?')} (CUDA runtime {hv.get('cuda_runtime', '?')}, cuDNN "
           f"{hv.get('cudnn', '?')}), transformers {hv.get('transformers', '?')}, Python {hv.get('python', '?')}",
           f"- blipcuda side: {env.get('go_version', '?')}, test binary and CLI built on the development machine; "
           f"device note: {env.get('blipcuda_device', '?')}",
           "- checkpoints: random weights at the real base (ViT-B/16 384) and large (ViT-L/16 384) configurations, "
           "built by bench/transformers_gpu.py in this run; texts: bench/testdata/captions.txt, \"hf\" protocol on both sides",
           "- float32 means float32 on both sides: TF32 off in torch (matmul and cuDNN) and in blipcuda's cuBLAS", ""]
    notes = []
    for h in hf_docs:
        notes += h.get("notes", [])

    # Agreement.
    rows = agreement(d, hf_main)
    md += ["## Agreement with transformers float32 (eager)", "",
           "Reference inputs: the images and texts listed in hf.json (`ref_images`, `ref_texts`); blipcuda through "
           "`blipcuda match --format json --protocol hf --device cuda --precision P`. Max absolute differences over "
           "every image × text; pass = P(match) and ITC within the tolerance, on the CUDA device. The transformers rows "
           "show how far transformers' own half precision is from its float32.", "",
           "| model | implementation | max ΔP(match) | max Δlogit | max ΔITC | tolerance | verdict |",
           "|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        md.append(f"| {r['model']} | {r['implementation']} | {fmt(r.get('dp'), 6) if r.get('dp') is not None else '—'} | "
                  f"{fmt(r.get('dlogit'), 6) if r.get('dlogit') is not None else '—'} | "
                  f"{fmt(r.get('ditc'), 6) if r.get('ditc') is not None else '—'} | "
                  f"{r['tolerance'] if 'tolerance' in r else ''} | {r['verdict']} |")
    if not rows:
        md.append("| — | no reference outputs (hf.json missing or without fp32-eager outputs) | | | | | |")
    md.append("")

    # Speed.
    speed = {}
    md += ["## Speed", "",
           "Speed-up = how many times faster blipcuda (in the column's precision) is than the row's implementation: "
           "transformers p50 / blipcuda p50 for latency, blipcuda / transformers throughput otherwise (> 1: blipcuda "
           "faster). transformers modes: `fp32-eager`; `fp16-sdpa`/`bf16-sdpa` ask for "
           "`attn_implementation=\"sdpa\"` and fall back to eager attention where transformers' BLIP refuses it (see "
           "notes); `fp16-compile` is torch.compile of the vision model and text encoder in float16; "
           "`(one call)` is `model(pixel_values expanded to 14, use_itm_head=True)` + `model(use_itm_head=False)`, "
           "which encodes the image per caption. blipcuda rows come from `go test -bench Checkpoint` "
           "(bench/gpu_bench_test.go) through the public API.", ""]
    models = sorted({m for h in hf_docs for m in h.get("results", {})} |
                    {k.split("/")[1] for k in list(go) + list(skips) if k.count("/") >= 2})
    for key, bench, title, kind in WORKLOADS:
        md += [f"### {title}", ""]
        if kind == "latency":
            md += ["| model | implementation | p50 ms | p99 ms | " + " | ".join(f"speed-up of blipcuda {p}" for p in PRECISIONS) + " |",
                   "|---|---|---:|---:|" + "---:|" * len(PRECISIONS)]
        else:
            md += [f"| model | implementation | {GO_METRIC[kind]} | ms per call | " +
                   " | ".join(f"speed-up of blipcuda {p}" for p in PRECISIONS) + " |",
                   "|---|---|---:|---:|" + "---:|" * len(PRECISIONS)]
        for model in models:
            gos = {p: go_value(go, f"Benchmark{bench}/{model}/{p}", kind) for p in PRECISIONS}
            entry = speed.setdefault(key, {}).setdefault(model, {"blipcuda": {}, "transformers": {}})
            for p in PRECISIONS:
                g = gos[p]
                entry["blipcuda"][p] = g or {"missing": skips.get(f"Benchmark{bench}/{model}/{p}", "not run")}
                if g:
                    if kind == "latency":
                        md.append(f"| {model} | **blipcuda {p}** | {fmt(g['p50_ms'])} | {fmt(g.get('p99_ms'))} |" + " |" * len(PRECISIONS))
                    else:
                        md.append(f"| {model} | **blipcuda {p}** | {fmt(g.get(kind))} | {fmt(g.get('p50_ms'))} |" + " |" * len(PRECISIONS))
                else:
                    why = skips.get(f"Benchmark{bench}/{model}/{p}", "not run")
                    md.append(f"| {model} | blipcuda {p} | {why.replace('|', '/')} | |" + " |" * len(PRECISIONS))
            hf_rows = []
            for h in hf_docs:
                for mode, r in h.get("results", {}).get(model, {}).items():
                    if mode == "inputs" or not isinstance(r, dict):
                        continue
                    if key in r:
                        hf_rows.append((mode, r[key]))
                    if key == "match14" and "match14_onecall" in r:
                        hf_rows.append((mode + " (one call)", r["match14_onecall"]))
            for mode, r in hf_rows:
                ups = [speedup(kind, gos[p], r) for p in PRECISIONS]
                entry["transformers"][mode] = dict(r, speedup={p: u for p, u in zip(PRECISIONS, ups)})
                first = fmt(r.get("p50_ms")) if kind == "latency" else fmt(r.get(kind))
                second = fmt(r.get("p99_ms")) if kind == "latency" else fmt(r.get("p50_ms"))
                md.append(f"| {model} | transformers {mode} | {first} | {second} | " +
                          " | ".join(f"{u:.2f}×" if u else "—" for u in ups) + " |")
        md.append("")

    if notes:
        md += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    if steps:
        md += ["## Steps", "", "| step | status | seconds | timeout | command |", "|---|---|---:|---:|---|"]
        for s in steps:
            md.append(f"| {s['step']} | {s['status']} | {s['seconds']} | {s['timeout']} | `{s['command'][:120]}` |")
        md.append("")
    with open(os.path.join(d, "report.md"), "w") as f:
        f.write("\n".join(md))
    with open(os.path.join(d, "report.json"), "w") as f:
        json.dump({"env": env, "transformers_versions": hv, "steps": steps, "agreement": rows, "speed": speed,
                   "notes": notes, "go_benchmarks": go, "go_skips": skips}, f, indent=1)
    print("\n".join(md))


if __name__ == "__main__":
    main()
