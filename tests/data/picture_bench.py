"""A generated benchmark of pictures people really take of digits, made from MNIST test digits: each digit
redrawn large as dark ink on light paper, then pixel noise of a given standard deviation, a lighting gradient
across the page (paper grey 120 on one side to 230 on the other), JPEG compression, or the digit placed
off-centre on a larger page. ``python -m tests.data.picture_bench`` prints the accuracy of each condition."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

CONDITIONS = ("clean", "noise 10", "noise 20", "noise 30", "gradient", "jpeg", "page", "page noise 20",
              "page gradient")


def redraw(digit28: np.ndarray, size: int = 200) -> np.ndarray:
    """An MNIST digit (white on black, 0..255) as dark ink on white paper, ``size`` px square, float 0..255."""
    im = Image.fromarray(digit28.astype(np.uint8)).resize((size, size), Image.Resampling.BILINEAR)
    return 255.0 - np.asarray(im, dtype=np.float64)


def on_page(pic: np.ndarray, rng: np.random.Generator, page: tuple[int, int] = (260, 300)) -> np.ndarray:
    """The picture pasted off-centre (at a random place) on a larger white page."""
    h, w = pic.shape
    out = np.full(page, 255.0)
    top, left = int(rng.integers(0, page[0] - h + 1)), int(rng.integers(0, page[1] - w + 1))
    out[top: top + h, left: left + w] = pic
    return out


def gradient(pic: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Paper lit unevenly: grey 120 on one side to 230 on the other (a random direction), ink kept darker."""
    h, w = pic.shape
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w]
    t = (np.cos(angle) * (xx / w - 0.5) + np.sin(angle) * (yy / h - 0.5)) / 0.71 + 0.5  # 0..1 across
    paper = 120.0 + 110.0 * np.clip(t, 0, 1)
    return pic / 255.0 * paper  # ink (0) stays 0, paper becomes the lit grey


def noisy(pic: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    return pic + rng.normal(0.0, std, pic.shape)


def jpeg(pic: np.ndarray, quality: int = 30) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(np.clip(pic, 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=quality)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        return np.asarray(im.convert("L"), dtype=np.float64)


def picture(digit28: np.ndarray, condition: str, rng: np.random.Generator) -> np.ndarray:
    """One MNIST digit under ``condition`` (one of CONDITIONS), as a uint8 grayscale picture."""
    pic = redraw(digit28)
    if condition.startswith("page"):
        pic = on_page(pic, rng)
    if "gradient" in condition:
        pic = gradient(pic, rng)
    if "noise" in condition:
        pic = noisy(pic, float(condition.split()[-1]), rng)
    if condition == "jpeg":
        pic = jpeg(noisy(pic, 10.0, rng))
    return np.clip(pic, 0, 255).astype(np.uint8)


def accuracy(run: str, x_test: np.ndarray, y_test: np.ndarray, condition: str, n: int, folder, seed: int = 0
             ) -> float:
    """The run's accuracy on the first ``n`` test digits under ``condition``, through ``mlpkit predict``'s
    whole path (pictures written as PNG files and read back)."""
    from mlpkit.app.predict import predict

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        p = folder / f"{condition.replace(' ', '_')}_{i:04d}.png"
        Image.fromarray(picture(x_test[i].reshape(28, 28), condition, rng)).save(p)
        paths.append(p)
    result, _, _ = predict(run, paths)
    guesses = np.array([int(item.top[0].name) for item in result.items])
    return float((guesses == y_test[:n]).mean())
