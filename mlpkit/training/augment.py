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
three entries in the (index, 1), (1, index) and (1, 1) corners. A batch's transforms are drawn
at once; its coordinates are two GEMMs per chunk of 32 images, and identity and whole-pixel
shifts stay exact (small integers are exact in float32, and the other terms are exact zeros).

Bilinear sampling is OpenCV's ``remap`` (as in albumentations), one call per chunk stacked into
one tall image, with gaps of background rows between images wider than any draw of the
settings can reach (a bound over their ranges: ``affine_reach`` and ``Augmenter.elastic_reach``),
and as many columns of background beside them, so that samples near an image's side take OpenCV's
vector loop, not its slower border path (past the columns the border reads the same background: no
bound needed). The offsets ride in the affine corner, so the GEMMs write the tall image's
coordinates directly, and a chunk's coordinates are read while still in the core's cache. It equals
``scipy.ndimage.map_coordinates(order=1, mode="grid-constant")`` per image to float32 rounding
of those coordinates (``bilinear`` below is the same sampling in plain NumPy, for reading, for
the tests, and for images beyond OpenCV's sizes).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from mlpkit.nn import matmul

VARIANCE_DROPPED = 1e-7  # the share of an elastic field's variance left out with the smallest singular directions
REMAP_LIMIT = 32767  # OpenCV's remap takes images and maps below SHRT_MAX rows and columns
# Images sampled at a time (32 MNIST digits): a chunk's coordinates, stacked images and output, about 0.5 MB,
# stay in the core's cache from being written to being read (docs/performance.md).
CHUNK_PIXELS = 32 * 28 * 28
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


def affine_reach(h: int, w: int, affine: dict | None) -> float:
    """The farthest any draw of an ``affine`` setting moves a row coordinate on an H × W grid: a bound, by the
    triangle inequality, over the settings' whole ranges.

    Row 0 of M (``affine_matrices``) is [cos θ, sin θ]/z, whatever the shear, so the row displacement of pixel
    (i, j) is (cos θ/z − 1)(i − c₀) + (sin θ/z)(j − c₁) − (cos θ·t₀ + sin θ·t₁)/z, with |i − c₀| ≤ (H − 1)/2,
    |j − c₁| ≤ (W − 1)/2 and |t| ≤ translate × the side.
    """
    if affine is None:
        return 0.0
    rot = min(float(affine.get("rotate", 0.0)), 180.0) * math.pi / 180
    s, t = float(affine.get("scale", 0.0)), float(affine.get("translate", 0.0))
    inv_zoom = (1 / (1 + s), 1 / (1 - s))
    # cos θ/z − 1 is bilinear in (cos θ, 1/z), cos θ in [cos rot, 1]: its largest size is at a corner.
    a = max(abs(c * q - 1) for c in (math.cos(rot), 1.0) for q in inv_zoom)
    b = math.sin(min(rot, math.pi / 2)) * inv_zoom[1]  # the largest |sin θ/z|
    return a * (h - 1) / 2 + b * (w - 1) / 2 + inv_zoom[1] * t * h + b * t * w


@dataclass
class _Workspace:
    """The arrays one batch size reuses, and the views of them each chunk's products read and write."""

    chunks: int  # the batch is sampled in this many chunks ...
    per: int  # ... of this many images (the last may hold fewer)
    coef: np.ndarray  # (chunks, KH, KW, 2, per): per chunk, axis and image a coefficient matrix
    left: list[np.ndarray]  # per chunk, its coefficients as the first product's left operand (KW·2·per, KH)
    half: np.ndarray  # (KW·2·per, H): (B_H·C)ᵀ per axis and image of a chunk, laid out (KW, 2, per, H)
    coords: np.ndarray  # (2, per, H, W): a chunk's sampling coordinates, rows then columns
    tall: np.ndarray  # a chunk's images stacked, gaps between and beside them (``Augmenter._tall``)
    inner: np.ndarray  # (per, H, W): the images' places in ``tall``
    background: float = math.nan  # the value the gaps hold now (NaN: not filled yet)


class Augmenter:
    """The transforms of one ``data.augment`` for (B, H, W) batches, with workspace reused between calls.

    A batch is drawn at once and sampled in chunks of up to ``CHUNK_PIXELS``: each chunk's coordinates are
    written, then read by OpenCV, while they are still in the core's cache.

    Not thread-safe: one Augmenter per thread.
    """

    def __init__(self, h: int, w: int, *, elastic: dict | None = None, affine: dict | None = None) -> None:
        self.h, self.w = h, w
        self.elastic = elastic if elastic is not None and elastic.get("alpha", 0.0) > 0 else None
        self.affine = affine
        if affine is not None:
            deg, t = math.pi / 180, affine.get("translate", 0.0)
            self._affine_ranges = np.array([affine.get("rotate", 0.0) * deg, affine.get("scale", 0.0),
                                            affine.get("shear", 0.0) * deg, t * h, t * w])[:, None]
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
        # How far any row coordinate of these settings can stray from its own row, and the rows of background
        # between neighbouring images in the stacked image: past it. Fixed from the settings alone, so that the
        # images of a step do not depend on what was drawn before (a resumed run gets the same bytes).
        self.reach = self.elastic_reach + affine_reach(h, w, affine)
        self._gap = math.ceil(self.reach) + 2
        self._side = self._gap  # columns of background on either side of each image
        self._work: dict[int, _Workspace] = {}

    def _layout(self, b: int) -> tuple[int, int]:
        """(chunks, images per chunk) for a batch of b: chunks of at most CHUNK_PIXELS, as even as can be."""
        most = max(1, CHUNK_PIXELS // (self.h * self.w))
        chunks = -(-b // most)
        return chunks, -(-b // chunks)

    def _buffers(self, b: int) -> _Workspace:
        work = self._work.get(b)
        if work is None:
            h, w, f32 = self.h, self.w, np.float32
            kh, kw = self.kh + 2, self.kw + 2
            chunks, per = self._layout(b)
            if len(self._work) > 1:  # two batch sizes at a time: an epoch's full units and its last one
                self._work.clear()
            # Entries outside the elastic block and the three affine corners stay 0.
            coef = np.zeros((chunks, kh, kw, 2, per), f32)
            tall = self._tall(per)
            work = self._work[b] = _Workspace(
                chunks, per, coef, [coef[c].reshape(kh, -1).T for c in range(chunks)],
                np.empty((kw * 2 * per, h), f32), np.empty((2, per, h, w), f32), tall,
                tall[self._gap :].reshape(per, h + self._gap, -1)[:, :h, self._side : self._side + w])
        return work

    def _tall(self, per: int) -> np.ndarray:
        """``per`` images stacked into one (G + per·(H + G), G + W + G) image, image k at row G + k·(H + G)
        and column G: bilinear samples of one image never reach the next as long as they stay within G − 1
        rows of it, and those within G − 1 columns of it take OpenCV's fast path."""
        return np.empty((self._gap + per * (self.h + self._gap), self.w + 2 * self._side), np.float32)

    def _row_offsets(self, k: np.ndarray) -> np.ndarray:
        """The stacked image's row of image k's row 0 (see ``_tall``)."""
        return self._gap + k * (self.h + self._gap)

    def _stacks(self, per: int) -> bool:
        """Whether chunks of ``per`` images are sampled stacked as they are: every draw stays within the gaps
        (always, unless a test narrows them), and the stacked image fits OpenCV."""
        return self.reach + 2 <= self._gap and self._fits_opencv(per)

    def _fits_opencv(self, per: int) -> bool:
        # The stacked image's rows bound per·h and per too, so either shape of the maps in _remap fits.
        return self.w + 2 * self._side < REMAP_LIMIT and self._gap + per * (self.h + self._gap) < REMAP_LIMIT

    def _draw(self, b: int, rng: np.random.Generator, *, stacked: bool) -> _Workspace:
        """Draw the transforms of b images into the workspace's coefficients; with ``stacked``, their rows are
        the stacked image's."""
        h, w, kh, kw = self.h, self.w, self.kh, self.kw
        work = self._buffers(b)
        coef, per = work.coef, work.per
        el = self.elastic
        if el is not None:
            on = rng.random(b) < el.get("p", 1.0)
            # Z uniform in [−1, 1] on a grid of 2¹⁶ levels: α·(u·2/65535 − 1) for 16-bit integers u, four from
            # each raw 64-bit draw (a third of the cost of float32 uniforms). Drawn for whole chunks, the last
            # one's unused places included, laid out (chunks, KH, KW, 2, per).
            block = coef[:, :kh, :kw]
            raw = rng.bit_generator.random_raw(-(-block.size // 4)).view(np.uint16)[: block.size]
            alpha = float(el["alpha"])
            np.multiply(raw.reshape(block.shape), np.float32(alpha * 2 / 65535), out=block, casting="unsafe")
            block -= np.float32(alpha)
            if not on.all():
                applies = np.zeros(work.chunks * per, np.float32)
                applies[:b] = on
                block *= applies.reshape(work.chunks, 1, 1, 1, per)
        affine = self.affine
        if affine is not None:
            # One draw for all: whether it applies, then the angle, zoom, shear and shift (rows, columns), each
            # uniform over its range.
            u = rng.random((6, b))
            r = (u[1:] * 2 - 1) * self._affine_ranges
            if not (on := u[0] < affine.get("p", 1.0)).all():
                r *= on
            m = affine_matrices(h, w, r[0], 1 + r[1], r[2], r[3:].T)
        else:  # the identity
            m = np.zeros((b, 2, 3))
            m[:, 0, 0] = m[:, 1, 1] = 1
        if stacked:  # whole numbers: exact
            m[:, 0, 2] += self._row_offsets(np.arange(b) % per)
            m[:, 1, 2] += self._side
        # coordinate = M[0]·i + M[1]·j + M[2]: B_H's index column times B_W's ones, and so on.
        corners = np.zeros((work.chunks * per, 2, 3), np.float32)
        corners[:b] = m
        corners = corners.reshape(work.chunks, per, 2, 3).transpose(0, 3, 2, 1)  # (chunks, 3, 2, per)
        coef[:, kh, kw + 1] = corners[:, 0]
        coef[:, kh + 1, kw] = corners[:, 1]
        coef[:, kh + 1, kw + 1] = corners[:, 2]
        return work

    def _chunk_coordinates(self, work: _Workspace, c: int) -> np.ndarray:
        """Chunk c's coordinates (2, per, H, W), from two GEMMs through SciPy's BLAS, like the training step
        (see mlpkit/nn/_kernels.py), each reading its left operand transposed: (C per axis and image)ᵀ·B_Hᵀ,
        then (that)ᵀ·B_Wᵀ."""
        half = matmul(work.left[c], self.bh.T, out=work.half)  # (KW·2·per, KH) @ (KH, H)
        # (2·per·H, KW) @ (KW, W)
        matmul(half.reshape(self.kw + 2, -1).T, self.bw.T, out=work.coords.reshape(-1, self.w))
        return work.coords

    def coordinates(self, b: int, rng: np.random.Generator) -> np.ndarray:
        """Sampling coordinates (2, B, H, W) float32 for B images: identity plus the transforms."""
        work = self._draw(b, rng, stacked=False)
        coords = np.empty((2, b, self.h, self.w), np.float32)
        for c, start in enumerate(range(0, b, work.per)):
            chunk = coords[:, start : start + work.per]
            chunk[...] = self._chunk_coordinates(work, c)[:, : chunk.shape[1]]
        return coords

    def _fill(self, work: _Workspace, images: np.ndarray, scale: float, shift: float) -> np.ndarray:
        """The stacked image of ``images`` (at most ``per``) in the model's units, its gaps holding the
        background."""
        tall = work.tall
        if work.background != shift:  # NaN at first: never equal
            tall.fill(shift)
            work.background = shift
        inner = work.inner[: len(images)]
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
        work = self._buffers(b)
        if not self._fits_opencv(work.per):  # beyond OpenCV's sizes: the plain version
            np.multiply(bilinear(images, coords), scale, out=out, casting="unsafe")
            out += np.float32(shift)
            return out
        offsets = self._row_offsets(np.arange(work.per)).astype(np.float32)[:, None, None]
        for start in range(0, b, work.per):
            part = slice(start, start + work.per)
            tall = self._fill(work, images[part], scale, shift)
            # Rows clipped to [−1, h], beyond which every sample reads background anyway, so that none reaches
            # into the next image; columns read the side gap's background, or beyond it the same from the border.
            rows = np.clip(coords[0, part], -1, h).astype(np.float32)
            rows += offsets[: len(rows)]
            cols = np.add(coords[1, part], self._side, dtype=np.float32)
            self._remap(tall, rows, cols, out[part], shift)
        return out

    def __call__(self, images: np.ndarray, rng: np.random.Generator, out: np.ndarray | None = None, *,
                 scale: float = 1.0, shift: float = 0.0) -> np.ndarray:
        """A randomly transformed copy of ``images`` (B, H, W), float32: bilinear samples of ``images ·
        scale + shift`` (the model's units), in that range to float32 rounding."""
        b = len(images)
        per = self._layout(b)[1]
        if not self._stacks(per):  # too large for OpenCV, or gaps narrower than a draw can reach: clipped first
            return self.sample(images, self.coordinates(b, rng), out, scale=scale, shift=shift)
        out = np.empty(images.shape, np.float32) if out is None else out
        work = self._draw(b, rng, stacked=True)
        for c, start in enumerate(range(0, b, per)):
            coords = self._chunk_coordinates(work, c)
            part, n = slice(start, start + per), min(per, b - start)
            self._remap(self._fill(work, images[part], scale, shift), coords[0, :n], coords[1, :n], out[part],
                        shift)
        return out


def sample(images: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``images`` (B, H, W) at ``coords`` (2, B, H, W); see ``Augmenter.sample``."""
    return Augmenter(*images.shape[1:]).sample(images, coords)


def augment(images: np.ndarray, rng: np.random.Generator, *, elastic: dict | None = None,
            affine: dict | None = None) -> np.ndarray:
    """A randomly transformed copy of ``images`` (B, H, W), float32 in the input's value range (clipped to it:
    rounding can step a hair past, and a picture made of it must not wrap around)."""
    out = Augmenter(*images.shape[1:], elastic=elastic, affine=affine)(images, rng)
    return np.clip(out, min(float(images.min(initial=0)), 0.0), float(images.max(initial=0)), out=out)
