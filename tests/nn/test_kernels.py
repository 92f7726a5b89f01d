"""The BLAS helpers against plain NumPy, in every memory order and dtype they accept."""

from __future__ import annotations

import numpy as np
import pytest

from mlpkit.nn import _kernels as blas
from mlpkit.nn.layers import Linear

ORDERS = ["C", "F"]
DTYPES = [np.float32, np.float64]


def _arr(rng, shape, order, dtype):
    return np.asarray(rng.standard_normal(shape), dtype=dtype, order=order)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [False, True])
def test_matmul(rng, order, dtype, bias):
    a, b = _arr(rng, (6, 5), "C", dtype), _arr(rng, (5, 4), order, dtype)
    c = _arr(rng, (4,), "C", dtype) if bias else None
    out = blas.matmul(a, b, bias=c)
    assert out.dtype == dtype and out.flags[f"{order}_CONTIGUOUS"]
    np.testing.assert_allclose(out, a.astype(np.float64) @ b + (0 if c is None else c), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("order", ORDERS)
def test_matmul_nt_and_tn_acc(rng, order):
    a, w = _arr(rng, (6, 4), order, np.float64), _arr(rng, (5, 4), order, np.float64)
    np.testing.assert_allclose(blas.matmul_nt(a, w), a @ w.T, rtol=1e-13)
    x, dy = _arr(rng, (6, 5), order, np.float64), _arr(rng, (6, 4), order, np.float64)
    c = _arr(rng, (5, 4), order, np.float64)
    expected = 0.5 * c - 2.0 * x.T @ dy
    blas.matmul_tn_acc(c, x, dy, alpha=-2.0, beta=0.5)
    np.testing.assert_allclose(c, expected, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_colsum_writes_the_column_sums_in_place(rng, order, dtype):
    a = _arr(rng, (7, 3), order, dtype)
    store = np.full(10, 99.0, dtype=dtype)  # out is a view into a larger array, as biases are
    blas.colsum(a, store[2:5])
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(store[2:5], a.astype(np.float64).sum(axis=0), rtol=tol, atol=tol)
    assert store[0] == store[1] == store[5] == 99.0  # nothing outside the view written


def test_colsum_of_a_strided_view(rng):
    a = rng.standard_normal((8, 6))[::2, 1:4]  # neither C- nor F-contiguous
    out = np.empty(3)
    blas.colsum(a, out)
    np.testing.assert_allclose(out, a.sum(axis=0), rtol=1e-14)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("shape", [(3, 50, 40), (8, 5, 7), (1, 4, 4)])
def test_tn_sqnorm_equals_the_formed_products_norm(rng, order, shape):
    n, d, c = shape
    x, dy = _arr(rng, (n, d), order, np.float64), _arr(rng, (n, c), order, np.float64)
    assert blas.tn_sqnorm(x, dy) == pytest.approx(np.sum((x.T @ dy) ** 2), rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tn_sqnorm_on_mixed_orders_strided_views_and_other_dtypes(rng, dtype):
    """syrk reads a row-major operand as its transpose; strided or other-dtype operands are converted first."""
    x64, dy64 = rng.standard_normal((6, 40)), rng.standard_normal((6, 9)).astype(np.float32).astype(np.float64)
    want = np.sum((x64.T @ dy64) ** 2)
    rel = 1e-12 if dtype == np.float64 else 1e-5
    for x, dy in [(np.ascontiguousarray(x64, dtype), np.asfortranarray(dy64, dtype)),
                  (np.asfortranarray(x64, dtype), np.ascontiguousarray(dy64, dtype)),
                  (np.repeat(x64.astype(dtype), 2, axis=1)[:, ::2], dy64.astype(np.float32))]:
        assert blas.tn_sqnorm(x, dy) == pytest.approx(want, rel=rel)


def test_tn_sqnorm_float32_with_cancelling_samples(rng):
    """Per-sample gradients that nearly cancel (as near a minimum) still give the norm to 1e-4."""
    x = rng.standard_normal((64, 300)).astype(np.float32)
    dy = rng.standard_normal((64, 20)).astype(np.float32)
    dy -= dy.mean(axis=0)  # the batch sum of dy is ~0: xᵀ·dy is small against its terms
    exact = np.sum((x.astype(np.float64).T @ dy.astype(np.float64)) ** 2)
    assert blas.tn_sqnorm(x, dy) == pytest.approx(exact, rel=1e-4)


@pytest.mark.parametrize("n", [4, 200])  # Gram route (batch smaller than the layer), then the formed product
def test_linear_dW_sqnorm_both_routes(rng, n):
    layer = Linear(30, 20, rng=rng, dtype=np.float64)
    x, dout = rng.standard_normal((n, 30)), rng.standard_normal((n, 20))
    layer.forward(x)
    layer.backward(dout)
    W = layer.params["W"].copy()
    assert layer.grad_sqnorm("W") == pytest.approx(np.sum((x.T @ dout) ** 2), rel=1e-12)
    np.testing.assert_array_equal(layer.params["W"], W)  # a measurement, not an update
    np.testing.assert_allclose(layer.grads["W"], x.T @ dout, rtol=1e-12)  # still the gradient when read


def test_axpy_in_place_both_orders(rng):
    for order in "CF":
        x = np.asarray(rng.standard_normal((3, 4)), order=order)
        y = np.asarray(rng.standard_normal((3, 4)), order=order)
        want = y + 0.5 * x
        blas.axpy(0.5, x, y)
        np.testing.assert_allclose(y, want, rtol=1e-15)
    with pytest.raises(ValueError, match="one shape, dtype and memory order"):
        blas.axpy(1.0, np.ones((3, 4)), np.asfortranarray(np.ones((3, 4))))
    y = np.zeros(8)
    blas.axpy(2.0, np.arange(8.0)[::2], y[:4])  # a strided x is read as it is
    np.testing.assert_array_equal(y[:4], [0, 4, 8, 12])
    with pytest.raises(AssertionError, match="not written in place"):  # a strided y would be updated in a copy
        blas.axpy(1.0, np.ones(4), y[::2])


NUMPY_BLAS_CALLS = {"dot", "vdot", "matmul", "inner", "tensordot"}
TRAINING_MODULES = ["nn/_kernels", "nn/layers", "nn/losses", "nn/model", "nn/optim", "data/core", "training/augment",
                    "training/build", "training/evaluate", "training/pipeline", "training/trainer"]


def numpy_blas_uses(source: str) -> list[int]:
    """Lines with ``a @ b`` or a call to ``*.dot``/``vdot``/``matmul``/``inner``/``tensordot``."""
    import ast

    def numpy_product(node: ast.AST) -> bool:
        if isinstance(node, (ast.BinOp, ast.AugAssign)):
            return isinstance(node.op, ast.MatMult)
        return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in NUMPY_BLAS_CALLS
                and not (isinstance(node.func.value, ast.Name) and node.func.value.id in ("blas", "kernels")))

    lines = [node.lineno for node in ast.walk(ast.parse(source)) if numpy_product(node)]
    return sorted(lines)


def test_the_scan_finds_numpy_products():
    assert numpy_blas_uses("y = x @ W\nz = np.dot(a, b)\nw = blas.matmul(a, b)\nv = a.vdot(b)\nq = np.sum(x)\n") == [1, 2, 4]


@pytest.mark.parametrize("module", TRAINING_MODULES)
def test_training_code_uses_only_scipy_blas(module):
    """Every product in the training loop goes through mlpkit.nn._kernels, i.e. SciPy's OpenBLAS.

    NumPy bundles a second OpenBLAS with its own thread pool; alternating calls into
    the two makes their threads fight over the cores (measured: an epoch of the
    784-1024-1024-10 network took 7 s instead of 2.8 s when one np.vdot crept in).
    """
    from pathlib import Path

    import mlpkit

    path = Path(mlpkit.__file__).parent / f"{module}.py"
    assert numpy_blas_uses(path.read_text()) == [], f"NumPy BLAS products in {module}.py"


def test_blas_results_must_be_written_in_place(monkeypatch):
    # The wrappers are checked by identity: a copy handed back (a layout the wrapper had to convert) is an error,
    # never a silently lost product.
    real = blas._GEMM[np.dtype(np.float32)]
    monkeypatch.setitem(blas._GEMM, np.dtype(np.float32), lambda *a, **k: real(*a, **k).copy())
    with pytest.raises(AssertionError, match="not written in place"):
        blas.matmul(np.ones((3, 4), np.float32), np.ones((4, 5), np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_major_operands_with_column_major_weights_are_read_transposed_not_copied(rng, dtype):
    # A row-major minibatch meets column-major weights: the products must equal NumPy's, in the weights' order.
    x = np.ascontiguousarray(rng.standard_normal((7, 5)), dtype=dtype)
    W = np.asfortranarray(rng.standard_normal((5, 3)), dtype=dtype)
    b = rng.standard_normal(3).astype(dtype)
    dy = np.ascontiguousarray(rng.standard_normal((7, 3)), dtype=dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    out = blas.matmul(x, W, bias=b)
    np.testing.assert_allclose(out, x @ W + b, rtol=tol, atol=tol)
    assert out.flags.f_contiguous
    np.testing.assert_allclose(blas.matmul_nt(dy, W), dy @ W.T, rtol=tol, atol=tol)
    c = np.asfortranarray(rng.standard_normal((5, 3)), dtype=dtype)
    ref = 0.5 * c + 2.0 * x.T @ dy
    blas.matmul_tn_acc(c, x, dy, 2.0, 0.5)
    np.testing.assert_allclose(c, ref, rtol=tol, atol=tol)
    assert blas._operand(x, np.dtype(dtype))[1] == 1 and blas._operand(x, np.dtype(dtype))[0].base is x


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("orders", [(a, b, c) for a in "CF" for b in "CF" for c in "CF"])
def test_every_mix_of_memory_orders_gives_numpys_products_without_copying_an_operand(rng, monkeypatch, dtype, orders):
    """Weights of either order (build.weight_order picks per layer) meet activations of either order: each
    product equals NumPy's, comes out in the weight's order, and reads its operands as they are (or transposed
    through a flag), never through a converted copy."""
    oa, ob, oc = orders
    copies = []
    real_like = blas._like
    monkeypatch.setattr(blas, "_like", lambda a, *args: copies.append(a.shape) or real_like(a, *args))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    a, w, b = _arr(rng, (7, 5), oa, dtype), _arr(rng, (5, 3), ob, dtype), _arr(rng, (3,), "C", dtype)
    out = blas.matmul(a, w, bias=b)
    np.testing.assert_allclose(out, a @ w + b, rtol=tol, atol=tol)
    assert out.flags[f"{ob}_CONTIGUOUS"]
    dy = _arr(rng, (7, 3), oa, dtype)
    dx = blas.matmul_nt(dy, w)
    np.testing.assert_allclose(dx, dy @ w.T, rtol=tol, atol=tol)
    assert dx.flags[f"{ob}_CONTIGUOUS"]
    x, dy = _arr(rng, (7, 5), oa, dtype), _arr(rng, (7, 3), ob, dtype)
    c = _arr(rng, (5, 3), oc, dtype)
    ref = 0.5 * c - 2.0 * x.T @ dy
    blas.matmul_tn_acc(c, x, dy, -2.0, 0.5)
    np.testing.assert_allclose(c, ref, rtol=tol, atol=tol)
    assert copies == []


@pytest.mark.parametrize("w_order", ORDERS)
@pytest.mark.parametrize("out_order", ORDERS)
def test_products_write_the_output_order_asked_for(rng, w_order, out_order):
    """A row-major narrow layer still hands column-major activations on (Linear.out_order)."""
    x, w = _arr(rng, (6, 5), "C", np.float64), _arr(rng, (5, 3), w_order, np.float64)
    dy = _arr(rng, (6, 3), "F", np.float64)
    out = blas.matmul(x, w, order=out_order)
    dx = blas.matmul_nt(dy, w, out_order)
    assert out.flags[f"{out_order}_CONTIGUOUS"] and dx.flags[f"{out_order}_CONTIGUOUS"]
    np.testing.assert_allclose(out, x @ w, rtol=1e-13)
    np.testing.assert_allclose(dx, dy @ w.T, rtol=1e-13)
    with pytest.raises(ValueError, match="contiguous output"):
        blas.matmul_tn_acc(np.zeros((10, 3))[::2], x, dy)


@pytest.mark.parametrize("p", [0.5, 0.25, 0.2, 1 / 3, 0.1, 3 / 65536, 0.9])
@pytest.mark.parametrize("n", [1, 7, 64, 1000])
def test_mask_draw_bytes_is_what_keep_mask_draws(p, n):
    """A checkpoint's dropout state is replayed with mask_draw_bytes: it must consume the generator exactly as
    keep_mask does, for every resolution keep_mask picks."""
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    blas.keep_mask(a, (n,), p)
    b.bytes(blas.mask_draw_bytes(n, p))
    assert a.bit_generator.state == b.bit_generator.state
