"""Users' own datasets: ImageFolder layouts and CSV files, built here from the embedded digits."""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mlpkit.app.cli import app
from mlpkit.data import images
from mlpkit.data.folders import FolderOptions
from mlpkit.data.load import load_dataset, load_digits
from mlpkit.errors import DataError

runner = CliRunner()
NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def _digit_png(x64: np.ndarray, path: Path, size: int = 32) -> None:
    img = (x64.reshape(8, 8).astype(np.float32) * 255 / 16).astype(np.uint8)
    Image.fromarray(img).resize((size, size), Image.BILINEAR).save(path)


def _folder(root: Path, n: int = 400, split: bool = False) -> Path:
    d = load_digits()
    parts = [("train", d.x_train[:n], d.y_train[:n]), ("test", d.x_test[: n // 4], d.y_test[: n // 4])] if split \
        else [("", d.x_train[:n], d.y_train[:n])]
    for sub, xs, ys in parts:
        for i, (x, y) in enumerate(zip(xs, ys)):
            folder = root / sub / NAMES[y]
            folder.mkdir(parents=True, exist_ok=True)
            _digit_png(x, folder / f"{i:04d}.png")
    return root


def _config(tmp_path: Path, dataset: Path, extra: str = "") -> Path:
    p = tmp_path / "own.yaml"
    p.write_text(f"data: {{dataset: '{dataset}', image_size: 12{extra}}}\n"
                 "model: {layers: [{linear: 64}, sigmoid, {linear: 10}]}\ntrain: {epochs: 15, batch_size: 16, "
                 "lr: 0.3, momentum: 0.9}\n")
    return p


def test_an_image_folder_trains_with_its_class_names(tmp_path):
    root = _folder(tmp_path / "digits")
    r = runner.invoke(app, ["train", str(_config(tmp_path, root)), "--out", str(tmp_path / "run"), "-q", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    n_test = res["test"]["n"]
    assert 75 <= n_test <= 85 and res["test"]["class_names"] == sorted(NAMES)  # 20 % of each class held out
    assert res["test"]["accuracy"] > 0.7
    r = runner.invoke(app, ["data", "info", str(root), "--json"])
    info = json.loads(r.stdout)
    assert r.exit_code == 0 and info["x_train_shape"] == [400 - n_test, 784] and info["image_shape"] == [28, 28]
    assert sum(info["train_per_class"]) == 400 - n_test and info["class_names"] == sorted(NAMES)
    r = runner.invoke(app, ["predict", str(tmp_path / "run"), str(root / "seven"), "--json"])
    tops = [item["top"][0]["name"] for item in json.loads(r.stdout)["items"]]
    assert r.exit_code == 0 and set(tops) <= set(NAMES) and tops.count("seven") > len(tops) / 2  # names, not numbers


def test_train_and_test_subfolders_are_the_split(tmp_path):
    root = _folder(tmp_path / "split", n=200, split=True)
    ds = load_dataset(str(root), options=FolderOptions(image_size=16))
    assert ds.x_train.shape == (200, 256) and ds.x_test.shape == (50, 256) and ds.image_shape == (16, 16)


def test_folders_are_cached_until_a_file_changes(tmp_path, monkeypatch):
    root = _folder(tmp_path / "c", n=60)
    first = load_dataset(str(root))
    calls = []
    real = images.read_image

    def counting(path):
        calls.append(path)
        return real(path)

    monkeypatch.setattr("mlpkit.data.folders.read_image", counting)
    again = load_dataset(str(root))
    assert calls == [] and np.array_equal(first.x_train, again.x_train)  # from the cache
    victim = next((root / "three").iterdir())
    _digit_png(load_digits().x_train[0], victim, size=40)  # changed content and size
    load_dataset(str(root))
    assert len(calls) == 60  # read again


def test_unprepared_images_must_share_a_size(tmp_path):
    root = _folder(tmp_path / "m", n=40)
    odd = next((root / "one").iterdir())
    _digit_png(load_digits().x_train[1], odd, size=20)
    with pytest.raises(DataError, match=r"is 20×20 but .* is 32×32; images of mixed sizes need data.prepare"):
        load_dataset(str(root), options=FolderOptions(prepare=False))
    ds = load_dataset(str(root), options=FolderOptions(prepare=True, image_size=10))
    assert ds.image_shape == (10, 10)


@pytest.mark.parametrize("damage,expect", [
    ("empty class", "the class folder is empty"),
    ("text file", "is not an image file"),
    ("corrupt image", "is not a readable image"),
    ("single class", "holds a single class folder"),
    ("no classes", "holds no class folders"),
])
def test_bad_folders_are_one_line_naming_the_place(tmp_path, damage, expect):
    root = _folder(tmp_path / "bad", n=40)
    if damage == "empty class":
        (root / "empty").mkdir()
    elif damage == "text file":
        (root / "two" / "notes.txt").write_text("hi")
    elif damage == "corrupt image":
        (root / "two" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    elif damage == "single class":
        root = tmp_path / "one-class"
        (root / "a").mkdir(parents=True)
        _digit_png(load_digits().x_train[0], root / "a" / "x.png")
    else:
        root = tmp_path / "flat"
        root.mkdir()
    r = runner.invoke(app, ["data", "info", str(root)])
    assert r.exit_code == 2 and "Traceback" not in r.output
    line = " ".join(r.output.split())
    assert expect in line and str(root) in line


def _csv(tmp_path: Path, header: str | None, label_last: bool = False) -> Path:
    d = load_digits()
    x = np.repeat(np.repeat(d.x_train[:300].reshape(-1, 8, 8) * 255 // 16, 2, axis=1), 2, axis=2).reshape(300, 256)
    rows = [[*r, y] if label_last else [y, *r] for r, y in zip(x.tolist(), d.y_train[:300].tolist())]
    lines = ([header] if header else []) + [",".join(map(str, r)) for r in rows]
    p = tmp_path / "digits.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


@pytest.mark.parametrize("header,label_last,column", [
    ("label," + ",".join(f"pixel{i}" for i in range(256)), False, "label"),
    (None, False, "label"),
    (",".join(f"pixel{i}" for i in range(256)) + ",digit", True, "digit"),
])
def test_a_csv_of_pixel_rows(tmp_path, header, label_last, column):
    p = _csv(tmp_path, header, label_last)
    ds = load_dataset(str(p), options=FolderOptions(label_column=column))
    assert ds.x_train.shape == (240, 256) and ds.x_test.shape == (60, 256) and ds.image_shape == (16, 16)
    assert ds.num_classes == 10 and set(ds.y_train.tolist()) == set(range(10))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {{dataset: '{p}', label_column: {column}}}\nmodel: {{layers: [{{linear: 10}}]}}\n"
                   "train: {epochs: 5}\n")
    r = runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "run"), "-q"])
    assert r.exit_code == 0, r.output


def test_bad_csv_files(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("label,a,b\n1,2,3\n")
    with pytest.raises(DataError, match="rows have 2 pixel values, not a square image"):
        load_dataset(str(p))
    p.write_text("name,pixel0\n1,2\n")
    with pytest.raises(DataError, match="its header has no column 'label'"):
        load_dataset(str(p))
    p.write_text("1,2,3,4,5\n1,2,x,4,5\n")
    with pytest.raises(DataError, match="row 2 does not hold 5 numbers"):
        load_dataset(str(p))


# -- hostile CSVs (issue 23, items 5-7): labels bounded, headers checked, a byte-order mark is not data ----------


@pytest.mark.parametrize("label", ["inf", "-inf", "nan", "1000000000", "1e15", "10000", "2.5", "-1"])
def test_csv_labels_are_bounded_whole_numbers(tmp_path, label):
    """A label of inf passed the whole-number check; 1e9 built a billion class names; 1e15 ran out of memory."""
    p = tmp_path / "x.csv"
    p.write_text("1,0,0,0,0\n" + f"{label},0,0,0,0\n")
    r = runner.invoke(app, ["data", "info", str(p)])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert r.output.strip() == f"error: {p}: labels must be whole numbers 0..C-1, with at most 10,000 classes."


def test_the_largest_label_allowed_passes_the_bound(tmp_path):
    """9999 is within the bound; the dataset is then refused for its empty classes, not for the label."""
    p = tmp_path / "x.csv"
    p.write_text("".join(f"{c},0,0,0,{c % 256}\n" for c in (0, 1, 9999)) * 4)
    with pytest.raises(DataError, match="class '2' has no training example"):
        load_dataset(str(p))


@pytest.mark.parametrize("header,rows", [
    ("p0,p1,p2,p3,label", "0,0,0,0\n1,1,1,1\n"),  # one column longer, label last: an IndexError traceback
    ("label,p0,p1,p2", "0,0,0,0,0\n1,1,1,1,1\n"),  # one shorter
])
def test_a_csv_header_must_match_its_rows(tmp_path, header, rows):
    p = tmp_path / "x.csv"
    p.write_text(header + "\n" + rows)
    with pytest.raises(DataError, match=rf"{re.escape(str(p))}: its header has \d columns but its first row has \d"):
        load_dataset(str(p))


def test_a_csv_with_a_byte_order_mark_reads_as_without(tmp_path):
    """Excel's "CSV UTF-8" starts with a BOM: the header's first column is `label`, not `\\ufefflabel`."""
    plain = _csv(tmp_path, "label," + ",".join(f"pixel{i}" for i in range(256)))
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    a, b = load_dataset(str(plain)), load_dataset(str(bom))
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_train, b.y_train)


def test_a_folder_of_too_many_classes_is_refused_before_reading(tmp_path, monkeypatch):
    from mlpkit.data import folders

    monkeypatch.setattr(folders, "MAX_CLASSES", 3)
    for c in "abcd":
        (tmp_path / "pics" / c).mkdir(parents=True)
    with pytest.raises(DataError, match=r"holds 4 class folders; at most 3"):
        load_dataset(str(tmp_path / "pics"))


def test_a_content_change_that_keeps_size_and_mtime_is_read_again(tmp_path, monkeypatch):
    """Issue 23, item 9: the cache was keyed on size and mtime, which a copy tool (or os.utime) can keep."""
    root = _folder(tmp_path / "c", n=60)
    first = load_dataset(str(root))
    victim = sorted((root / "three").iterdir())[0]
    st = victim.stat()
    data = bytearray(victim.read_bytes())
    other = sorted((root / "seven").iterdir())[0].read_bytes()
    if len(other) == len(data):  # the same size: a real change of content that keeps the size
        data = bytearray(other)
    else:
        data[-20] ^= 0xFF  # flip a byte of the image data near the end (inside the last chunk before IEND)
    victim.write_bytes(bytes(data))
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert victim.stat().st_size == st.st_size and victim.stat().st_mtime_ns == st.st_mtime_ns
    calls = []
    real = images.read_image
    monkeypatch.setattr("mlpkit.data.folders.read_image", lambda p: calls.append(p) or real(p))
    with contextlib.suppress(DataError):  # a corrupted picture is refused: it was read again, which is the point
        load_dataset(str(root))
    assert victim in calls
    assert first.x_train.shape[0] > 0


def test_a_preview_or_a_plot_is_never_written_into_the_dataset_it_reads(tmp_path):
    """Issue 23, "one way out": -o inside an image-folder dataset would add a picture to it (or replace one)."""
    root = _folder(tmp_path / "digits", n=40)
    cfg = _config(tmp_path, root, ", augment: {affine: {rotate: 10}}")
    seven = sorted((root / "seven").iterdir())[0]
    before = {p: p.read_bytes() for p in root.rglob("*.png")}
    for out in (seven, root / "seven" / "new.png"):
        r = runner.invoke(app, ["data", "preview", str(cfg), "-o", str(out)])
        assert r.exit_code == 2 and r.output.strip() == f"error: -o {out}: cannot be written (it is inside {root}, " \
                                                        "which this command reads)."
    assert {p: p.read_bytes() for p in root.rglob("*.png")} == before
    out = tmp_path / "grid.png"
    assert runner.invoke(app, ["data", "preview", str(cfg), "-o", str(out)]).exit_code == 0 and out.is_file()
