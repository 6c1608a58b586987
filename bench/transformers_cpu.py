#!/usr/bin/env python3
"""transformers' BlipForImageTextRetrieval on the CPU, float32 eager: the
same workloads as bench_test.go, on the same machine, for compare_cpu.sh.

Random weights at the real base (ViT-B/16) configuration with 12 text heads;
random inputs of the same shapes as the Go benchmarks (one 384×384 image;
16 captions of 10–20 tokens). Prints one JSON object: median seconds per
operation, the versions and the thread count.

Pinned: torch 2.15.0, transformers 4.57.6 (testdata/models/requirements.txt).
"""

import json
import os
import statistics
import sys
import time

import torch
import transformers
from transformers import BlipConfig, BlipForImageTextRetrieval


def timeit(fn, reps):
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    threads = int(os.environ.get("BENCH_THREADS", os.cpu_count()))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = BlipConfig(text_config={"num_attention_heads": 12}, image_text_hidden_size=256)
    model = BlipForImageTextRetrieval(cfg).eval()
    g = torch.Generator().manual_seed(1)
    px = torch.randn(1, 3, 384, 384, generator=g)
    n = 16
    lengths = torch.randint(10, 21, (n,), generator=g)
    L = int(lengths.max())
    ids = torch.zeros(n, L, dtype=torch.long)
    mask = torch.zeros(n, L, dtype=torch.long)
    for i, l in enumerate(lengths.tolist()):
        ids[i, 0] = 101
        ids[i, 1:l - 1] = torch.randint(1996, 29996, (l - 2,), generator=g)
        ids[i, l - 1] = 102
        mask[i, :l] = 1

    out = {"torch": torch.__version__, "transformers": transformers.__version__, "threads": threads, "reps": reps}
    with torch.inference_mode():
        feats = model.vision_model(pixel_values=px).last_hidden_state

        def image_encode():
            v = model.vision_model(pixel_values=px).last_hidden_state
            torch.nn.functional.normalize(model.vision_proj(v[:, 0, :]), dim=-1)

        def itm():
            img = feats.expand(n, -1, -1)
            h = model.text_encoder(input_ids=ids, attention_mask=mask, encoder_hidden_states=img,
                                   encoder_attention_mask=torch.ones(img.shape[:-1], dtype=torch.long)).last_hidden_state
            model.itm_head(h[:, 0, :])

        def text_embeddings():
            h = model.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            torch.nn.functional.normalize(model.text_proj(h[:, 0, :]), dim=-1)

        def match():
            # What a user of transformers runs for 1 image × 16 captions:
            # the ITM forward per pair batch (the image is re-encoded for every
            # caption) and the ITC forward.
            model(input_ids=ids, attention_mask=mask, pixel_values=px.expand(n, -1, -1, -1), use_itm_head=True)
            model(input_ids=ids, attention_mask=mask, pixel_values=px, use_itm_head=False)

        for name, fn in [("image_encode_base", image_encode), ("itm_base_16", itm),
                         ("text_embeddings_base_16", text_embeddings), ("match_base_16", match)]:
            r = reps if name != "match_base_16" else max(1, reps // 3)
            med, _ = timeit(fn, r)
            out[name] = med
            print(f"{name}: {med*1e3:.1f} ms", file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
