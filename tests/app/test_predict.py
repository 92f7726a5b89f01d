"""mlpkit predict: users' own pictures prepared the way MNIST's were, and hostile files refused in one line."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mlpkit.app import api
from mlpkit.app.cli import app
from mlpkit.data import images

from ..conftest import CONFIGS, MNIST_DIR, ROOT, needs_mnist

runner = CliRunner()


def _top1(stdout: str) -> list[int]:
    return [item["top"][0]["label"] for item in json.loads(stdout)["items"]]


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("mn") / "run"
    r = runner.invoke(app, ["train", str(CONFIGS / "mnist-sigmoid.yaml"), "--data-dir", str(MNIST_DIR), "--epochs",
                            "2", "--out", str(run), "-q"])
    assert r.exit_code == 0, r.output
    return run


@pytest.mark.slow
@needs_mnist
def test_photos_of_mnist_digits_score_like_the_originals(mnist_run, tmp_path):
    """500 test digits drawn at 200×200, inverted (dark ink on white), and shifted off-centre on a larger
    page: after preparation the model scores within 2 points of the same 500 original images."""
    from mlpkit.data.load import load_dataset

    d = load_dataset("mnist", str(MNIST_DIR), offline=True)
    x, y = d.x_test[:500].reshape(-1, 28, 28), d.y_test[:500]
    np.save(tmp_path / "originals.npy", x)
    r = runner.invoke(app, ["predict", str(mnist_run), str(tmp_path / "originals.npy"), "--json"])
    assert r.exit_code == 0, r.output
    base = float(np.mean(np.array(_top1(r.stdout)) == y))
    assert base > 0.9
    rng = np.random.default_rng(0)
    for variant in ("large", "inverted", "shifted"):
        folder = tmp_path / variant
        folder.mkdir()
        for i, img in enumerate(x):
            if variant == "large":
                pic = Image.fromarray(img).resize((200, 200), Image.BILINEAR)
            elif variant == "inverted":
                pic = Image.fromarray(255 - img).resize((200, 200), Image.BILINEAR)
            else:
                pic = Image.new("L", (300, 260), 255)
                pic.paste(Image.fromarray(255 - img).resize((120, 120), Image.BILINEAR),
                          (int(rng.integers(0, 170)), int(rng.integers(0, 130))))
            pic.save(folder / f"{i:04d}.png")
        r = runner.invoke(app, ["predict", str(mnist_run), str(folder), "--json"])
        assert r.exit_code == 0, r.output
        acc = float(np.mean(np.array(_top1(r.stdout)) == y))
        assert abs(acc - base) <= 0.02, (variant, acc, base)


def test_preparation_matches_mnist_conventions():
    """A digit anywhere on a light page ends up white on black, 20 px on its longer side, centre of mass at (14, 14)."""
    page = np.full((300, 200), 250.0)
    page[40:160, 120:150] = 10.0  # a dark bar, 120 tall and 30 wide
    out = images.prepare(page)
    assert out.shape == (28, 28) and out.max() == pytest.approx(1.0, abs=0.02) and out[0, 0] == 0
    rows, cols = np.flatnonzero((out > 0.25).any(axis=1)), np.flatnonzero((out > 0.25).any(axis=0))
    assert rows[-1] - rows[0] + 1 == 20 and 4 <= cols[-1] - cols[0] + 1 <= 6
    t = out.sum()
    assert abs((out.sum(1) * np.arange(28)).sum() / t - 14) <= 0.5
    assert abs((out.sum(0) * np.arange(28)).sum() / t - 14) <= 0.5
    with pytest.raises(Exception, match="is blank"):
        images.prepare(np.full((50, 50), 255.0), source="white.png")


def test_a_digits_run_predicts_8x8_with_class_names_and_shows_it(tmp_path):
    run = tmp_path / "d"
    assert runner.invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), "--epochs", "3", "--out", str(run),
                               "-q"]).exit_code == 0
    pic = Image.new("L", (100, 100), 255)
    pic.paste(0, (45, 15, 55, 85))  # a "1"
    pic.save(tmp_path / "one.png")
    r = runner.invoke(app, ["predict", str(run), str(tmp_path / "one.png"), "--show", "-k", "2"])
    assert r.exit_code == 0, r.output
    assert "█" in r.output and "one.png: " in r.output and r.output.count("%") == 2
    r = runner.invoke(app, ["predict", str(run), str(tmp_path / "one.png"), "--json"])
    data = json.loads(r.stdout)
    assert data["image_shape"] == [8, 8] and len(data["items"][0]["top"]) == 3
    assert abs(sum(g["probability"] for g in data["items"][0]["top"]) - 1) < 0.5
    r = runner.invoke(app, ["predict", str(run), str(tmp_path / "one.png"), "--raw"])
    assert r.exit_code == 2 and "with --raw it must already be the run's 8×8" in r.output


def test_arrays_and_csv_rows(tmp_path):
    run = tmp_path / "d"
    assert runner.invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), "--epochs", "2", "--out", str(run),
                               "-q"]).exit_code == 0
    from mlpkit.data.load import load_digits

    d = load_digits()
    x8 = (d.x_test[:20].astype(np.float32) * 255 / 16).astype(np.uint8)  # the digits' own 0..16 scale, as 0..255
    np.save(tmp_path / "x.npy", x8)  # N×64: already the run's size, used as given
    np.savez(tmp_path / "x.npz", x=x8.reshape(-1, 8, 8))
    (tmp_path / "x.csv").write_text("label," + ",".join(f"p{i}" for i in range(64)) + "\n"
                                    + "\n".join(",".join(map(str, [y, *row])) for y, row in zip(d.y_test[:20], x8)))
    answers = []
    for f in ("x.npy", "x.npz", "x.csv"):
        r = runner.invoke(app, ["predict", str(run), str(tmp_path / f), "--json"])
        assert r.exit_code == 0, (f, r.output)
        items = json.loads(r.stdout)["items"]
        assert len(items) == 20 and not items[0]["prepared"]
        answers.append(_top1(r.stdout))
    assert answers[0] == answers[1] == answers[2]
    assert np.mean(np.array(answers[0]) == d.y_test[:20]) > 0.7


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width×height pixels (a decompression bomb's first line)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND",
                                                                                                         b"")


@pytest.mark.parametrize("name,data,expect", [
    ("broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "is not a readable image"),
    ("empty.png", b"", "is empty"),
    ("bomb.png", _png_claiming(100_000, 100_000), "decompression bomb"),
    ("text.jpg", b"just some text\n" * 20, "is not a readable image"),
    ("objects.npy", None, "is not a readable .npy array"),
    ("rows.csv", b"1,2,3\n4,5,6\n", "row 1 has 3 values"),
    ("white.png", None, "is blank"),
])
def test_bad_inputs_are_one_line_naming_the_file(tmp_path, name, data, expect):
    run = tmp_path / "d"
    assert runner.invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), "--epochs", "1", "--out", str(run),
                               "-q"]).exit_code == 0
    p = tmp_path / name
    if name == "objects.npy":
        np.save(p, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    elif name == "white.png":
        Image.new("L", (40, 40), 255).save(p)
    else:
        p.write_bytes(data)
    r = runner.invoke(app, ["predict", str(run), str(p)])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    lines = [line for line in r.output.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and str(p) in " ".join(r.output.split()) and expect in " ".join(r.output.split())


def test_a_csv_with_a_byte_order_mark_predicts_like_without(tmp_path):
    """Issue 23, item 7: with a BOM the header line was taken for a row of data, and the first row for a header."""
    run = tmp_path / "d"
    assert runner.invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), "--epochs", "1", "--out", str(run),
                               "-q"]).exit_code == 0
    rows = "\n".join(",".join(str((i * 7 + j) % 256) for j in range(64)) for i in range(3)) + "\n"
    for name, head in (("plain.csv", b""), ("bom.csv", b"\xef\xbb\xbf")):
        (tmp_path / name).write_bytes(head + ("," .join(f"p{i}" for i in range(64)) + "\n" + rows).encode())
    out = [json.loads(runner.invoke(app, ["predict", str(run), str(tmp_path / n), "--json"]).stdout)["items"]
           for n in ("plain.csv", "bom.csv")]
    assert len(out[0]) == len(out[1]) == 3
    assert [i["top"] for i in out[0]] == [i["top"] for i in out[1]]


HOSTILE_NAMES = ["[bold]x", "[link=file:x]y", "\x1b[2Jz", "a\x07b", "\x9b31mc"]


def test_class_names_from_a_folder_are_printed_literally(tmp_path):
    """Issue 23, item 19: rich markup in a class folder's name was interpreted, and an ANSI escape cleared the
    screen. Every name reaches the terminal as it is: markup shown, control characters as \\x.. escapes."""
    root = tmp_path / "pics"
    rng = np.random.default_rng(0)
    for k, name in enumerate(HOSTILE_NAMES):
        (root / name).mkdir(parents=True)
        for i in range(6):
            img = np.zeros((12, 12), np.uint8)
            img[2:10, 2 + k: 4 + k] = 200 + rng.integers(0, 50)
            Image.fromarray(img).save(root / name / f"{i}.png")
    r = runner.invoke(app, ["data", "info", str(root)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "\x1b" not in r.output and "\x07" not in r.output and "\x9b" not in r.output
    for shown in ("[bold]x", "[link=file:x]y", "\\x1b[2Jz", "a\\x07b", "\\x9b31mc"):
        assert shown in r.output, (shown, r.output)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {{dataset: '{root}', image_size: 8, test_fraction: 0.34}}\n"
                   "model: {layers: [{linear: 5}]}\ntrain: {epochs: 2}\n")
    assert runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "run"), "-q"]).exit_code == 0
    r = runner.invoke(app, ["evaluate", str(tmp_path / "run")], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "\x1b" not in r.output and "[bold]x" in r.output and "\\x1b[2Jz" in r.output


@pytest.mark.parametrize("name", ["in.npy", "in.npz", "in.csv", "in.png"])
def test_a_fifo_or_a_device_given_to_predict_is_refused_at_once(tmp_path, name):
    """Issue 23, item 4: a FIFO given to predict blocked for ever; a link to /dev/zero ran until MemoryError."""
    run = tmp_path / "d"
    assert runner.invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), "--epochs", "1", "--out", str(run),
                               "-q"]).exit_code == 0
    fifo = tmp_path / name
    os.mkfifo(fifo)
    zero = tmp_path / f"zero-{name}"
    zero.symlink_to("/dev/zero")
    for p, kind in ((fifo, "a FIFO"), (zero, "a device")):
        r = runner.invoke(app, ["predict", str(run), str(p)])
        assert r.exit_code == 2 and "Traceback" not in r.output, r.output
        assert str(p) in r.output and (kind in r.output or "not a regular file" in r.output), r.output


@pytest.mark.parametrize("suffix", [".csv", ".npz"])
def test_a_fifo_or_a_device_as_a_dataset_is_refused_at_once(tmp_path, suffix):
    fifo = tmp_path / f"data{suffix}"
    os.mkfifo(fifo)
    zero = tmp_path / f"zero{suffix}"
    zero.symlink_to("/dev/zero")
    for p in (fifo, zero):
        r = runner.invoke(app, ["data", "info", str(p)])
        assert r.exit_code == 2 and "Traceback" not in r.output and str(p) in r.output, r.output


def test_huge_pixels_are_one_line_without_a_numpy_warning(tmp_path):
    """Issue 23, item 21: pixels of 1e300 printed NumPy's "overflow encountered in cast" before the error."""
    np.save(tmp_path / "big.npy", np.full((2, 8, 8), 1e300))
    r = runner.invoke(app, ["predict", str(ROOT / "tests" / "app" / "legacy_run"), str(tmp_path / "big.npy")])
    assert r.exit_code == 2 and r.output.strip() == (f"error: {tmp_path / 'big.npy'}: pixels must lie in [0, 255] "
                                                     "(integers) or [0, 1] (floats).")


def test_predict_decodes_one_picture_at_a_time(tmp_path, monkeypatch):
    """Issue 23, item 13: every picture was kept decoded at full size until all were read (120 photos of
    3000×3000 ran out of memory and were called unreadable). Now each is read when the previous one is done."""
    folder = tmp_path / "pics"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((30, 20), 255, np.uint8)).save(folder / f"{i}.png")
    calls = []
    real = images.read_image
    monkeypatch.setattr(images, "read_image", lambda p: calls.append(p) or real(p))
    stream = images.load_inputs([folder], 8)
    first = next(stream)
    assert first[0].endswith("0.png") and len(calls) == 1
    assert len(list(stream)) == 2 and len(calls) == 3


# --------------------------------------------------------------------------- pictures people really have (#25)


@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory) -> Path:
    """The first model a new user has: the README's first command (configs/quickstart.yaml, digits)."""
    run = tmp_path_factory.mktemp("qs") / "run"
    r = runner.invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), "--out", str(run), "-q"])
    assert r.exit_code == 0, r.output
    return run


@pytest.mark.slow
def test_the_quickstart_model_reads_drawn_digits(quickstart_run, tmp_path):
    """Issue 25: a thick "7" on a white 400×400 canvas read as 4 and a "3" as 8, through MNIST's preparation of
    a UCI-digits model. With the UCI digits' own (the box filling 32×32, block counts), 60 drawings: ten digits,
    pens of 8, 20 and 40 px, boxes of 40 % and 80 % of the canvas."""
    from tests.data.drawn_digits import drawn

    paths, truth = [], []
    for digit in range(10):
        for width in (8, 20, 40):
            for size in (0.4, 0.8):
                p = tmp_path / f"{digit}_{width}_{size}.png"
                drawn(digit, width=width, size=size).save(p)
                paths.append(p)
                truth.append(digit)
    result, _, _ = api.predict(quickstart_run, paths)
    guesses = [int(item.top[0].name) for item in result.items]
    assert result.preparation == "uci-digits"
    right = sum(g == t for g, t in zip(guesses, truth))
    assert right >= 57, list(zip(truth, guesses))  # measured: 58 of 60 (a thin-pen "1" reads as 3)
    assert all(g == t for g, t in zip(guesses, truth) if t in (3, 7)), "the issue's thick 7 and 3"
    mnist_way, _, _ = api.predict(quickstart_run, paths, preparation="mnist")  # the old preparation: 13 of 60
    assert sum(int(i.top[0].name) == t for i, t in zip(mnist_way.items, truth)) < right - 20


@pytest.mark.slow
@needs_mnist
def test_photos_hold_up_under_noise_light_and_jpeg(mnist_run, tmp_path):
    """The generated benchmark (tests/data/picture_bench.py), 200 MNIST test digits per condition, through
    predict's whole path: within 3 points of the clean redrawings up to noise std 20 and JPEG, within 5 under a
    lighting gradient, on a page as well as centred. (Before: noise 20 gave 76 %, a page with noise 28.5 %, a
    gradient 14 %.)"""
    from mlpkit.data.load import load_dataset
    from tests.data.picture_bench import accuracy

    d = load_dataset("mnist", str(MNIST_DIR), offline=True)
    acc = {c: accuracy(str(mnist_run), d.x_test, d.y_test, c, 200, tmp_path) for c in
           ("clean", "noise 10", "noise 20", "noise 30", "jpeg", "gradient", "page", "page noise 20",
            "page gradient")}
    clean = acc["clean"]
    assert clean > 0.93, acc
    for c in ("noise 10", "noise 20", "jpeg", "page", "page noise 20"):
        assert acc[c] >= clean - 0.03, (c, acc)
    for c in ("gradient", "page gradient"):
        assert acc[c] >= clean - 0.05, (c, acc)


def test_the_weights_record_how_pictures_are_prepared(tmp_path):
    from mlpkit.app.runfiles import input_record, load_weights
    from mlpkit.data.registry import preparation_for

    run = tmp_path / "d"
    assert runner.invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), "--epochs", "1", "--out", str(run),
                               "-q"]).exit_code == 0
    saved = load_weights(run)
    assert saved.data["preparation"] == "uci-digits" and input_record(saved)["preparation"] == "uci-digits"
    assert [preparation_for(n) for n in ("digits", "mnist", "kmnist", "x.npz", "x.csv", "folder")] == [
        "uci-digits", "mnist", "mnist", "none", "none", "mnist"]
    assert preparation_for("folder", prepare=False) == "none"


def test_show_puts_the_picture_beside_what_the_model_saw(tmp_path, monkeypatch):
    from tests.data.drawn_digits import drawn

    run = tmp_path / "d"
    assert runner.invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), "--epochs", "2", "--out", str(run),
                               "-q"]).exit_code == 0
    drawn(7, width=30).save(tmp_path / "seven.png")
    monkeypatch.setenv("COLUMNS", "100")
    r = runner.invoke(app, ["predict", str(run), str(tmp_path / "seven.png"), "--show"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("as given"))
    assert "as the model saw it (uci-digits)" in lines[head]
    art = lines[head + 1: head + 17]
    assert len(art) == 16 and all(len(line) > 40 for line in art)  # sixteen rows, the two pictures side by side
    monkeypatch.setenv("COLUMNS", "40")
    r = runner.invoke(app, ["predict", str(run), str(tmp_path / "seven.png"), "--show"])
    assert "as given" in r.stdout and "as the model saw it (uci-digits)" in r.stdout  # one above the other
    assert max(len(line) for line in r.stdout.splitlines()) <= 40


@pytest.mark.parametrize("scene,doubt", [
    ("two digits", "it holds 2 separate marks of similar size; is it a single digit?"),
    ("a filled box", "most of the crop is ink; a digit is strokes on plain paper"),
])
def test_a_picture_that_is_not_one_digit_gets_a_warning(tmp_path, scene, doubt):
    from tests.data.drawn_digits import drawn

    run = tmp_path / "d"
    assert runner.invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), "--epochs", "1", "--out", str(run),
                               "-q"]).exit_code == 0
    if scene == "two digits":
        page = Image.new("L", (600, 300), 255)
        page.paste(drawn(3, canvas=300, width=25), (0, 0))
        page.paste(drawn(7, canvas=300, width=25), (300, 0))
    else:
        page = Image.new("L", (300, 300), 255)
        page.paste(0, (60, 60, 240, 240))
    page.save(tmp_path / "p.png")
    r = runner.invoke(app, ["predict", str(run), str(tmp_path / "p.png")])
    assert r.exit_code == 0 and f"warning: {tmp_path / 'p.png'}: {doubt}" in r.output.replace("\n", " ")
    drawn(5, width=25).save(tmp_path / "five.png")
    r = runner.invoke(app, ["predict", str(run), str(tmp_path / "five.png")])
    assert "warning" not in r.output


def test_preparation_none_wants_the_models_size(tmp_path):
    run = tmp_path / "d"
    assert runner.invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), "--epochs", "1", "--out", str(run),
                               "-q"]).exit_code == 0
    Image.new("L", (50, 40), 255).save(tmp_path / "big.png")
    r = runner.invoke(app, ["predict", str(run), str(tmp_path / "big.png"), "--prepare", "none"])
    assert r.exit_code == 2 and r.output.strip() == (
        f"error: {tmp_path / 'big.png'}: is 50×40 pixels; this run's data has no known preparation, so a picture "
        "must already be 8×8 (or give --prepare mnist).")
