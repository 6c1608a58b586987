#!/usr/bin/env python3
"""Draws testdata/sample/beach.png, the picture the README's first command
matches against (no photograph of known licence is shipped): a beach with
the sun over the sea, a palm tree and a dog. Deterministic; Pillow only.

    python3 testdata/sample/make_sample.py
"""
import math
import os

from PIL import Image, ImageDraw, ImageFilter

W, H = 640, 427
im = Image.new("RGB", (W, H))
d = ImageDraw.Draw(im)
for y in range(H):  # sky gradient
    t = y / (H * 0.55)
    d.line([(0, y), (W, y)], fill=(int(90 + 120 * t), int(160 + 70 * t), int(235 + 15 * t)))
d.ellipse([470, 40, 560, 130], fill=(255, 226, 90))  # sun
horizon = int(H * 0.5)
for y in range(horizon, int(H * 0.72)):  # sea
    t = (y - horizon) / (H * 0.22)
    d.line([(0, y), (W, y)], fill=(int(20 + 30 * t), int(90 + 60 * t), int(160 + 40 * t)))
for k in range(7):  # wave crests
    y = horizon + 12 + k * 12
    pts = [(x, y + 3 * math.sin(x / 17.0 + k)) for x in range(0, W, 4)]
    d.line(pts, fill=(220, 240, 250), width=2)
d.polygon([(0, int(H * 0.70)), (W, int(H * 0.66)), (W, H), (0, H)], fill=(236, 211, 160))  # sand
d.line([(110, 330), (130, 180), (140, 150)], fill=(110, 75, 40), width=12)  # palm trunk
for a in range(0, 360, 45):  # palm leaves
    r = math.radians(a)
    d.line([(140, 150), (140 + 75 * math.cos(r), 150 + 35 * math.sin(r) - 10)], fill=(40, 130, 50), width=9)
# a dog: body, head, ears, legs, tail
d.ellipse([330, 330, 430, 375], fill=(120, 80, 45))
d.ellipse([415, 305, 460, 345], fill=(120, 80, 45))
d.ellipse([445, 318, 470, 334], fill=(95, 60, 35))
d.polygon([(420, 310), (428, 288), (436, 310)], fill=(80, 50, 30))
for x in (342, 360, 400, 418):
    d.rectangle([x, 365, x + 8, 395], fill=(110, 72, 40))
d.line([(332, 345), (305, 320)], fill=(110, 72, 40), width=7)
d.ellipse([452, 320, 457, 325], fill=(0, 0, 0))
im = im.filter(ImageFilter.SMOOTH)
im.save(os.path.join(os.path.dirname(os.path.abspath(__file__)), "beach.png"), optimize=True)
