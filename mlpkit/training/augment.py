"""On-the-fly data augmentation: elastic distortions (Simard et al. 2003) and random affine maps.

Both move pixels: every output pixel (i, j) samples the input, bilinearly, at
(i, j) + a displacement. Samples that fall outside the image read 0, the background.

- **elastic** ``{alpha, sigma}``: per image, two displacement fields (one per axis), each
  ``alpha`` pixels × uniform noise in [−1, 1] smoothed by a Gaussian of standard deviation
  ``sigma`` pixels (zero beyond the edges, truncated at 4σ, as
  ``scipy.ndimage.gaussian_filter(mode="constant")``): Simard's field.
- **affine** ``{rotate, scale, shear, translate}``: per image, a rotation by up to
  ±``rotate`` degrees, a zoom by a factor in [1 − ``scale``, 1 + ``scale``], a shear by up
  to ±``shear`` degrees, and a shift by up to ±``translate`` × the image's side, all about
  the image's centre.

Each transform applies to an image with probability ``p``. Randomness comes only
from the generator passed in, so a run is reproducible and resumes exactly.

How the field is drawn, and why it is Simard's. Smoothing is linear: on an H × W noise
image N the field is α·G_H·N·G_Wᵀ, with G the (n, n) matrix of ``gaussian_filter1d``. Write
G = U·S·Vᵀ (its SVD). Then G_H·N·G_Wᵀ = (U_H·S_H)·Z·(U_W·S_W)ᵀ with Z = V_Hᵀ·N·V_W, and an
orthogonal change of basis keeps iid noise uncorrelated with the same variance: Z's entries
are uncorrelated, mean 0, variance 1/3, exactly like N's. So drawing Z itself, uniform in
[−1, 1], gives a field with Simard's mean and covariance, and a Gaussian's singular values
fall so fast (σ = 4 on 28 pixels: 0.93, 0.75, 0.52, … 3e-4 by the 11th) that the directions
holding under 1e-7 of the variance are dropped (below float32's resolution of the coordinates):
a 10 × 10 Z instead of 28 × 28 noise.
(Each field value is a weighted sum of many uniforms either way, close to Gaussian.)

Every transform, the identity included, is then one matrix per image and axis: the
sampling coordinate is ``B_H · C · B_Wᵀ`` with the bases B = [U·S | index | 1]. The elastic
coefficients fill C's top-left block; an affine map M (coordinate = M·[i, j, 1]) puts M's
three entries in the (index, 1), (1, index) and (1, 1) corners. All coordinates of a batch
are two GEMMs, and identity and whole-pixel shifts stay exact (small integers are exact in
float32, and the other terms are exact zeros).

Bilinear sampling is OpenCV's ``remap`` (as in albumentations), one call for the batch stacked
into one tall image, with gaps of background rows between images wider than any draw of the
settings can reach (its row offsets ride in the affine corner, so the GEMMs write the tall
image's coordinates directly). It equals ``scipy.ndimage.map_coordinates(order=1,
mode="grid-constant")`` per image to float32 rounding of those coordinates (``bilinear`` below
is the same sampling in plain NumPy, for reading, for the tests, and for images beyond
OpenCV's sizes).
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np
from scipy import ndimage

from mlpkit.nn import matmul

VARIANCE_DROPPED = 1e-7  # the share of an elastic field's variance left out with the smallest singular directions
REMAP_LIMIT = 32767  # OpenCV's remap takes images and maps below SHRT_MAX rows and columns
# One thread: the training step's BLAS threads already hold both cores, and a pool of OpenCV's beside them made
# an augmented epoch 10 % slower (docs/performance.md).
cv2.setNumThreads(1)


@functools.lru_cache(maxsize=16)
def smoothing_matrix(n: int, sigma: float) -> np.ndarray:
    """(n, n) float64 G with G·u = ``gaussian_filter1d(u, sigma, mode="constant")`` for any u of length n."""
    g = ndimage.gaussian_filter1d(np.eye(n), sigma, axis=0, mode="constant")
    g.flags.writeable = False  # cached and shared
    return g


@functools.lru_cache(maxsize=16)
def field_basis(n: int, sigma: float) -> np.ndarray:
    """(n, k) float64 U_k·S_k: the leading singular directions of ``smoothing_matrix(n, sigma)``, scaled, that
    hold all but ``VARIANCE_DROPPED`` of the variance G·u carries for iid u."""
    u, s, _ = np.linalg.svd(smoothing_matrix(n, sigma))
    share = np.cumsum(s**2) / np.sum(s**2)
    k = int(np.searchsorted(share, 1 - VARIANCE_DROPPED)) + 1
    basis = u[:, :k] * s[:k]
    basis.flags.writeable = False
    return basis


def affine_matrices(h: int, w: int, angle: np.ndarray, zoom: np.ndarray, shear: np.ndarray, shift: np.ndarray
                    ) -> np.ndarray:
    """(B, 2, 3) float64 M: the output pixel p = (i, j) samples its input at M·[i, j, 1].

    Per image a rotation ``angle`` and shear ``shear`` (radians), a ``zoom`` and a shift (B, 2) in pixels, all
    about the centre c. With A = rotation · shear · zoom, the sample point is A⁻¹(p − c − t) + c.
    """
    cos, sin, tan = np.cos(angle), np.sin(angle), np.tan(shear)
    inv = np.empty((len(angle), 2, 2))
    inv[:, 0, 0], inv[:, 0, 1] = cos, sin  # the inverse rotation ...
    inv[:, 1, 0], inv[:, 1, 1] = -tan * cos - sin, cos - tan * sin  # ... then the inverse shear
    inv /= zoom[:, None, None]
    c = np.array([(h - 1) / 2, (w - 1) / 2])
    m = np.empty((len(angle), 2, 3))
    m[:, :, :2] = inv
    m[:, :, 2] = c - np.einsum("bij,bj->bi", inv, c + shift)
    return m


def affine_grid(h: int, w: int, angle: np.ndarray, zoom: np.ndarray, shear: np.ndarray, shift: np.ndarray
                ) -> np.ndarray:
    """Sampling coordinates (2, B, H, W) float32, rows then columns, of the affine maps (see ``affine_matrices``)."""
    m = affine_matrices(h, w, angle, zoom, shear, shift)
    i, j = np.arange(h, dtype=np.float64)[:, None], np.arange(w, dtype=np.float64)[None, :]
    coords = m[:, :, 0, None, None] * i + m[:, :, 1, None, None] * j + m[:, :, 2, None, None]  # (B, 2, H, W)
    return np.ascontiguousarray(coords.transpose(1, 0, 2, 3), dtype=np.float32)


def bilinear(images: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Bilinear samples (B, H, W) float64 of ``images`` (B, H, W) at ``coords`` (2, B, H, W); outside reads 0.

    The textbook version of what ``Augmenter.sample`` asks OpenCV for: the four neighbours of each
    coordinate, weighted by the fractions of the way to them.
    """
    b, h, w = images.shape
    padded = np.zeros((b, h + 2, w + 2))  # one ring of background: neighbours of [−1, h] × [−1, w] are inside
    padded[:, 1:-1, 1:-1] = images
    r = np.clip(coords[0].astype(np.float64), -1, h)
    c = np.clip(coords[1].astype(np.float64), -1, w)
    r0, c0 = np.floor(r), np.floor(c)
    fr, fc = r - r0, c - c0
    n = np.arange(b)[:, None, None]
    top, left = r0.astype(np.intp) + 1, c0.astype(np.intp) + 1  # in the padding; r0 + 1 ≤ h + 1 is a valid row
    bottom, right = np.minimum(top + 1, h + 1), np.minimum(left + 1, w + 1)  # at fraction 0 the weight is 0

    def at(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return padded[n, rows, cols]

    upper = at(top, left) * (1 - fc) + at(top, right) * fc
    lower = at(bottom, left) * (1 - fc) + at(bottom, right) * fc
    return upper * (1 - fr) + lower * fr


def _row_reach(m: np.ndarray, h: int, w: int) -> float:
    """The largest row displacement |M[0]·[i, j, 1] − i| of affine maps (B, 2, 3) on an H × W grid: at a
    corner, the map being linear."""
    corners = np.array([[0, 0, 1], [0, w - 1, 1], [h - 1, 0, 1], [h - 1, w - 1, 1]], np.float64)
    return float(np.abs((m[:, 0, None, :] * corners).sum(axis=-1) - corners[:, 0]).max(initial=0.0))


def affine_reach(h: int, w: int, affine: dict | None) -> float:
    """About the largest row displacement an ``affine`` setting can draw: the maps on a grid over its ranges
    (rotations every 2.5°, the extremes of zoom, shear and shift)."""
    if affine is None:
        return 0.0
    deg = math.pi / 180
    rot = float(affine.get("rotate", 0.0))
    angles = np.linspace(-rot, rot, 2 * math.ceil(rot / 2.5) + 1) * deg
    zooms = 1 + np.array([-1.0, 0.0, 1.0]) * float(affine.get("scale", 0.0))
    shears = np.array([-1.0, 0.0, 1.0]) * float(affine.get("shear", 0.0)) * deg
    t = float(affine.get("translate", 0.0))
    shifts = np.array([[a * h * t, c * w * t] for a in (-1, 1) for c in (-1, 1)])
    grid = [(a, z, s, k) for a in angles for z in zooms for s in shears for k in range(len(shifts))]
    a, z, s, k = (np.array(v) for v in zip(*grid))
    return _row_reach(affine_matrices(h, w, a, z, s, shifts[k.astype(int)]), h, w)


class Augmenter:
    """The transforms of one ``data.augment`` for (B, H, W) batches, with workspace reused between calls.

    Not thread-safe: one Augmenter per thread.
    """

    def __init__(self, h: int, w: int, *, elastic: dict | None = None, affine: dict | None = None) -> None:
        self.h, self.w = h, w
        self.elastic = elastic if elastic is not None and elastic.get("alpha", 0.0) > 0 else None
        self.affine = affine
        sigma = float(self.elastic["sigma"]) if self.elastic is not None else None
        bases = []
        for n in (h, w):
            elastic_part = field_basis(n, sigma) if sigma is not None else np.zeros((n, 0))
            bases.append(np.hstack([elastic_part, np.arange(n)[:, None], np.ones((n, 1))]).astype(np.float32))
        self.bh, self.bw = bases  # (H, KH) B_H and (W, KW) B_W
        self.kh, self.kw = self.bh.shape[1] - 2, self.bw.shape[1] - 2  # elastic directions per axis
        # The largest elastic displacement any draw can make: |B_H·Z·B_Wᵀ| ≤ α·Σ_p|B_H[i, p]|·Σ_q|B_W[j, q]|.
        self.elastic_reach = 0.0 if self.elastic is None else float(self.elastic["alpha"]) * float(
            np.abs(self.bh[:, : self.kh]).sum(axis=1).max() * np.abs(self.bw[:, : self.kw]).sum(axis=1).max())
        self._work: dict[int, dict[str, np.ndarray]] = {}
        # Rows of background between neighbouring images in the tall image: past the farthest any draw of these
        # settings reaches. Fixed from the settings alone, so that the images of a step do not depend on what
        # was drawn before (a resumed run gets the same bytes).
        self._gap = math.ceil(self.elastic_reach + affine_reach(h, w, affine)) + 2
        self._background = np.nan  # the value the gaps hold now

    def _buffers(self, b: int) -> dict[str, np.ndarray]:
        work = self._work.get(b)
        if work is None:
            h, w, f32 = self.h, self.w, np.float32
            kh, kw = self.kh + 2, self.kw + 2
            self._work.clear()  # one batch size at a time
            work = self._work[b] = {
                # Per axis a and image k a (KH, KW) coefficient matrix, laid out (KH, KW, 2, B) so that both GEMMs
                # read it as is and write (2, B, H, W); entries outside the elastic block and the three affine
                # corners stay 0.
                "coef": np.zeros((kh, kw, 2, b), f32),
                "half": np.empty((kw * 2 * b, h), f32),  # (B_H·C)ᵀ per axis and image, laid out (KW, 2, B, H)
                "coords": np.empty((2, b, h, w), f32),
                "tall": self._tall(b),
            }
            self._background = np.nan
        return work

    def _tall(self, b: int) -> np.ndarray:
        """The batch stacked into one (G + B·(H + G), W) image, image k at row G + k·(H + G): bilinear samples
        of one image never reach the next as long as they stay within G − 1 rows of it."""
        return np.empty((self._gap + b * (self.h + self._gap), self.w), np.float32)

    def _row_offsets(self, b: int) -> np.ndarray:
        return self._gap + np.arange(b) * (self.h + self._gap)

    def coordinates(self, b: int, rng: np.random.Generator) -> np.ndarray:
        """Sampling coordinates (2, B, H, W) float32 for B images: identity plus the transforms (the
        workspace's array, valid until the next call)."""
        return self._coordinates(b, rng, tall=False)[0]

    def _coordinates(self, b: int, rng: np.random.Generator, *, tall: bool) -> tuple[np.ndarray, bool]:
        """Coordinates (2, B, H, W), and whether their rows are the tall image's: asked for with ``tall``,
        and every sample of the draw within ``_gap`` − 1 rows of its image."""
        h, w, kh, kw = self.h, self.w, self.kh, self.kw
        work = self._buffers(b)
        coef = work["coef"]
        m = np.zeros((b, 2, 3))  # the affine part, the identity unless an affine map is drawn
        m[:, 0, 0] = m[:, 1, 1] = 1
        el = self.elastic
        if el is not None:
            on = rng.random(b) < el.get("p", 1.0)
            # Z uniform in [−1, 1] on a grid of 2¹⁶ levels: α·(u·2/65535 − 1) for 16-bit integers u, four from
            # each raw 64-bit draw (a third of the cost of float32 uniforms).
            block = coef[:kh, :kw]
            raw = rng.bit_generator.random_raw(-(-block.size // 4)).view(np.uint16)[: block.size]
            alpha = float(el["alpha"])
            np.multiply(raw.reshape(block.shape), np.float32(alpha * 2 / 65535), out=block, casting="unsafe")
            block -= np.float32(alpha)
            if not on.all():
                block *= on.astype(np.float32)  # (B,) broadcast over (KH, KW, 2, B)
        affine = self.affine
        if affine is not None:
            on = rng.random(b) < affine.get("p", 1.0)
            deg = math.pi / 180
            angle = rng.uniform(-1, 1, b) * affine.get("rotate", 0.0) * deg * on
            zoom = 1 + rng.uniform(-1, 1, b) * affine.get("scale", 0.0) * on
            shear = rng.uniform(-1, 1, b) * affine.get("shear", 0.0) * deg * on
            shift = rng.uniform(-1, 1, (b, 2)) * affine.get("translate", 0.0) * np.array([h, w]) * on[:, None]
            m = affine_matrices(h, w, angle, zoom, shear, shift)
        # How far a row coordinate can stray from its own: the elastic bound plus the affine map's largest row
        # displacement, which for a linear map is at a corner.
        stacked = tall and self.elastic_reach + _row_reach(m, h, w) + 2 <= self._gap
        if stacked:
            m[:, 0, 2] += self._row_offsets(b)  # whole numbers: exact
        # coordinate = M[0]·i + M[1]·j + M[2]: B_H's index column times B_W's ones, and so on.
        coef[kh, kw + 1] = m[:, :, 0].T
        coef[kh + 1, kw] = m[:, :, 1].T
        coef[kh + 1, kw + 1] = m[:, :, 2].T
        # Two GEMMs through SciPy's BLAS, like the training step (see mlpkit/nn/_kernels.py), each reading its
        # left operand transposed: (C per axis and image)ᵀ·B_Hᵀ, then (that)ᵀ·B_Wᵀ.
        half = matmul(coef.reshape(kh + 2, -1).T, self.bh.T, out=work["half"])  # (KW·2·B, KH) @ (KH, H)
        coords = work["coords"]
        matmul(half.reshape(kw + 2, -1).T, self.bw.T, out=coords.reshape(-1, w))  # (2·B·H, KW) @ (KW, W)
        return coords, stacked

    def _fill(self, work: dict[str, np.ndarray], images: np.ndarray, scale: float, shift: float) -> np.ndarray:
        """The tall image of ``images`` in the model's units, its gaps holding the background."""
        b, h, w = images.shape
        tall = work["tall"]
        if self._background != shift:  # NaN at first: never equal
            tall.fill(shift)
            self._background = shift
        inner = tall[self._gap :].reshape(b, h + self._gap, w)[:, :h]
        np.multiply(images, np.float32(scale), out=inner, casting="unsafe")
        if shift:
            inner += np.float32(shift)
        return tall

    @staticmethod
    def _remap(tall: np.ndarray, rows: np.ndarray, cols: np.ndarray, out: np.ndarray, shift: float) -> np.ndarray:
        """Bilinear samples of ``tall`` at the (B, H, W) maps, into ``out``; outside reads ``shift``."""
        b, h, w = rows.shape
        # remap reads each map entry on its own, so the maps can take any 2-D shape: one image per row, (B, H·W),
        # ran 2.3× faster than (B·H, W), whose 28-wide rows leave OpenCV's vector loops little to do.
        shape = (b, h * w) if h * w < REMAP_LIMIT else (b * h, w)
        dst = out if out.flags.c_contiguous else np.empty(out.shape, np.float32)  # reshaped as a view
        cv2.remap(tall, cols.reshape(shape), rows.reshape(shape), cv2.INTER_LINEAR, dst=dst.reshape(shape),
                  borderMode=cv2.BORDER_CONSTANT, borderValue=float(shift))
        if dst is not out:
            out[...] = dst
        return out

    def _fits_opencv(self, b: int) -> bool:
        # The tall image's rows bound b·h and b too, so either shape of the maps in _remap fits.
        return self.w < REMAP_LIMIT and self._gap + b * (self.h + self._gap) < REMAP_LIMIT

    def sample(self, images: np.ndarray, coords: np.ndarray, out: np.ndarray | None = None, *,
               scale: float = 1.0, shift: float = 0.0) -> np.ndarray:
        """Bilinear samples (B, H, W) float32 of ``images`` (B, H, W) at ``coords`` (2, B, H, W); outside
        reads 0. Equal to ``scipy.ndimage.map_coordinates(order=1, mode="grid-constant")`` per image, to
        float32 rounding.

        With ``scale`` and ``shift`` the result is ``samples · scale + shift``, the model's units, at no
        extra cost: interpolation weights sum to 1, so interpolating converted values is the same.
        """
        b, h, w = images.shape
        out = np.empty((b, h, w), np.float32) if out is None else out
        if not self._fits_opencv(b):  # beyond OpenCV's sizes: the plain version
            np.multiply(bilinear(images, coords), scale, out=out, casting="unsafe")
            out += np.float32(shift)
            return out
        tall = self._fill(self._buffers(b), images, scale, shift)
        # Rows clipped to [−1, h], beyond which every sample reads background anyway, so that none reaches into
        # the next image; columns outside [0, w) read OpenCV's border, the same background.
        rows = np.clip(coords[0], -1, h).astype(np.float32)
        rows += self._row_offsets(b)[:, None, None].astype(np.float32)
        return self._remap(tall, rows, np.ascontiguousarray(coords[1], dtype=np.float32), out, shift)

    def __call__(self, images: np.ndarray, rng: np.random.Generator, out: np.ndarray | None = None, *,
                 scale: float = 1.0, shift: float = 0.0) -> np.ndarray:
        """A randomly transformed copy of ``images`` (B, H, W), float32: bilinear samples of ``images ·
        scale + shift`` (the model's units), in that range to float32 rounding."""
        b = len(images)
        coords, stacked = self._coordinates(b, rng, tall=self._fits_opencv(b))
        if not stacked:  # too large for OpenCV, or a draw reaching past the gaps: clipped first
            return self.sample(images, coords, out, scale=scale, shift=shift)
        out = np.empty(images.shape, np.float32) if out is None else out
        tall = self._fill(self._work[b], images, scale, shift)
        return self._remap(tall, coords[0], coords[1], out, shift)


def sample(images: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``images`` (B, H, W) at ``coords`` (2, B, H, W); see ``Augmenter.sample``."""
    return Augmenter(*images.shape[1:]).sample(images, coords)


def augment(images: np.ndarray, rng: np.random.Generator, *, elastic: dict | None = None,
            affine: dict | None = None) -> np.ndarray:
    """A randomly transformed copy of ``images`` (B, H, W), float32 in the input's value range (clipped to it:
    rounding can step a hair past, and a picture made of it must not wrap around)."""
    out = Augmenter(*images.shape[1:], elastic=elastic, affine=affine)(images, rng)
    return np.clip(out, min(float(images.min(initial=0)), 0.0), float(images.max(initial=0)), out=out)
