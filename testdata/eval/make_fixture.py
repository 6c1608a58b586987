#!/usr/bin/env python3
"""Reference results for `blipcuda eval` (package eval), made with transformers.

What it writes, under testdata/eval/:
  images/           36 small generated PNG images (RGB, some grayscale,
                    palette and RGBA, of varied sizes and aspect ratios).
  annotations.json  a Karpathy-test-layout annotation file over them:
                    [{"image": "images/img_00.png", "caption": [...]}, ...],
                    five captions per image (six for three of them), with
                    capitals, BLIP's punctuation, captions of more than 30
                    words and more than 35 tokens. Paths are relative to
                    testdata/eval (the --images root).
  expected.json     BLIP's retrieval evaluation of it with the tiny
                    checkpoint testdata/models/tiny-base, k = 16: the nine
                    recall figures, and both score matrices as their top-k
                    cells per row (columns ascending, scores), i2t per image
                    and t2i per text; the cleaned texts; the margins that
                    show no result hangs on a near tie.

How: an independent implementation of salesforce/BLIP train_retrieval.py
evaluation() and itm_eval(), written here from that code's procedure and
calling the submodules of transformers' BlipForImageTextRetrieval the way
BLIP calls its own: pre_caption(caption, 30) per caption in file order;
BertTokenizer (the slow one, as BLIP), padding to 35 tokens with
truncation; ITC text embeddings from text_encoder without the image, [CLS]
row, text_proj, L2-normalised; image features = vision_model's
last_hidden_state (post-LayerNorm), embeddings = vision_proj of its [CLS]
row, L2-normalised; sims = image_embeds @ text_embeds.T; for ITM the first
token replaced by [ENC] (30523); per image the top k texts by sim, per text
the top k images, scored by itm_head(...)[:, 1] (the raw match logit) + sim,
-100 elsewhere; recall as itm_eval. transformers' own forward
(BlipForImageTextRetrieval(..., use_itm_head=True/False)) is run on the
same pairs as a check of the submodule calls: the script stops if they
differ by more than 1e-5.

k = 16 >= 10, so no recall figure depends on how the -100 cells tie. The
script also stops if any row's k-th and (k+1)-th sims are within 1e-5 (the
top-k sets would hang on rounding) or if a ground-truth score is within
1e-4 of another score of its row (a rank would).

Everything runs on the CPU in float32 with fixed seeds; rerunning gives
the same files. Pinned versions: testdata/models/requirements.txt (torch
2.15.0, transformers 4.57.6, pillow 12.0.0, numpy 2.4.6). From the
repository root, with that environment's python:

    python testdata/eval/make_fixture.py
"""

import json
import os
import re
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from transformers import BertTokenizer, BlipForImageTextRetrieval, BlipImageProcessor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
from make_fixtures import pre_caption  # noqa: E402  salesforce/BLIP's pre_caption, in behaviour

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "..", "models", "tiny-base")
ENC = 30523
K = 16
N_IMAGES = 36
SEED = int(os.environ.get("EVAL_FIXTURE_SEED", "13"))


COLORS = ["red", "blue", "green", "yellow", "white", "black", "orange", "purple"]
THINGS = ["dog", "cat", "bus", "boat", "kite", "horse", "pizza", "clock", "train", "bird"]
PLACES = ["on a beach", "in a kitchen", "down a city street", "in a field", "near the water",
          "on a wooden table", "under a blue sky", "in front of a building"]
VERBS = ["sitting", "standing", "running", "parked", "flying", "resting", "lying", "waiting"]


def make_images(rng, d):
    os.makedirs(d, exist_ok=True)
    names = []
    for i in range(N_IMAGES):
        w, h = int(rng.integers(40, 220)), int(rng.integers(40, 220))
        bg = tuple(int(x) for x in rng.integers(0, 256, 3))
        im = Image.new("RGB", (w, h), bg)
        dr = ImageDraw.Draw(im)
        for _ in range(int(rng.integers(1, 6))):
            x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
            x1, y1 = x0 + int(rng.integers(5, w)), y0 + int(rng.integers(5, h))
            fill = tuple(int(x) for x in rng.integers(0, 256, 3))
            if rng.random() < 0.5:
                dr.ellipse([x0, y0, x1, y1], fill=fill)
            else:
                dr.rectangle([x0, y0, x1, y1], fill=fill)
        if i % 5 == 1:  # texture
            noise = rng.integers(0, 256, size=(h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
            tex = Image.fromarray(noise, "RGB").resize((w, h), Image.NEAREST)
            im = Image.blend(im, tex, 0.4)
        if i % 9 == 2:
            im = im.convert("L")
        elif i % 9 == 5:
            im = im.convert("P", palette=Image.ADAPTIVE, colors=16)
        elif i % 9 == 7:
            a = Image.fromarray(rng.integers(0, 256, size=(h, w), dtype=np.uint8), "L")
            im = im.convert("RGBA")
            im.putalpha(a)
        name = f"img_{i:02d}.png"
        im.save(os.path.join(d, name), optimize=True)
        names.append(name)
    return names


def caption(rng, i, j):
    c, t, p, v = (COLORS[int(rng.integers(len(COLORS)))], THINGS[(i + j) % len(THINGS)],
                  PLACES[int(rng.integers(len(PLACES)))], VERBS[int(rng.integers(len(VERBS)))])
    kind = (3 * i + j) % 11
    if kind == 0:
        return f"A {c.upper()} {t} {v} {p}!!"
    if kind == 1:
        return f"a {c} {t} (maybe two) {v} {p}; seen from far away..."
    if kind == 2:  # more than 30 words: pre_caption keeps 30
        return " ".join([f"a {c} {t} {v} {p}"] + [f"and another {THINGS[k % len(THINGS)]}" for k in range(i % 4 + 9)])
    if kind == 3:  # within 30 words but more than 35 tokens: cut at 35
        return f"an extraordinarily photogenic {c} {t} " + " ".join(
            ["photographed", "unbelievably", "extraordinarily", "magnificently", "spectacularly"][k % 5] for k in range(14))
    if kind == 4:
        return f"  Two {t}s   {v} *together* {p} #nofilter ~ "
    if kind == 5:
        return f"\"The {c} {t}\": {v} {p}."
    if kind == 6:
        return f"café scene: a {t} {v} {p}, naïve style"
    return f"a {c} {t} {v} {p}"


def itm_logits(model, ids, atts, feats):
    """BLIP: text_encoder(ids, attention_mask, encoder_hidden_states, encoder_attention_mask),
    itm_head on the [CLS] row, the match logit."""
    enc_att = torch.ones(feats.shape[:-1], dtype=torch.long)
    out = model.text_encoder(input_ids=ids, attention_mask=atts, encoder_hidden_states=feats,
                             encoder_attention_mask=enc_att, return_dict=True)
    return model.itm_head(out.last_hidden_state[:, 0, :])[:, 1]


def itm_eval(scores_i2t, scores_t2i, txt2img, img2txt):
    """salesforce/BLIP itm_eval, in behaviour (np.argsort, ranks < 1/5/10, means)."""
    ranks = np.zeros(scores_i2t.shape[0])
    for index, score in enumerate(scores_i2t):
        inds = np.argsort(score)[::-1]
        rank = 1e20
        for i in img2txt[index]:
            tmp = np.where(inds == i)[0][0]
            if tmp < rank:
                rank = tmp
        ranks[index] = rank
    tr1 = 100.0 * len(np.where(ranks < 1)[0]) / len(ranks)
    tr5 = 100.0 * len(np.where(ranks < 5)[0]) / len(ranks)
    tr10 = 100.0 * len(np.where(ranks < 10)[0]) / len(ranks)
    ranks = np.zeros(scores_t2i.shape[0])
    for index, score in enumerate(scores_t2i):
        inds = np.argsort(score)[::-1]
        ranks[index] = np.where(inds == txt2img[index])[0][0]
    ir1 = 100.0 * len(np.where(ranks < 1)[0]) / len(ranks)
    ir5 = 100.0 * len(np.where(ranks < 5)[0]) / len(ranks)
    ir10 = 100.0 * len(np.where(ranks < 10)[0]) / len(ranks)
    tr_mean = (tr1 + tr5 + tr10) / 3
    ir_mean = (ir1 + ir5 + ir10) / 3
    r_mean = (tr_mean + ir_mean) / 2
    return {"txt_r1": tr1, "txt_r5": tr5, "txt_r10": tr10, "txt_r_mean": tr_mean,
            "img_r1": ir1, "img_r5": ir5, "img_r10": ir10, "img_r_mean": ir_mean, "r_mean": r_mean}


def rows(matrix):
    """The top-k cells of each row (everything above -100): columns ascending, scores."""
    out = []
    for r in matrix:
        cols = np.where(r > -100.0)[0]
        out.append({"cols": [int(c) for c in cols], "scores": [float(r[c]) for c in cols]})
    return out


def main():
    torch.set_num_threads(1)
    rng = np.random.default_rng(SEED)
    names = make_images(rng, os.path.join(HERE, "images"))
    ann, seen = [], set()
    for i, n in enumerate(names):
        ncap = 6 if i % 12 == 4 else 5
        caps = []
        for j in range(ncap):
            c = caption(rng, i, j)
            while pre_caption(c, 30) in seen:  # distinct texts: no exact ties in sims
                c = caption(rng, i, j + int(rng.integers(1, 1000)))
            seen.add(pre_caption(c, 30))
            caps.append(c)
        ann.append({"image": f"images/{n}", "caption": caps, "image_id": i})
    with open(os.path.join(HERE, "annotations.json"), "w") as f:
        json.dump(ann, f, indent=1, ensure_ascii=False)
        f.write("\n")

    # The dataset, as BLIP's coco_karpathy_retrieval_eval builds it.
    texts, txt2img, img2txt = [], {}, {}
    for img_id, a in enumerate(ann):
        img2txt[img_id] = []
        for c in a["caption"]:
            img2txt[img_id].append(len(texts))
            txt2img[len(texts)] = img_id
            texts.append(pre_caption(c, 30))

    model = BlipForImageTextRetrieval.from_pretrained(MODEL).eval()
    proc = BlipImageProcessor.from_pretrained(MODEL)
    tok = BertTokenizer(vocab_file=os.path.join(MODEL, "vocab.txt"), do_lower_case=True)
    pil = [Image.open(os.path.join(HERE, a["image"])).convert("RGB") for a in ann]
    pixels = proc(pil, return_tensors="pt")["pixel_values"].float()

    with torch.no_grad():
        # evaluation(): texts.
        ti = tok(texts, padding="max_length", truncation=True, max_length=35, return_tensors="pt")
        text_out = model.text_encoder(input_ids=ti.input_ids, attention_mask=ti.attention_mask)
        text_embeds = F.normalize(model.text_proj(text_out.last_hidden_state[:, 0, :]), dim=-1)
        text_ids = ti.input_ids.clone()
        text_atts = ti.attention_mask
        text_ids[:, 0] = ENC
        # Images.
        image_feats = model.vision_model(pixel_values=pixels).last_hidden_state
        image_embeds = F.normalize(model.vision_proj(image_feats[:, 0, :]), dim=-1)
        sims = image_embeds @ text_embeds.t()

        n_img, n_txt = len(ann), len(texts)
        i2t = torch.full((n_img, n_txt), -100.0)
        t2i = torch.full((n_txt, n_img), -100.0)
        max_itm_diff = max_itc_diff = 0.0
        min_sim_gap = float("inf")
        for i in range(n_img):
            s = sims[i]
            top_sim, top_idx = s.topk(k=K + 1, dim=0)
            min_sim_gap = min(min_sim_gap, float(top_sim[K - 1] - top_sim[K]))
            top_sim, top_idx = top_sim[:K], top_idx[:K]
            feats = image_feats[i].repeat(K, 1, 1)
            score = itm_logits(model, text_ids[top_idx], text_atts[top_idx], feats)
            i2t[i, top_idx] = score + top_sim
            # transformers' own forward on the same pairs.
            hf = model(input_ids=text_ids[top_idx], attention_mask=text_atts[top_idx],
                       pixel_values=pixels[i:i + 1].repeat(K, 1, 1, 1), use_itm_head=True).itm_score[:, 1]
            max_itm_diff = max(max_itm_diff, float((hf - score).abs().max()))
        hf_itc = model(input_ids=ti.input_ids, attention_mask=ti.attention_mask, pixel_values=pixels,
                       use_itm_head=False).itm_score
        max_itc_diff = float((hf_itc - sims).abs().max())
        st = sims.t()
        for t in range(n_txt):
            top_sim, top_idx = st[t].topk(k=K + 1, dim=0)
            min_sim_gap = min(min_sim_gap, float(top_sim[K - 1] - top_sim[K]))
            top_sim, top_idx = top_sim[:K], top_idx[:K]
            feats = image_feats[top_idx]
            score = itm_logits(model, text_ids[t].repeat(K, 1), text_atts[t].repeat(K, 1), feats)
            t2i[t, top_idx] = score + top_sim

    if max_itm_diff > 1e-5 or max_itc_diff > 1e-5:
        sys.exit(f"the submodule calls disagree with transformers' forward: ITM {max_itm_diff}, ITC {max_itc_diff}")
    print("sims: min %.4f max %.4f std %.4f" % (float(sims.min()), float(sims.max()), float(sims.std())))
    if min_sim_gap < 1e-5:
        sys.exit(f"a top-{K} set hangs on a sim gap of {min_sim_gap}: change SEED")
    i2t_np, t2i_np = i2t.numpy(), t2i.numpy()
    # No ground-truth cell within 1e-4 of another cell of its row.
    min_gt_gap = float("inf")
    for i, txts in img2txt.items():
        r = i2t_np[i]
        for t in txts:
            if r[t] > -100:
                others = np.delete(r, t)
                min_gt_gap = min(min_gt_gap, float(np.abs(others[others > -100] - r[t]).min()))
    for t, i in txt2img.items():
        r = t2i_np[t]
        if r[i] > -100:
            others = np.delete(r, i)
            min_gt_gap = min(min_gt_gap, float(np.abs(others[others > -100] - r[i]).min()))
    if min_gt_gap < 1e-4:
        sys.exit(f"a ground-truth score is within {min_gt_gap} of another: change SEED")

    recall = itm_eval(i2t_np, t2i_np, txt2img, img2txt)
    expected = {
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__,
                     "numpy": np.__version__},
        "model": "testdata/models/tiny-base",
        "annotations": "testdata/eval/annotations.json",
        "k": K,
        "images": n_img,
        "texts": texts,
        "truncated": int(sum(1 for j in range(n_txt) if len(tok(texts[j])["input_ids"]) > 35)),
        "recall": recall,
        "i2t": rows(i2t_np),
        "t2i": rows(t2i_np),
        "checks": {"itm_vs_transformers_forward": max_itm_diff, "itc_vs_transformers_forward": max_itc_diff,
                   "min_topk_sim_gap": min_sim_gap, "min_ground_truth_score_gap": min_gt_gap},
    }
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    print(json.dumps(recall), json.dumps(expected["checks"]))


if __name__ == "__main__":
    main()
