"""``mlpkit sweep``: hyperparameter searches on Optuna, every trial a normal run folder.

A sweep file names a base config, the keys to search and their distributions, the objective (the validation
accuracy or loss: the test split is never used to choose), the budget, the sampler and the pruner:

    base: ../mnist-sigmoid.yaml          # relative to the sweep file
    set: {data.validation: 10000}        # the same for every trial
    objective: val_acc                   # val_acc (maximized) | val_loss (minimized)
    trials: 12                           # completed or pruned trials in all, over every worker and every rerun
    timeout: null                        # seconds per worker, or null
    sampler: tpe                         # tpe | random | grid (grid: every key a list of choices)
    pruner: median                       # median | hyperband | none; fed each epoch's validation score
    seed: 0
    space:
      train.lr: {low: 0.01, high: 1.0, log: true}          # a float
      train.batch_size: {low: 16, high: 128, log: true, int: true}
      model.layers[0].linear: {choices: [64, 128, 256]}

The study lives in an SQLite file in the sweep folder (``sweeps/<name>/study.db``) unless ``--storage`` names
another database (PostgreSQL, MySQL: the same command on several machines joins one study). Each trial trains
``sweeps/<name>/trial-NNNN/`` with the ordinary trainer, so ``mlpkit runs``, ``evaluate``, ``--resume`` and
``report`` work on it. ``--workers N`` runs N processes sharing the machine's cores (BLAS threads divided).
Running the same command again continues the study up to its budget.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlpkit.app import api
from mlpkit.app.configfile import load_config, parse_yaml, read_config_text
from mlpkit.config.validate import did_you_mean
from mlpkit.errors import ConfigError, MlpkitError
from mlpkit.writer import make_folder

OBJECTIVES = {"val_acc": "maximize", "val_loss": "minimize"}
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
KEYS = ("base", "set", "objective", "trials", "timeout", "sampler", "pruner", "seed", "space")
INSTALL_HINT = "pip install 'mlpkit[sweep]' (or pip install optuna)"
GRACE_ENV = "MLPKIT_SWEEP_GRACE"


@dataclass(frozen=True)
class Param:
    """One searched key: a float or int range (``log`` for a log scale), or a list of choices."""

    key: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: list[Any] | None = None


@dataclass(frozen=True)
class Sweep:
    path: Path
    base: Path
    objective: str
    trials: int
    timeout: float | None
    sampler: str
    pruner: str
    seed: int
    space: list[Param] = field(default_factory=list)
    fixed: tuple[str, ...] = ()  # ``set:``: the same --set items for every trial (data.validation, epochs)

    @property
    def direction(self) -> str:
        return OBJECTIVES[self.objective]


def _fail(path: Path, key: str, why: str) -> ConfigError:
    return ConfigError(f"{path}: {key}: {why}")


def _param(path: Path, key: str, spec: Any) -> Param:
    where = f"space.{key}"
    if not isinstance(spec, dict):
        raise _fail(path, where, "must be a mapping: {low: L, high: H} (log: true, int: true) or {choices: [...]}")
    unknown = [k for k in spec if k not in ("low", "high", "log", "int", "choices")]
    if unknown:
        raise _fail(path, f"{where}.{unknown[0]}", "unknown key" + did_you_mean(unknown[0], ("low", "high", "log",
                    "int", "choices")) + "; expected low, high, log, int or choices")
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices or len(spec) != 1:
            raise _fail(path, where, "choices must be a non-empty list, alone")
        return Param(key, choices=choices)
    low, high = spec.get("low"), spec.get("high")
    for name, v in (("low", low), ("high", high)):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            raise _fail(path, f"{where}.{name}", f"must be a finite number, got {v!r}")
    if not low < high:  # type: ignore[operator]
        raise _fail(path, where, f"low must be below high, got {low} and {high}")
    log, integer = spec.get("log", False), spec.get("int", False)
    if not isinstance(log, bool) or not isinstance(integer, bool):
        raise _fail(path, where, "log and int must be true or false")
    if log and low <= 0:  # type: ignore[operator]
        raise _fail(path, where, f"a log scale needs low > 0, got {low}")
    return Param(key, float(low), float(high), log, integer)  # type: ignore[arg-type]


def load_sweep(path: str | Path) -> Sweep:
    """A sweep file, checked in full before any trial: every key, every distribution, the base config with
    each searched key set to a value from its range (so a wrong key path is named now, not at trial 7)."""
    p = Path(path)
    data = parse_yaml(read_config_text(p), str(p))
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a sweep file is a mapping with base, objective, trials and space")
    for k in data:
        if k not in KEYS:
            raise _fail(p, str(k), f"unknown key{did_you_mean(k, KEYS)}; expected one of {', '.join(KEYS)}")
    for k in ("base", "space"):
        if k not in data:
            raise _fail(p, k, "is required but missing")
    base = data["base"]
    if not isinstance(base, str) or not base.strip():
        raise _fail(p, "base", "must be the path of a config")
    base_path = (p.parent / base) if not Path(base).is_absolute() else Path(base)
    objective = data.get("objective", "val_acc")
    if objective not in OBJECTIVES:
        raise _fail(p, "objective", f"must be one of {', '.join(OBJECTIVES)}, got {objective!r}"
                    f"{did_you_mean(objective, OBJECTIVES)}")
    trials = data.get("trials", 10)
    if not isinstance(trials, int) or isinstance(trials, bool) or not 1 <= trials <= 100_000:
        raise _fail(p, "trials", f"must be a whole number from 1 to 100,000, got {trials!r}")
    timeout = data.get("timeout")
    if timeout is not None and (not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0):
        raise _fail(p, "timeout", f"must be a number of seconds > 0 or null, got {timeout!r}")
    sampler, pruner = data.get("sampler", "tpe"), data.get("pruner", "median")
    if sampler not in SAMPLERS:
        raise _fail(p, "sampler", f"must be one of {', '.join(SAMPLERS)}, got {sampler!r}{did_you_mean(sampler, SAMPLERS)}")
    if pruner not in PRUNERS:
        raise _fail(p, "pruner", f"must be one of {', '.join(PRUNERS)}, got {pruner!r}{did_you_mean(pruner, PRUNERS)}")
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise _fail(p, "seed", f"must be a whole number >= 0, got {seed!r}")
    space = data["space"]
    if not isinstance(space, dict) or not space:
        raise _fail(p, "space", "must map config keys (train.lr, model.layers[0].linear) to distributions")
    params = [_param(p, str(k), v) for k, v in space.items()]
    fixed_map = data.get("set", {}) or {}
    if not isinstance(fixed_map, dict):
        raise _fail(p, "set", "must map config keys to values, e.g. {data.validation: 10000, train.epochs: 3}")
    fixed = tuple(f"{k}={json.dumps(v)}" for k, v in fixed_map.items())
    if sampler == "grid" and any(q.choices is None for q in params):
        bad = next(q.key for q in params if q.choices is None)
        raise _fail(p, f"space.{bad}", "the grid sampler needs a list of choices for every key")
    sweep = Sweep(p, base_path, objective, trials, float(timeout) if timeout else None, sampler, pruner, seed, params,
                  fixed)
    for probe in _probes(params):  # every key path, and every end of every range, checked against the base config
        cfg = load_config(base_path, fixed + probe)
    if cfg.data.validation == 0:
        raise _fail(p, "objective", f"{objective} is measured on a validation split, and {base} holds none out; "
                    "set data.validation (in the base config or the sweep's set:); the test split never chooses")
    return sweep


def _probes(params: list[Param]) -> list[tuple[str, ...]]:
    """--set items that put every choice and both ends of every range through the base config's checks: the
    first probe sets each key to its first value, each further one changes one key to another value."""
    values: list[list[Any]] = []
    for q in params:
        if q.choices is not None:
            values.append(list(q.choices))
        else:
            ends = [math.ceil(q.low), math.floor(q.high)] if q.integer else [q.low, q.high]  # type: ignore[arg-type]
            values.append(ends)
    first = [vs[0] for vs in values]
    probes = [first]
    for i, vs in enumerate(values):
        for v in vs[1:]:
            probes.append([*first[:i], v, *first[i + 1:]])
    return [tuple(f"{q.key}={json.dumps(v)}" for q, v in zip(params, probe)) for probe in probes]


def _suggest(trial: Any, q: Param) -> Any:
    if q.choices is not None:
        return trial.suggest_categorical(q.key, q.choices)
    if q.integer:
        return trial.suggest_int(q.key, math.ceil(q.low), math.floor(q.high), log=q.log)  # type: ignore[arg-type]
    return trial.suggest_float(q.key, q.low, q.high, log=q.log)


def require_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise MlpkitError(f"mlpkit sweep needs optuna, which is not installed; install it with {INSTALL_HINT}") from None
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # mlpkit says what happened, in one line
    return optuna


def sweep_dir(sweep: Sweep, name: str | None, root: str | Path = "sweeps") -> Path:
    return Path(root) / (name or sweep.path.stem)


def storage_url(folder: Path, storage: str | None) -> str:
    return storage or f"sqlite:///{(folder / 'study.db').resolve()}"


def _study(optuna: Any, sweep: Sweep, name: str, url: str) -> Any:
    samplers = {"tpe": lambda: optuna.samplers.TPESampler(seed=sweep.seed),
                "random": lambda: optuna.samplers.RandomSampler(seed=sweep.seed),
                "grid": lambda: optuna.samplers.GridSampler({q.key: q.choices for q in sweep.space}, seed=sweep.seed)}
    pruners = {"median": lambda: optuna.pruners.MedianPruner(n_warmup_steps=1),
               "hyperband": lambda: optuna.pruners.HyperbandPruner(), "none": lambda: optuna.pruners.NopPruner()}
    import warnings

    grace = float(os.environ.get(GRACE_ENV, "20"))  # seconds without a heartbeat before a trial is stale
    for attempt in range(6):
        try:
            with warnings.catch_warnings():  # Optuna marks heartbeats experimental; they are what failover needs
                warnings.simplefilter("ignore")
                callback = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)
                storage = optuna.storages.RDBStorage(  # a worker killed mid-trial: its trial is failed and retried
                    url, heartbeat_interval=max(1, round(grace / 4)), grace_period=grace,
                    heartbeat_stale_trial_callback=callback)
            if url.startswith("sqlite"):
                _fast_sqlite(storage.engine)
            return optuna.create_study(study_name=name, storage=storage, direction=sweep.direction,
                                       sampler=samplers[sweep.sampler](), pruner=pruners[sweep.pruner](),
                                       load_if_exists=True)
        except Exception as e:  # two machines creating the schema or the study at once: one loses the race
            if attempt == 5 or ("sqlalchemy" not in type(e).__module__ and "Duplicated" not in type(e).__name__):
                raise
            import time

            time.sleep(0.1 * 2**attempt)  # back off, then find what the other one made
    raise AssertionError("unreachable")  # pragma: no cover


def _fast_sqlite(engine: Any) -> None:
    """SQLite in write-ahead-log mode with NORMAL syncs: a trial's bookkeeping drops from about 58 to 31 ms
    (measured), under 3 % of a 1.4 s trial. A crash of the process loses nothing; a power cut may lose the
    last trial's record, and that trial is then run again (its run folder is fsynced by mlpkit)."""
    from sqlalchemy import event

    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(engine, "connect", pragmas)
    engine.dispose()  # connections made before the listener are closed: every new one gets the pragmas


def run_worker(sweep_path: str, name: str, folder: str, storage: str | None, data_dir: str | None,
               threads: int | None = None) -> None:
    """One worker: trials of the study until the budget (completed and pruned trials, all workers and reruns
    together) is met or the timeout passes."""
    optuna = require_optuna()
    if threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads)  # workers × threads ≤ cores
    sweep = load_sweep(sweep_path)
    out = Path(folder)
    study = _study(optuna, sweep, name, storage_url(out, storage))
    budget = optuna.study.MaxTrialsCallback(sweep.trials, states=(optuna.trial.TrialState.COMPLETE,
                                                                   optuna.trial.TrialState.PRUNED))
    done = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                         optuna.trial.TrialState.PRUNED)))
    if done >= sweep.trials:
        return
    study.optimize(lambda t: _objective(optuna, sweep, out, t, data_dir), callbacks=[budget], timeout=sweep.timeout,
                   catch=())


def _objective(optuna: Any, sweep: Sweep, out: Path, trial: Any, data_dir: str | None) -> float:
    values = {q.key: _suggest(trial, q) for q in sweep.space}
    overrides = sweep.fixed + tuple(f"{k}={json.dumps(v)}" for k, v in values.items())
    run = out / f"trial-{trial.number:04d}"
    trial.set_user_attr("run", str(run))
    trainer, writer = api.start_run(sweep.base, overrides, run, api.DataSource(data_dir), force=True)
    key = sweep.objective

    def on_epoch(m: Any, seconds: float) -> None:
        v = getattr(m, key)
        trial.report(float(v), m.epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {m.epoch}")

    try:
        result = api.train_run(trainer, writer, on_epoch=on_epoch)
    except optuna.TrialPruned:
        writer.set_status("pruned")
        raise
    finally:
        writer.close()
    scores = [getattr(m, key) for m in result.history if getattr(m, key) is not None]
    best = max(scores) if sweep.direction == "maximize" else min(scores)
    return float(best if trainer.cfg.train.early_stopping is not None else scores[-1])


def run_sweep(path: str | Path, *, workers: int = 1, storage: str | None = None, name: str | None = None,
              data_dir: str | None = None, root: str | Path = "sweeps") -> Path:
    """Check the sweep file, then run ``workers`` processes on the study; returns the sweep folder."""
    require_optuna()
    sweep = load_sweep(path)
    folder = sweep_dir(sweep, name, root)
    make_folder(folder)
    study_name = name or sweep.path.stem
    cores = os.cpu_count() or 1
    threads = max(1, cores // workers) if workers > 1 else None
    if workers <= 1:
        run_worker(str(sweep.path), study_name, str(folder), storage, data_dir)
        return folder
    import multiprocessing

    _study(require_optuna(), sweep, study_name, storage_url(folder, storage))  # created once, before the workers
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=run_worker, args=(str(sweep.path), study_name, str(folder), storage, data_dir,
                                                  threads)) for _ in range(workers)]
    for proc in procs:
        proc.start()
    failed = []
    for proc in procs:
        proc.join()
        if proc.exitcode not in (0, None):
            failed.append(proc.exitcode)
    if failed and not _budget_met(sweep, study_name, folder, storage):
        raise MlpkitError(f"{len(failed)} of {workers} sweep workers failed (exit {failed[0]}) before the budget of "
                          f"{sweep.trials} trials was met; run the same command again to continue")
    return folder


def _budget_met(sweep: Sweep, name: str, folder: Path, storage: str | None) -> bool:
    optuna = require_optuna()
    study = optuna.load_study(study_name=name, storage=storage_url(folder, storage))
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states)) >= sweep.trials


@dataclass(frozen=True)
class TrialRow:
    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    run: str | None


@dataclass(frozen=True)
class SweepSummary:
    name: str
    direction: str
    trials: list[TrialRow]  # best first (completed), then the rest by number
    importances: dict[str, float]


def show_sweep(name: str, *, storage: str | None = None, root: str | Path = "sweeps") -> SweepSummary:
    optuna = require_optuna()
    folder = Path(root) / name
    url = storage_url(folder, storage)
    if storage is None and not (folder / "study.db").is_file():
        raise MlpkitError(f"{folder / 'study.db'}: no such sweep; run mlpkit sweep SWEEP.yaml first (or give "
                          "--storage)")
    try:
        study = optuna.load_study(study_name=name, storage=url)
    except KeyError:
        raise MlpkitError(f"{url}: holds no study named {name!r}") from None
    rows = [TrialRow(t.number, t.state.name.lower(), t.value, dict(t.params), t.user_attrs.get("run"))
            for t in study.get_trials(deepcopy=False)]
    sign = -1.0 if study.direction.name == "MAXIMIZE" else 1.0
    rows.sort(key=lambda r: (r.state != "complete", sign * r.value if r.value is not None else 0.0, r.number))
    importances: dict[str, float] = {}
    complete = [r for r in rows if r.state == "complete"]
    if len(complete) >= 3 and len(complete[0].params) > 1:
        importances = {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
    return SweepSummary(name, study.direction.name.lower(), rows, importances)


def export_best(summary: SweepSummary, out: str | Path) -> Path:
    """The best trial's resolved config (its run's config.yaml), which trains it again bit-identically."""
    from mlpkit.reader import read_text
    from mlpkit.writer import atomic_write

    best = next((r for r in summary.trials if r.state == "complete" and r.run), None)
    if best is None:
        raise MlpkitError(f"sweep {summary.name}: has no completed trial yet")
    target = Path(out)
    if target.suffix.lower() not in (".yaml", ".yml"):
        raise MlpkitError(f"--export-best {target}: give a .yaml file")
    text = read_text(Path(best.run) / "config.yaml", 1 << 20)  # type: ignore[arg-type]
    header = f"# the best trial ({best.number}) of sweep {summary.name}: {summary.direction} -> {best.value}\n"
    atomic_write(target, header + text)
    return target
