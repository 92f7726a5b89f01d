"""Pictures people really have (issue 23, items 10-12): deep pictures, transparent backgrounds, phone photos
stored rotated. Each is read as the grayscale a person sees, the same as its plain 8-bit twin."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from mlpkit.data.images import read_image


def _digit() -> np.ndarray:
    """A dark 7 on white, 40×30, uint8."""
    a = np.full((40, 30), 255, np.uint8)
    a[6:10, 5:25] = 20
    for r in range(10, 36):
        c = 24 - (r - 10) * 12 // 26
        a[r, c - 2: c + 2] = 20
    return a


def test_a_16_bit_picture_reads_as_its_8_bit_twin(tmp_path):
    a = _digit()
    Image.fromarray(a).save(tmp_path / "8.png")
    Image.fromarray(a.astype(np.uint16) * 257).save(tmp_path / "16.png")  # 0..65535: clipped to 255 before
    assert Image.open(tmp_path / "16.png").mode.startswith("I;16")
    np.testing.assert_allclose(read_image(tmp_path / "16.png"), read_image(tmp_path / "8.png"), atol=1.0)


def test_a_float_tiff_is_scaled_by_its_own_range(tmp_path):
    a = _digit()
    Image.fromarray(a.astype(np.float32) / 255.0).save(tmp_path / "f.tif")  # 0..1: read as 0..1 of 255 before
    assert Image.open(tmp_path / "f.tif").mode == "F"
    np.testing.assert_allclose(read_image(tmp_path / "f.tif"), a.astype(np.float32), atol=1.0)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_dark_ink_on_a_transparent_background_reads_as_ink_on_white(tmp_path, mode):
    a = _digit()
    ink = a < 128
    if mode == "RGBA":
        px = np.zeros((*a.shape, 4), np.uint8)  # transparent black where there is no ink
        px[ink] = (20, 20, 20, 255)
    else:
        px = np.zeros((*a.shape, 2), np.uint8)
        px[ink] = (20, 255)
    Image.fromarray(px, mode).save(tmp_path / "t.png")
    Image.fromarray(np.where(ink, 20, 255).astype(np.uint8)).save(tmp_path / "w.png")
    np.testing.assert_array_equal(read_image(tmp_path / "t.png"), read_image(tmp_path / "w.png"))


@pytest.mark.parametrize("orientation,turn", [(3, 2), (6, 1), (8, 3)])
def test_a_photo_stored_rotated_is_turned_upright(tmp_path, orientation, turn):
    """EXIF Orientation 6 means: stored rotated, turn 90° clockwise to view (3: 180°, 8: 90° anticlockwise)."""
    a = _digit()
    Image.fromarray(a).save(tmp_path / "upright.jpg", quality=100)
    stored = np.rot90(a, k=turn)  # what the camera wrote: the view turned the other way
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(np.ascontiguousarray(stored)).save(tmp_path / "phone.jpg", exif=exif, quality=100)
    got, want = read_image(tmp_path / "phone.jpg"), read_image(tmp_path / "upright.jpg")
    assert got.shape == want.shape
    assert np.abs(got - want).mean() < 3.0  # JPEG's rounding, not a turned picture (which differs by ~100)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.sampled_from(["L", "I;16", "F", "RGBA", "LA", "RGB", "P"]), st.integers(1, 40), st.integers(1, 40),
       st.integers(0, 2**32 - 1))
def test_any_picture_reads_as_finite_gray_in_0_255(tmp_path_factory, mode, h, w, seed):
    """Property: whatever its mode, size and content, a picture reads as (H, W) float32 within [0, 255]."""
    rng = np.random.default_rng(seed)
    path = tmp_path_factory.mktemp("p") / ("x.tif" if mode == "F" else "x.png")
    if mode == "F":
        im = Image.fromarray((rng.standard_normal((h, w)) * 10.0 ** rng.integers(-3, 6)).astype(np.float32))
    elif mode == "I;16":
        im = Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))
    elif mode in ("RGBA", "LA", "RGB"):
        im = Image.fromarray(rng.integers(0, 256, (h, w, len(mode)), dtype=np.uint8), mode)
    else:
        im = Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), "L").convert(mode)
    im.save(path)
    g = read_image(path)
    assert g.shape == (h, w) and g.dtype == np.float32 and np.isfinite(g).all()
    assert g.min() >= 0 and g.max() <= 255
