"""How many threads the BLAS behind every product uses (recorded in checkpoints: results are
bit-identical only at a fixed thread count)."""

from __future__ import annotations


def blas_threads() -> int | None:
    """Threads of the OpenBLAS behind SciPy's wrappers, which every product goes through.

    Results are bit-identical only at a fixed thread count: a product's sums are
    split over threads in a different order (checkpoints record this number).
    """
    from threadpoolctl import threadpool_info

    infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    scipy_own = [i for i in infos if "scipy" in i.get("filepath", "")]
    chosen = scipy_own or infos
    return int(chosen[0]["num_threads"]) if chosen else None
