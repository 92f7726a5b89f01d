"""A picture of a digit made into the input a dataset's own digits were made into.

Two steps. ``find_ink`` reads the digit off the picture the way a person would, whatever the paper and the
light; a ``Preparation`` then makes that ink into the dataset's format.

``find_ink``, for photos, scans and drawings:

1. reduced to at most ``WORK_SIDE`` pixels a side (a 12-megapixel photo has far more pixels than a digit
   needs, and every step below is then cheap);
2. made white ink on black, judged by the border (dark ink on light paper is the usual picture);
3. uneven lighting removed: the paper's brightness is estimated by a grey-level closing wider than any
   stroke (``scipy.ndimage``), smoothed, and the ink measured as the share of that light it takes away
   (flat-field correction), so a shadow or a lighting gradient across the page is neither ink nor a
   fainter digit; light ink on a dark ground has its background, an opening, subtracted;
4. sensor noise ignored: the picture is smoothed by a small Gaussian and the ink threshold chosen by Otsu's
   method (between-class variance of the grey-level histogram), never below a share of the brightest ink;
5. the largest ink components kept (``scipy.ndimage.label``): specks of noise and dirt are dropped, and the
   crop is the box of what is kept.

Then, per dataset (recorded in the weights file's data record as ``preparation``):

- ``mnist`` (MNIST and the 28×28 datasets made like it; LeCun et al.): the longer side scaled to 20 px
  (in proportion for other sizes) with anti-aliasing, pasted into 28×28 with the centre of mass at the
  centre;
- ``uci-digits`` (the embedded UCI digits; Alpaydin and Kaynak 1998, from NIST's preprocessing): the digit's
  box scaled to fill a 32×32 frame (the longer side; the aspect ratio kept), binarized, its stroke width
  brought to that of the dataset's digits, then the "on" pixels counted in each 4×4 block: 8×8 counts 0..16;
- ``none``: a picture of the model's size is used as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlpkit.errors import DataError

WORK_SIDE = 256
PREPARATIONS = ("mnist", "uci-digits", "none")
MIN_INK_SHARE = 0.3  # the threshold is never below this share of the brightest ink (Otsu on a blank page)
UCI_ON_SHARE = (0.22, 0.42)  # the UCI digits' share of "on" pixels at 32×32 is about 0.31 (mean count 4.9 of 16)


@dataclass(frozen=True)
class Ink:
    """The digit read off a picture: ``ink`` (h, w) in [0, 1], cropped to the kept strokes, and what looked
    wrong (``doubts``: one sentence each)."""

    ink: np.ndarray
    doubts: list[str] = field(default_factory=list)


def _pil() -> Any:
    from PIL import Image

    return Image


def resize(a: np.ndarray, w: int, h: int) -> np.ndarray:
    """``a`` (float, 0..255) resized to (h, w) with an anti-aliasing (Lanczos) filter."""
    image_mod = _pil()
    im = image_mod.fromarray(np.clip(a, 0, 255).astype(np.float32), mode="F")
    return np.asarray(im.resize((max(1, w), max(1, h)), image_mod.Resampling.LANCZOS), dtype=np.float32)


def otsu(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold: the level that maximizes the between-class variance of the histogram of ``values``."""
    hist, edges = np.histogram(values, bins=bins)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist).astype(np.float64)
    w1 = w0[-1] - w0
    m = np.cumsum(hist * centers)
    mu0 = m / np.maximum(w0, 1)
    mu1 = (m[-1] - m) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(edges[int(np.argmax(between)) + 1])


def find_ink(gray: np.ndarray, source: str = "image") -> Ink:
    """The ink of a picture of a digit (see the module doc); DataError naming ``source`` for a blank one."""
    from scipy import ndimage

    a = np.asarray(gray, dtype=np.float32)
    h, w = a.shape
    if max(h, w) > WORK_SIDE:  # 1. reduced first
        k = WORK_SIDE / max(h, w)
        a = resize(a, round(w * k), round(h * k))
        h, w = a.shape
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    light_paper = bool(np.median(border) > 127)
    small = min(h, w) < 64  # an icon-sized picture (an MNIST image itself, a thumbnail): no lighting to remove
    if small:  # 2. white ink on black, less the background level
        a = 255.0 - a if light_paper else a
        a = np.clip(a - np.median(np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])), 0, None)
    else:  # 3. the lighting: a grey-level closing (opening, for light ink) wider than a stroke keeps the paper
        size = max(5, round(min(h, w) / 4))
        if light_paper:  # ink is the share of the paper's light it takes away: a shadow dims both alike
            paper = ndimage.uniform_filter(ndimage.grey_closing(a, size=(size, size)), size=size)
            a = np.clip(1.0 - a / np.maximum(paper, 1.0), 0, 1) * 255.0
        else:
            background = ndimage.uniform_filter(ndimage.grey_opening(a, size=(size, size)), size=size)
            a = np.clip(a - background, 0, None)
        a = ndimage.gaussian_filter(a, sigma=max(0.5, min(h, w) / 200))  # 4. pixel noise averaged out
    peak = float(np.percentile(a, 99.9)) if a.size > 1000 else float(a.max())
    if peak <= 1.0:  # less than one grey level of contrast anywhere
        raise DataError(f"{source}: is blank (no ink to recognize)")
    level = max(otsu(a[a > 0.02 * peak]) if (a > 0.02 * peak).sum() > 16 else 0.0, MIN_INK_SHARE * peak)
    mask = a > level
    labels, n = ndimage.label(mask)  # 5. the largest components
    if n == 0:
        raise DataError(f"{source}: is blank (no ink to recognize)")
    sizes = np.bincount(labels.ravel())[1:]
    order = np.argsort(-sizes)
    keep = [i + 1 for i in order if sizes[i] >= 0.2 * sizes[order[0]]]
    kept = np.isin(labels, keep)
    rows, cols = np.flatnonzero(kept.any(axis=1)), np.flatnonzero(kept.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    near = ndimage.binary_dilation(kept, iterations=max(1, round(min(h, w) / 100)))  # the strokes' soft edges
    crop = np.where(near, a, 0.0)[r0:r1, c0:c1]
    ink = np.clip(crop / max(float(crop.max()), 1e-6), 0.0, 1.0)
    return Ink(ink, _doubts(kept[r0:r1, c0:c1], sizes, order, labels, keep))


def _doubts(kept: np.ndarray, sizes: np.ndarray, order: np.ndarray, labels: np.ndarray, keep: list[int]
            ) -> list[str]:
    """Why the picture may not be one digit: ink over most of its box, or several marks of similar size
    apart from each other."""
    doubts = []
    if kept.size > 64 and kept.mean() > 0.6:
        doubts.append("most of the crop is ink; a digit is strokes on plain paper")
    if len(order) > 1 and sizes[order[1]] >= 0.5 * sizes[order[0]]:
        from scipy import ndimage

        boxes = ndimage.find_objects(labels)
        a, b = boxes[order[0]], boxes[order[1]]
        apart = a[1].stop < b[1].start or b[1].stop < a[1].start or a[0].stop < b[0].start or b[0].stop < a[0].start
        if apart:
            doubts.append(f"it holds {len(keep)} separate marks of similar size; is it a single digit?")
    return doubts


def prepare_mnist(ink: np.ndarray, side: int = 28) -> np.ndarray:
    """MNIST's preparation: the longer side to 20/28 of ``side``, anti-aliased, centre of mass at the centre."""
    box = max(1, round(side * 20 / 28))
    h, w = ink.shape
    scale = box / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    digit = np.clip(resize(ink * 255.0, nw, nh) / 255.0, 0.0, 1.0)
    total = float(digit.sum())
    if total <= 0:
        raise DataError("the picture's ink vanished when scaled down")
    cy = float((digit.sum(axis=1) * np.arange(nh)).sum() / total)
    cx = float((digit.sum(axis=0) * np.arange(nw)).sum() / total)
    top, left = round(side / 2 - cy), round(side / 2 - cx)  # the centre of mass at (14, 14)
    top, left = min(max(top, 0), side - nh), min(max(left, 0), side - nw)
    out = np.zeros((side, side), dtype=np.float32)
    out[top: top + nh, left: left + nw] = digit
    return out


def prepare_uci_digits(ink: np.ndarray, side: int = 8) -> np.ndarray:
    """The UCI digits' preparation (NIST's): the box scaled to fill 32×32 (the longer side; centred), binarized,
    the stroke width brought to the dataset's (its share of "on" pixels), 4×4 blocks counted; in [0, 1]
    (count / 16)."""
    from scipy import ndimage

    frame, block = 4 * side, 4
    h, w = ink.shape
    scale = frame / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    digit = resize(ink * 255.0, nw, nh) / 255.0
    bits = np.zeros((frame, frame), dtype=bool)
    top, left = (frame - nh) // 2, (frame - nw) // 2
    bits[top: top + nh, left: left + nw] = digit > 0.5
    lo, hi = UCI_ON_SHARE
    for _ in range(4):  # a thin pen drawn big, or a marker drawn small: strokes as thick as NIST's
        if bits.mean() < lo:
            grown = ndimage.binary_dilation(bits)
            if grown.mean() > hi:
                break
            bits = grown
        elif bits.mean() > hi:
            thinner = ndimage.binary_erosion(bits)
            if thinner.mean() < lo or not thinner.any():
                break
            bits = thinner
        else:
            break
    counts = bits.reshape(side, block, side, block).sum(axis=(1, 3))  # (8, 8) of 0..16
    return (counts / float(block * block)).astype(np.float32)


def prepare_ink(ink: np.ndarray, side: int, preparation: str) -> np.ndarray:
    """The ink in the format of ``preparation`` (one of PREPARATIONS, not "none"), (side, side) in [0, 1]."""
    if preparation == "uci-digits":
        return prepare_uci_digits(ink, side)
    return prepare_mnist(ink, side)
