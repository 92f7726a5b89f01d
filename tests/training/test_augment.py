"""data.augment: the transforms against hand-computed cases, and runs with augmentation exact and resumable."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from mlpkit.app import api
from mlpkit.app.cli import app
from mlpkit.config.validate import config_from_dict
from mlpkit.data.load import load_digits
from mlpkit.errors import ConfigError, Interrupted
from mlpkit.training import augment
from mlpkit.training.trainer import Trainer, fit

from ..conftest import CONFIGS
from ..resume_helpers import stop_run_at

runner = CliRunner()
AUG = {"elastic": {"alpha": 2.0, "sigma": 1.0}, "affine": {"rotate": 10, "scale": 0.1, "shear": 5, "translate": 0.1}}


def _images(n=6, h=8, w=8, seed=0):
    return np.random.default_rng(seed).integers(0, 17, (n, h, w)).astype(np.uint8)


def test_identity_parameters_return_the_image():
    x = _images()
    rng = np.random.default_rng(1)
    zero = {"elastic": {"alpha": 0.0, "sigma": 2.0}, "affine": {"rotate": 0, "scale": 0, "shear": 0, "translate": 0}}
    np.testing.assert_array_equal(augment.augment(x, rng, **zero), x.astype(np.float32))
    np.testing.assert_array_equal(augment.augment(x, rng), x.astype(np.float32))  # no transform at all


def test_a_whole_pixel_translation_moves_the_image_exactly():
    x = _images(1, 10, 12)
    coords = augment.affine_grid(10, 12, np.zeros(1), np.ones(1), np.zeros(1), np.array([[2.0, -3.0]]))
    out = augment.sample(x, coords)
    np.testing.assert_array_equal(out[0, 2:, :9], x[0, :8, 3:])  # down 2, left 3
    assert (out[0, :2] == 0).all() and (out[0, :, 9:] == 0).all()  # what came from outside is background


def test_a_quarter_turn_is_a_rotation_of_the_array():
    x = _images(1, 9, 9)
    coords = augment.affine_grid(9, 9, np.array([np.pi / 2]), np.ones(1), np.zeros(1), np.zeros((1, 2)))
    out = augment.sample(x, coords)
    np.testing.assert_allclose(out[0], np.rot90(x[0], k=1), atol=1e-4)


def test_sampling_is_scipys_bilinear_interpolation_with_a_zero_background():
    from scipy import ndimage

    x = _images(5, 9, 11)
    coords = np.random.default_rng(4).uniform(-4, 14, (2, 5, 9, 11)).astype(np.float32)  # many fall outside
    batch = np.broadcast_to(np.arange(5.0)[:, None, None], (5, 9, 11))
    ref = ndimage.map_coordinates(x.astype(np.float64), np.stack([batch, *coords]), order=1, mode="grid-constant")
    out = augment.sample(x, coords)
    np.testing.assert_allclose(out, ref, atol=1e-4)
    assert (ref == 0).any() and (ref > 0).any()


def test_the_smoothing_matrices_are_scipys_gaussian_filter():
    from scipy import ndimage

    u = np.random.default_rng(5).uniform(-1, 1, (3, 10, 12))
    gh, gw = augment.smoothing_matrix(10, 2.5), augment.smoothing_matrix(12, 2.5)
    ref = ndimage.gaussian_filter(u, (0, 2.5, 2.5), mode="constant")
    np.testing.assert_allclose(gh.astype(np.float64) @ u @ gw.T.astype(np.float64), ref, atol=1e-6)


def test_an_elastic_field_is_alpha_times_the_basis_around_uniform_coefficients():
    # The displacement of an elastic-only augmenter is α·B_H·Z·B_Wᵀ with Z uniform in [−1, 1], drawn from the
    # generator after the per-image "applies" draw, as 16-bit integers laid out (KH, KW, 2, B).
    aug = augment.Augmenter(10, 12, elastic={"alpha": 3.0, "sigma": 2.0})
    coords = aug.coordinates(4, np.random.default_rng(6)).copy()
    rng = np.random.default_rng(6)
    rng.random(4)
    kh, kw = aug.kh, aug.kw
    raw = rng.bit_generator.random_raw(-(-kh * kw * 8 // 4)).view(np.uint16)[: kh * kw * 8]
    z = (raw * (2 / 65535) - 1).reshape(kh, kw, 2, 4)
    bh, bw = augment.field_basis(10, 2.0), augment.field_basis(12, 2.0)
    field = 3.0 * np.einsum("ip,pqab,jq->abij", bh, z, bw)
    identity = augment.affine_grid(10, 12, np.zeros(4), np.ones(4), np.zeros(4), np.zeros((4, 2)))
    np.testing.assert_allclose(coords - identity, field, atol=2e-5)
    assert np.abs(field).max() > 0.1 and z.min() >= -1 and z.max() <= 1


@pytest.mark.parametrize("n,sigma", [(28, 4.0), (28, 6.0), (10, 2.0), (12, 1.0), (31, 0.5)])
def test_the_basis_gives_simards_covariance(n, sigma):
    # Simard's field α·G·N·Gᵀ (N iid uniform) has covariance α²/3·(G·Gᵀ ⊗ G·Gᵀ); the basis's α·B·Z·Bᵀ has
    # α²/3·(B·Bᵀ ⊗ B·Bᵀ). B·Bᵀ = G·Gᵀ up to the dropped share of the variance.
    g = augment.smoothing_matrix(n, sigma)
    basis = augment.field_basis(n, sigma)
    ggt, bbt = g @ g.T, basis @ basis.T
    assert np.abs(bbt - ggt).max() <= 1e-3 * np.abs(ggt).max()
    assert np.trace(ggt - bbt) <= augment.VARIANCE_DROPPED * np.trace(ggt) * (1 + 1e-9)
    if (n, sigma) == (28, 4.0):
        assert basis.shape[1] == 10  # Simard's σ on MNIST: 10 directions per axis instead of 28


def test_drawn_fields_have_the_variance_of_smoothed_uniform_noise():
    # Empirically, over 4,000 fields: per-pixel variance of mlpkit's fields and of gaussian_filter on uniform
    # noise (Simard's recipe, drawn here independently) both match α²/3·(G·Gᵀ)ᵢᵢ·(G·Gᵀ)ⱼⱼ within sampling error.
    from scipy import ndimage

    alpha, sigma, n, draws = 34.0, 4.0, 28, 2000
    aug = augment.Augmenter(n, n, elastic={"alpha": alpha, "sigma": sigma})
    coords = aug.coordinates(draws, np.random.default_rng(0))
    ours = (coords[0] - np.arange(n)[:, None]).astype(np.float64)  # (draws, n, n), rows' displacement
    ours = np.concatenate([ours, (coords[1] - np.arange(n)).astype(np.float64)])
    noise = np.random.default_rng(1).uniform(-1, 1, (2 * draws, n, n))
    simard = alpha * ndimage.gaussian_filter(noise, (0, sigma, sigma), mode="constant")
    g = augment.smoothing_matrix(n, sigma)
    d = np.diag(g @ g.T)
    theory = alpha**2 / 3 * np.outer(d, d)
    for fields in (ours, simard):
        ratio = fields.var(axis=0) / theory
        assert ratio.min() > 0.9 and ratio.max() < 1.1 and abs(ratio.mean() - 1) < 0.01
        assert abs(fields.mean()) < 0.02 * np.sqrt(theory.mean())


def test_elastic_with_p_below_one_leaves_the_other_images_untouched():
    x = _images(40, 10, 10)
    aug = augment.Augmenter(10, 10, elastic={"alpha": 3.0, "sigma": 2.0, "p": 0.5})
    out = aug(x, np.random.default_rng(7))
    same = [np.array_equal(out[i], x[i].astype(np.float32)) for i in range(40)]
    assert 8 < sum(same) < 32  # about half untouched, exactly


def test_outputs_stay_in_range_and_vary():
    x = _images(20)
    rng = np.random.default_rng(3)
    a, b = augment.augment(x, rng, **AUG), augment.augment(x, rng, **AUG)
    assert a.dtype == np.float32 and a.min() >= 0 and a.max() <= x.max()
    assert not np.array_equal(a, b) and not np.array_equal(a, x)


def _cfg(**train):
    return config_from_dict({"seed": 2, "data": {"validation": 200, "augment": AUG},
                             "model": {"layers": [{"linear": 32}, "sigmoid", {"dropout": 0.2}, {"linear": 10}]},
                             "train": {"epochs": 3, "batch_size": 32, "lr": 0.2, "momentum": 0.9, **train}})


def test_augmented_training_is_reproducible_and_differs_from_plain():
    runs = []
    for cfg in (_cfg(), _cfg()):
        t = Trainer(cfg, load_digits())
        fit(t)
        runs.append({k: v.tobytes() for k, v in t.model.named_params().items()})
    assert runs[0] == runs[1]
    plain = config_from_dict({**_cfg().to_dict(), "data": {**_cfg().to_dict()["data"], "augment": None}})
    t = Trainer(plain, load_digits())
    fit(t)
    assert {k: v.tobytes() for k, v in t.model.named_params().items()} != runs[0]


def test_evaluation_never_augments():
    t = Trainer(_cfg(), load_digits())
    state = t.rngs.augment.bit_generator.state
    t.evaluate_test()
    assert t.rngs.augment.bit_generator.state == state


@pytest.mark.parametrize("stop_at", [(1, 10), (2, 0), (3, 5)])
def test_augmented_runs_resume_exactly(tmp_path, stop_at):
    ref = Trainer(_cfg(), load_digits())
    fit(ref)
    cfg = _cfg()
    t = Trainer(cfg, load_digits())
    stop_run_at(t, tmp_path / "run", stop_at)
    resumed, w2, _ = api.resume(tmp_path / "run")
    w2.close()
    assert (resumed.epoch + 1, resumed.epoch_step) == stop_at
    fit(resumed)
    assert {k: v.tobytes() for k, v in resumed.model.named_params().items()} == \
        {k: v.tobytes() for k, v in ref.model.named_params().items()}
    assert resumed.history == ref.history


def test_an_interrupted_augmented_cli_run_resumes_to_the_same_bytes(tmp_path):
    q = str(CONFIGS / "quickstart.yaml")
    sets = ["--set", "data.augment.elastic.alpha=2", "--set", "data.augment.elastic.sigma=1", "--set",
            "data.augment.affine.rotate=8", "--epochs", "3"]
    assert runner.invoke(app, ["train", q, *sets, "--out", str(tmp_path / "whole"), "-q"]).exit_code == 0
    overrides = tuple(s for s in sets if s != "--set" and not s.startswith("--"))
    trainer, writer = api.start_run(q, (*overrides[:-1], "train.epochs=3"), tmp_path / "part")
    calls = []

    def stop():
        calls.append(1)
        return 2 if len(calls) == trainer.steps_per_epoch + 7 else 0

    with pytest.raises(Interrupted):
        api.train_run(trainer, writer, stop_requested=stop)
    assert runner.invoke(app, ["train", "--resume", str(tmp_path / "part"), "-q"]).exit_code == 0
    assert (tmp_path / "part" / "model.npz").read_bytes() == (tmp_path / "whole" / "model.npz").read_bytes()


@pytest.mark.parametrize("key,value,expect", [
    ("data.augment.elastic.sigma", "0", "must be > 0"),
    ("data.augment.elastic.alpha", "-1", "must be >= 0"),
    ("data.augment.affine.rotate", "400", "must be <= 180"),
    ("data.augment.affine.translate", "0.9", "must be <= 0.5"),
    ("data.augment.affine.spin", "3", "unknown key"),
    ("data.augment.elastic.p", "2", "must be <= 1"),
])
def test_augment_settings_are_validated(key, value, expect):
    base = ["--set", "data.augment.elastic.alpha=2", "--set", "data.augment.elastic.sigma=1"] if "elastic" in key else []
    r = runner.invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), *base, "--set", f"{key}={value}", "--dry-run"])
    assert r.exit_code == 2 and expect in r.output and key.split(".")[-1] in r.output


def test_augmenting_data_that_is_not_images_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "flat.npz"
    np.savez(p, x_train=rng.random((40, 5)), y_train=np.arange(40) % 2, x_test=rng.random((4, 5)), y_test=np.arange(4) % 2)
    cfg = config_from_dict({"data": {"dataset": str(p), "augment": {"affine": {"rotate": 5}}},
                            "model": {"layers": [{"linear": 2}]}})
    from mlpkit.data.load import load_dataset

    with pytest.raises(ConfigError, match=r"data\.augment: transforms images"):
        Trainer(cfg, load_dataset(str(p)))


PREVIEW = ["--set", "data.augment.affine.rotate=20", "--set", "data.augment.elastic.alpha=2", "--set",
           "data.augment.elastic.sigma=1"]


def test_data_preview_draws_originals_and_augmented_copies(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    r = runner.invoke(app, ["data", "preview", str(CONFIGS / "quickstart.yaml"), *PREVIEW, "-n", "4"])
    assert r.exit_code == 0 and "each original (left), then 2 augmented copies" in r.output and "█" in r.output
    assert "settings: elastic alpha=2, sigma=1, p=1; affine rotate=20" in r.output
    assert max(len(line.rstrip()) for line in r.stdout.splitlines()) <= 60
    r = runner.invoke(app, ["data", "preview", str(CONFIGS / "quickstart.yaml"), *PREVIEW, "-n", "3", "--json"])
    data = __import__("json").loads(r.stdout)
    orig, aug = np.asarray(data["originals"]), np.asarray(data["augmented"])
    assert orig.shape == (3, 8, 8) and aug.shape == (2, 3, 8, 8) and aug.min() >= 0 and aug.max() <= 1
    np.testing.assert_allclose(orig[0] * 16, load_digits().x_train[0].reshape(8, 8))
    out = tmp_path / "grid.png"
    r = runner.invoke(app, ["data", "preview", str(CONFIGS / "quickstart.yaml"), *PREVIEW, "-o", str(out)])
    assert r.exit_code == 0 and out.read_bytes()[:4] == b"\x89PNG"
    r = runner.invoke(app, ["data", "preview", str(CONFIGS / "quickstart.yaml"), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["dataset"] == "digits"  # no augment: examples of each class


def _fitted_params(cfg):
    t = Trainer(cfg, load_digits())
    fit(t)
    return {k: v.tobytes() for k, v in t.model.named_params().items()}, t.history


def test_each_step_trains_on_its_units_images_converted_to_model_units(monkeypatch):
    # What a step sees: unit u's images augmented with the generator of (the epoch's seed, u), then scaled and
    # shifted into the model's units, row-major; units span whole batches.
    from mlpkit.data.core import to_float
    from mlpkit.training import pipeline
    from mlpkit.training.augment import Augmenter
    from mlpkit.training.trainer import iterate_minibatches

    monkeypatch.setattr(pipeline, "UNIT_PIXELS", 64 * 8 * 8)  # 64 digits: 2 batches of 32 per unit
    t = Trainer(_cfg(), load_digits())
    batches = iterate_minibatches(len(t.train_split.y), 32, np.random.default_rng(0))
    feed = t._augmented_batches(batches)
    aug = Augmenter(8, 8, **AUG)
    for step in (1, 2, 3, 7):
        u = (step - 1) // 2
        idx = np.concatenate(batches[2 * u : 2 * u + 2])
        ref = aug(t.train_split.x[idx].reshape(-1, 8, 8), np.random.default_rng([feed.seed, u])).reshape(-1, 64)
        ref = ref[32 * ((step - 1) % 2) :][:32]
        got = feed.get(step)
        np.testing.assert_allclose(got, to_float(ref, t.data.scale, np.float32, "C", t.data.shift), atol=1e-5)
        assert got.dtype == t.model.dtype and got.flags["C_CONTIGUOUS"]  # BLAS reads row-major batches transposed


@pytest.mark.parametrize("stop_at", [(1, 3), (2, 4)])
def test_runs_resume_exactly_inside_a_unit(tmp_path, monkeypatch, stop_at):
    from mlpkit.training import pipeline

    monkeypatch.setattr(pipeline, "UNIT_PIXELS", 96 * 8 * 8)  # 3 batches per unit; both stops fall inside one
    ref = _fitted_params(_cfg())
    t = Trainer(_cfg(), load_digits())
    stop_run_at(t, tmp_path / "run", stop_at)
    resumed, w2, _ = api.resume(tmp_path / "run")
    w2.close()
    fit(resumed)
    assert ({k: v.tobytes() for k, v in resumed.model.named_params().items()}, resumed.history) == ref


def test_a_batch_larger_than_a_unit_is_augmented_in_slices_with_one_generator(monkeypatch):
    from mlpkit.training import pipeline
    from mlpkit.training.augment import Augmenter

    monkeypatch.setattr(pipeline, "UNIT_PIXELS", 10 * 8 * 8)  # slices of 10 images, batches of 32
    t = Trainer(_cfg(), load_digits())
    batches = [np.arange(32), np.arange(32, 64)]
    feed = t._augmented_batches(batches)
    assert (feed.slice, feed.per_unit) == (10, 1)
    aug, rng = Augmenter(8, 8, **AUG), np.random.default_rng([feed.seed, 1])
    images = t.train_split.x[32:64].reshape(-1, 8, 8)
    ref = np.concatenate([aug(images[s : s + 10], rng, scale=t.data.scale, shift=t.data.shift)
                          for s in range(0, 32, 10)]).reshape(32, 64)
    np.testing.assert_array_equal(feed.get(2), ref)


def test_the_plain_numpy_sampler_is_scipys_bilinear_interpolation():
    from scipy import ndimage

    x = _images(5, 9, 11).astype(np.float64)
    coords = np.random.default_rng(9).uniform(-4, 14, (2, 5, 9, 11))
    coords[:, :, 0, :3] = [[-1.0, 3.0, 9.0]]  # on the edges of the clipped range: whole numbers, exactly
    batch = np.broadcast_to(np.arange(5.0)[:, None, None], (5, 9, 11))
    ref = ndimage.map_coordinates(x, np.stack([batch, *coords]), order=1, mode="grid-constant")
    np.testing.assert_allclose(augment.bilinear(x, coords), ref, atol=1e-12)


def test_beyond_opencvs_sizes_the_plain_sampler_gives_the_same_images(monkeypatch):
    x = _images(7, 9, 11)
    coords = np.random.default_rng(8).uniform(-3, 13, (2, 7, 9, 11)).astype(np.float32)
    fast = augment.sample(x, coords)
    calls = []
    bilinear = augment.bilinear
    monkeypatch.setattr(augment, "bilinear", lambda *a: calls.append(1) or bilinear(*a))
    monkeypatch.setattr(augment, "REMAP_LIMIT", 20)  # 7 images of 9 rows do not fit
    np.testing.assert_allclose(augment.sample(x, coords), fast, atol=1e-4)
    aug, again = augment.Augmenter(9, 11, **AUG), augment.Augmenter(9, 11, **AUG)
    slow = aug(x, np.random.default_rng(2), scale=0.5, shift=-1)
    monkeypatch.setattr(augment, "REMAP_LIMIT", 32767)
    np.testing.assert_allclose(again(x, np.random.default_rng(2), scale=0.5, shift=-1), slow, atol=1e-4)
    assert len(calls) == 2


@pytest.mark.parametrize("settings", [
    AUG,
    {"elastic": {"alpha": 34.0, "sigma": 4.0}},
    {"affine": {"rotate": 180, "scale": 0.5, "shear": 45, "translate": 0.5}},  # far-reaching: the gaps widen
    {"elastic": {"alpha": 300.0, "sigma": 2.0, "p": 0.5}, "affine": {"rotate": 90, "p": 0.5}},
])
@pytest.mark.parametrize("chunk", [None, 10])
def test_the_stacked_fast_path_equals_sampling_each_image_alone(settings, chunk, monkeypatch):
    # __call__ stacks each chunk of the batch into one tall image with the row offsets folded into the
    # coordinates; each output must still be its own image sampled at its own coordinates, never a neighbour's
    # pixels. chunk=10: 33 images in four chunks of 9, 9, 9 and 6.
    if chunk:
        monkeypatch.setattr(augment, "CHUNK_PIXELS", chunk * 12 * 10)
        assert augment.Augmenter(12, 10)._layout(33) == (4, 9)
    x = np.random.default_rng(3).integers(1, 256, (33, 12, 10)).astype(np.uint8)  # no background inside
    aug = augment.Augmenter(12, 10, **settings)
    for _ in range(3):
        state = np.random.default_rng(5)
        fast = aug(x, state, scale=1 / 255, shift=-0.5)
        coords = augment.Augmenter(12, 10, **settings).coordinates(33, np.random.default_rng(5))
        ref = np.stack([augment.bilinear(x[k : k + 1], coords[:, k : k + 1])[0] for k in range(33)]) / 255 - 0.5
        # Rows in the tall image run to 33·(12 + gap): float32 holds them to half a spacing there, and these
        # images change by up to 1 per pixel; a neighbour's pixel would be off by ~0.3.
        last_row = np.float32(aug._gap + 33 * (12 + aug._gap))
        np.testing.assert_allclose(fast, ref, atol=2 * float(np.spacing(last_row)))


def test_workspaces_kept_for_two_batch_sizes_give_what_fresh_ones_give(monkeypatch):
    # An epoch alternates full units with its last, shorter one: both workspaces are kept, a third size
    # replaces them, and reusing either never leaks one call's coefficients or pixels into the next.
    monkeypatch.setattr(augment, "CHUNK_PIXELS", 8 * 12 * 10)
    settings = {"elastic": {"alpha": 3.0, "sigma": 1.5, "p": 0.5}, "affine": {"rotate": 20, "translate": 0.1}}
    x = np.random.default_rng(4).integers(1, 256, (40, 12, 10)).astype(np.uint8)
    aug = augment.Augmenter(12, 10, **settings)
    for call, b in enumerate([33, 7, 33, 7, 33, 40, 33]):
        fresh = augment.Augmenter(12, 10, **settings)(x[:b], np.random.default_rng(call), scale=0.5, shift=-1.0)
        np.testing.assert_array_equal(aug(x[:b], np.random.default_rng(call), scale=0.5, shift=-1.0), fresh)
        assert b in aug._work and len(aug._work) <= 2
    assert sorted(aug._work) == [33, 40]


@pytest.mark.parametrize("chunk", [None, 6])
def test_a_draw_reaching_past_the_gaps_is_clipped_first_and_sampled_the_same(chunk, monkeypatch):
    # The gaps between stacked images are fixed from the settings; were they narrower than a draw can reach
    # (forced here), the batch takes the clipped path, with the same images (chunk=6: in chunks of 5).
    if chunk:
        monkeypatch.setattr(augment, "CHUNK_PIXELS", chunk * 12 * 10)
    x = np.random.default_rng(4).integers(1, 256, (20, 12, 10)).astype(np.uint8)
    settings = {"elastic": {"alpha": 30.0, "sigma": 2.0}, "affine": {"rotate": 30}}
    wide, narrow = augment.Augmenter(12, 10, **settings), augment.Augmenter(12, 10, **settings)
    narrow._gap = 2
    assert wide._gap > 10 and wide._stacks(20) and not narrow._stacks(20)
    a = wide(x, np.random.default_rng(6))
    coords = narrow.coordinates(20, np.random.default_rng(6))
    # As in the test above: float32 holds the tall image's rows to half a spacing; these images change by up to
    # 255 per pixel.
    atol = 255 * 2 * float(np.spacing(np.float32(wide._gap + 20 * (12 + wide._gap))))
    np.testing.assert_allclose(narrow(x, np.random.default_rng(6)), a, atol=atol)
    ref = np.stack([augment.bilinear(x[k : k + 1], coords[:, k : k + 1])[0] for k in range(20)])
    np.testing.assert_allclose(a, ref, atol=atol)


def _row_reach(m, h, w):
    """The largest row displacement |M[0]·[i, j, 1] − i| of affine maps (B, 2, 3): at a corner of the grid."""
    corners = np.array([[0, 0, 1], [0, w - 1, 1], [h - 1, 0, 1], [h - 1, w - 1, 1]], np.float64)
    return np.abs(np.einsum("bk,ck->bc", m[:, 0], corners) - corners[:, 0]).max()


def test_the_gaps_cover_what_the_settings_can_draw():
    # affine_reach bounds the row displacement over the settings' whole ranges: exact for a quarter turn or a
    # shift alone, and 2,000 random draws never pass it.
    assert augment.affine_reach(28, 28, {"rotate": 90}) == pytest.approx(27.0)  # a corner goes to the far one
    assert augment.affine_reach(28, 28, {"translate": 0.1}) == pytest.approx(2.8)
    assert augment.affine_reach(28, 28, {"shear": 45}) == 0  # shear moves columns only
    for affine in ({"rotate": 10, "scale": 0.1, "shear": 5, "translate": 0.1}, {"rotate": 180, "scale": 0.5},
                   {"shear": 45, "translate": 0.5}, {"rotate": 30, "scale": 0.2}):
        aug = augment.Augmenter(28, 28, elastic={"alpha": 34.0, "sigma": 4.0}, affine=affine)
        rng = np.random.default_rng(0)
        deg = np.pi / 180
        n = 2000
        m = augment.affine_matrices(28, 28, rng.uniform(-1, 1, n) * affine.get("rotate", 0) * deg,
                                    1 + rng.uniform(-1, 1, n) * affine.get("scale", 0),
                                    rng.uniform(-1, 1, n) * affine.get("shear", 0) * deg,
                                    rng.uniform(-1, 1, (n, 2)) * affine.get("translate", 0) * 28)
        reach = augment.affine_reach(28, 28, affine)
        assert _row_reach(m, 28, 28) <= reach and reach < 1.5 * _row_reach(m, 28, 28)
        assert aug.reach == aug.elastic_reach + reach and aug.reach + 2 <= aug._gap and aug._stacks(128)


def test_a_strided_output_array_is_written_too():
    x = _images(6, 9, 11)
    aug = augment.Augmenter(9, 11, **AUG)
    whole = np.zeros((6, 9, 22), np.float32)
    out = whole[:, :, ::2]  # not contiguous
    got = aug(x, np.random.default_rng(1), out)
    np.testing.assert_array_equal(got, augment.Augmenter(9, 11, **AUG)(x, np.random.default_rng(1)))
    assert got is out and np.array_equal(whole[:, :, ::2], got) and np.abs(got).sum() > 0


def test_affine_draws_are_uniform_over_their_ranges():
    # Each image's map is recovered from its coordinates (exactly affine: three pixels give M) and unpicked into
    # angle, zoom, shear and shift (affine_matrices' formulas inverted): each uniform over ± its setting.
    settings = {"rotate": 20.0, "scale": 0.1, "shear": 5.0, "translate": 0.1}
    n, side = 4000, 28
    coords = augment.Augmenter(side, side, affine=settings).coordinates(n, np.random.default_rng(7))
    c = coords.astype(np.float64)
    m = np.stack([c[:, :, 1, 0] - c[:, :, 0, 0], c[:, :, 0, 1] - c[:, :, 0, 0], c[:, :, 0, 0]], axis=-1)  # (2, n, 3)
    zoom = 1 / np.hypot(m[0, :, 0], m[0, :, 1])
    angle = np.arctan2(m[0, :, 1], m[0, :, 0])
    cos, sin = np.cos(angle), np.sin(angle)
    shear = np.arctan(-(m[1, :, 0] * zoom + sin) / cos)
    centre = np.full(2, (side - 1) / 2)
    inv = np.stack([m[0, :, :2], m[1, :, :2]], axis=1)  # (n, 2, 2)
    shift = np.linalg.solve(inv, (centre - m[:, :, 2].T)[:, :, None])[:, :, 0] - centre
    deg = np.pi / 180
    for values, half_width in [(angle, 20 * deg), (zoom - 1, 0.1), (shear, 5 * deg), (shift[:, 0], 2.8),
                               (shift[:, 1], 2.8)]:
        u = values / half_width  # uniform on [−1, 1]: mean 0, variance 1/3, reaching both ends
        assert np.abs(u).max() <= 1 + 1e-4 and np.abs(u).max() > 0.99
        assert abs(u.mean()) < 0.03 and abs(u.var() - 1 / 3) < 0.02
