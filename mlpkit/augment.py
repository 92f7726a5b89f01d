"""On-the-fly data augmentation: elastic distortions (Simard et al. 2003) and random affine maps.

Both move pixels: every output pixel (i, j) samples the input, bilinearly, at
(i, j) + a displacement, over a whole batch at once (``scipy.ndimage.map_coordinates``
on (B, H, W); no Python loop over images). Samples that fall outside the image read 0,
the background.

- **elastic** ``{alpha, sigma}``: per image, two fields of uniform noise in [−1, 1] (one
  per axis), each smoothed by a Gaussian of standard deviation ``sigma`` pixels and
  scaled by ``alpha`` pixels.
- **affine** ``{rotate, scale, shear, translate}``: per image, a rotation by up to
  ±``rotate`` degrees, a zoom by a factor in [1 − ``scale``, 1 + ``scale``], a shear by up
  to ±``shear`` degrees, and a shift by up to ±``translate`` × the image's side, all about
  the image's centre.

Each transform applies to an image with probability ``p``. Randomness comes only
from the generator passed in (the run's own ``augment`` stream, checkpointed with
the rest), so a run is reproducible and resumes exactly.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage


def affine_grid(h: int, w: int, angle: np.ndarray, zoom: np.ndarray, shear: np.ndarray, shift: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Where each output pixel samples its input, (B, H, W) rows and columns, for per-image rotations
    (radians), zooms, shears (radians) and shifts (B, 2) in pixels, all about the image's centre.

    The output pixel p samples the input at A⁻¹(p − c − t) + c, with A = rotation · shear · zoom.
    """
    ii, jj = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    cy, cx = (h - 1) / 2, (w - 1) / 2
    y = ii[None] - cy - shift[:, 0, None, None]
    x = jj[None] - cx - shift[:, 1, None, None]
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    yr, xr = cos * y + sin * x, -sin * y + cos * x  # the inverse rotation
    xr = xr - np.tan(shear)[:, None, None] * yr  # the inverse shear
    return yr / zoom[:, None, None] + cy, xr / zoom[:, None, None] + cx


def displacements(shape: tuple[int, int, int], rng: np.random.Generator, *, elastic: dict | None,
                  affine: dict | None) -> np.ndarray:
    """Sampling coordinates (3, B, H, W) for a batch of (B, H, W) images: identity plus the transforms."""
    b, h, w = shape
    none = np.zeros(b)
    angle, zoom, shear, shift = none, np.ones(b), none, np.zeros((b, 2))
    if affine is not None:
        on = rng.random(b) < affine.get("p", 1.0)
        deg = math.pi / 180
        angle = rng.uniform(-1, 1, b) * affine.get("rotate", 0.0) * deg * on
        zoom = 1 + rng.uniform(-1, 1, b) * affine.get("scale", 0.0) * on
        shear = rng.uniform(-1, 1, b) * affine.get("shear", 0.0) * deg * on
        shift = rng.uniform(-1, 1, (b, 2)) * affine.get("translate", 0.0) * np.array([h, w]) * on[:, None]
    rows, cols = affine_grid(h, w, angle, zoom, shear, shift)
    if elastic is not None and elastic.get("alpha", 0.0) > 0:
        on = (rng.random(b) < elastic.get("p", 1.0))[:, None, None]
        sigma = (0, elastic["sigma"], elastic["sigma"])
        for grid in (rows, cols):
            field = ndimage.gaussian_filter(rng.uniform(-1, 1, shape), sigma, mode="constant")
            grid += elastic["alpha"] * field * on
    return np.stack([np.broadcast_to(np.arange(b, dtype=np.float64)[:, None, None], shape), rows, cols])


def sample(images: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``images`` (B, H, W) at ``coords`` (3, B, H, W); outside reads 0. float32."""
    out = ndimage.map_coordinates(images.astype(np.float32), coords, order=1, mode="constant", cval=0.0)
    return np.clip(out, min(float(images.min()), 0.0), float(images.max())).astype(np.float32)


def augment(images: np.ndarray, rng: np.random.Generator, *, elastic: dict | None = None,
            affine: dict | None = None) -> np.ndarray:
    """A randomly transformed copy of ``images`` (B, H, W), float32 in the input's value range."""
    return sample(images, displacements(images.shape, rng, elastic=elastic, affine=affine))
