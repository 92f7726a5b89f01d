"""Digits drawn as a person draws them in a paint program: strokes of a round pen, dark on a white canvas,
in several stroke widths and sizes (polylines in a unit box, x right, y down)."""

from __future__ import annotations

import math

from PIL import Image, ImageDraw

# each digit: a list of polylines in a unit box (x right, y down), drawn as strokes
SHAPES = {
    0: [[(0.5 + 0.32 * math.cos(t / 20 * 2 * math.pi), 0.5 + 0.45 * math.sin(t / 20 * 2 * math.pi)) for t in range(21)]],
    1: [[(0.35, 0.25), (0.55, 0.05), (0.55, 0.95)]],
    2: [[(0.2, 0.25), (0.35, 0.08), (0.6, 0.05), (0.78, 0.2), (0.75, 0.42), (0.2, 0.95), (0.82, 0.95)]],
    3: [[(0.2, 0.12), (0.45, 0.03), (0.75, 0.12), (0.75, 0.35), (0.45, 0.48), (0.78, 0.6), (0.8, 0.85), (0.5, 0.97), (0.2, 0.88)]],
    4: [[(0.62, 0.95), (0.62, 0.05), (0.15, 0.65), (0.85, 0.65)]],
    5: [[(0.78, 0.05), (0.3, 0.05), (0.25, 0.45), (0.55, 0.38), (0.78, 0.55), (0.75, 0.85), (0.45, 0.97), (0.2, 0.88)]],
    6: [[(0.7, 0.05), (0.4, 0.25), (0.25, 0.6), (0.3, 0.9), (0.55, 0.97), (0.75, 0.8), (0.7, 0.55), (0.45, 0.5), (0.27, 0.62)]],
    7: [[(0.15, 0.08), (0.85, 0.08), (0.4, 0.95)]],
    8: [[(0.5, 0.5), (0.25, 0.3), (0.5, 0.05), (0.75, 0.3), (0.5, 0.5), (0.22, 0.72), (0.5, 0.97), (0.78, 0.72), (0.5, 0.5)]],
    9: [[(0.72, 0.45), (0.5, 0.52), (0.27, 0.4), (0.3, 0.12), (0.55, 0.04), (0.74, 0.2), (0.72, 0.45), (0.6, 0.95)]],
}

def drawn(digit: int, canvas: int = 400, size: float = 0.7, width: int = 30, ox: float = 0.5, oy: float = 0.5
          ) -> Image.Image:
    """``digit`` drawn with a pen ``width`` px wide, its box ``size`` of the canvas, centred at (ox, oy)."""
    im = Image.new("L", (canvas, canvas), 255)
    d = ImageDraw.Draw(im)
    s = size * canvas
    x0, y0 = ox * canvas - s / 2, oy * canvas - s / 2
    for line in SHAPES[digit]:
        pts = [(x0 + x * s * 0.8 + 0.1 * s, y0 + y * s) for x, y in line]
        d.line(pts, fill=0, width=width, joint="curve")
        for p in pts:
            d.ellipse([p[0] - width / 2, p[1] - width / 2, p[0] + width / 2, p[1] + width / 2], fill=0)
    return im
