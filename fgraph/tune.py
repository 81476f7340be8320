"""``fgraph tune``: a hyperparameter search with Optuna over a model's declared search space.

Each model declares what to search next to its code (:attr:`fgraph.models.CTRModel.search_space`, plain data);
:func:`search_space` puts it over a shared training space. Every trial is one :func:`fgraph.api.train` run
(``<out>/trial-NNN``, without the shipped configuration) whose objective is the best validation value of the
monitored metric over its epochs (``trainer.best_value``). The test split is not read for it: the test metrics
that each run writes to its ``metrics.json`` play no part in the search and are not copied anywhere. After
every epoch the trial reports its validation value, and the pruner may stop it there. The search stops at
``trials`` trials or ``timeout`` seconds, whichever comes first; a trial still training when the time is up
is stopped after its current epoch (and counts as pruned).

It writes ``<out>/trials.csv`` (one row per trial, rewritten after each) and ``<out>/best.yaml``: the best
trial's configuration in the format ``fgraph train --config`` reads, with a ``source`` entry recording how it
was found. Optuna is an optional dependency (``pip install 'fgraph[tune]'``).
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime
import inspect
import io
import json
import math
import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import __version__, api
from ._validate import OptionErrors, as_bool, as_float, as_int, as_mapping
from .data.datasets import DATASETS
from .errors import ConfigError, FgraphError, TrainingDivergedError
from .models.base import MODELS, check_hparams
from .train.metrics import GREATER_IS_BETTER
from .train.protocols import PROTOCOLS, apply_protocol
from .train.run_dir import RunDirectory
from .train.trainer import TrainConfig

#: The kinds of a search-space spec: ``(kind, low, high[, step])`` or ``("categorical", [choices])``.
SPEC_KINDS = ("float", "log_float", "int", "log_int", "categorical")
PRUNERS = ("median", "hyperband", "none")

#: ``embed_dim`` for a model that declares no search space (``search_space = None``)
FALLBACK_EMBED_DIM = ("categorical", [8, 10, 16, 32])

#: training options never written to best.yaml: they say how this machine ran the trials, not what was found
MACHINE_OPTIONS = ("progress", "threads", "device")

OPTUNA_MISSING = "fgraph tune needs optuna: pip install 'fgraph[tune]' (or pip install 'optuna>=4,<6')"


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ConfigError(OPTUNA_MISSING) from None
    return optuna


def shared_train_space() -> dict[str, tuple]:
    """The training options every search covers (under the model's own space): the learning rate and the
    embedding regulariser (``embedding_regularizer``, the λ/2·‖W‖² penalty, where the trainer has it;
    ``embedding_weight_decay`` otherwise). Zero regularisation is one of the choices."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    reg = "embedding_regularizer" if "embedding_regularizer" in names else "embedding_weight_decay"
    # 3e-2 and 0.1 are in because the validation split chose 3e-2 (GraphFM) and 5e-2 (the "+" heads) on
    # Frappe under the bars protocol's N(0, 1e-4) embeddings (fgraph/zoo/*-frappe.yaml), above the old 1e-2 top.
    return {"train.lr": ("log_float", 1e-4, 1e-2),
            f"train.{reg}": ("categorical", [0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 3e-2, 1e-1])}


def _model_params(model: str) -> dict[str, inspect.Parameter]:
    sig = inspect.signature(MODELS[model].__init__)
    return {k: p for k, p in sig.parameters.items()
            if k not in ("self", "space") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def search_space(model: str, *, fixed=()) -> dict[str, tuple]:
    """The space ``fgraph tune`` searches for ``model``: :func:`shared_train_space` with the model's declared
    :attr:`~fgraph.models.CTRModel.search_space` over it (a key mapped to None drops a shared entry), or, for
    a model that declares none, the shared space and ``model.embed_dim`` (if the model takes one). Keys in
    ``fixed`` (``"model.<name>"`` / ``"train.<name>"``, the options given) are left out."""
    key = model.lower() if isinstance(model, str) else model
    if key not in MODELS:
        raise ConfigError(f"unknown model {model!r}; known models: {sorted(MODELS)}")
    declared = MODELS[key].search_space
    space = shared_train_space()
    if declared is None:
        if "embed_dim" in _model_params(key):
            space["model.embed_dim"] = FALLBACK_EMBED_DIM
        declared = {}
    for k, spec in declared.items():
        if spec is None:
            space.pop(k, None)
        else:
            space[k] = spec
    fixed = set(fixed)
    return {k: v for k, v in space.items() if k not in fixed}


def _is_number(x, integer=False) -> bool:
    if isinstance(x, bool):
        return False
    return isinstance(x, int) if integer else isinstance(x, (int, float)) and math.isfinite(x)


def check_space(model: str, space: dict) -> dict[str, tuple]:
    """``space`` checked: every key names an option of ``model`` (``model.<name>``) or a training option
    (``train.<name>``), every spec is well formed, and its bounds or choices are values the option accepts.
    Returns the specs as tuples (choices as lists). Raises one :class:`ConfigError` with a line per problem."""
    if not isinstance(space, dict) or not space:
        raise ConfigError(f"the search space must be a non-empty mapping of 'model.<option>' / 'train.<option>' "
                          f"to specs, got {space!r}")
    params = _model_params(model)
    train_names = {f.name for f in dataclasses.fields(TrainConfig)}
    out, problems = {}, []
    for key, spec in space.items():
        where = f"search space of {model!r}: {key!r}"
        scope, _, name = key.partition(".") if isinstance(key, str) else ("", "", "")
        if scope == "model" and name not in params:
            problems.append(f"{where}: model {model!r} takes no option {name!r}; it takes {sorted(params)}")
            continue
        if scope == "train" and name not in train_names:
            problems.append(f"{where}: no training option {name!r}; known: {sorted(train_names)}")
            continue
        if scope not in ("model", "train"):
            problems.append(f"{where}: a key is 'model.<option>' or 'train.<option>'")
            continue
        if not isinstance(spec, (tuple, list)) or not spec or spec[0] not in SPEC_KINDS:
            problems.append(f"{where}: a spec is (kind, low, high[, step]) or ('categorical', [choices]) with "
                            f"kind one of {SPEC_KINDS}, got {spec!r}")
            continue
        kind = spec[0]
        if kind == "categorical":
            if len(spec) != 2 or not isinstance(spec[1], (list, tuple)) or not spec[1]:
                problems.append(f"{where}: a categorical spec is ('categorical', [choice, ...]), got {spec!r}")
                continue
            values = [list(c) if isinstance(c, tuple) else c for c in spec[1]]
            try:
                texts = [json.dumps(v, sort_keys=True) for v in values]
            except (TypeError, ValueError):
                problems.append(f"{where}: choices must be plain data (numbers, text, booleans, None, lists), "
                                f"got {spec[1]!r}")
                continue
            if len(set(texts)) != len(texts):
                problems.append(f"{where}: a choice is given twice in {spec[1]!r}")
                continue
            norm = (kind, values)
        else:
            integer = kind in ("int", "log_int")
            log = kind.startswith("log")
            if len(spec) not in ((3,) if log else (3, 4)):
                problems.append(f"{where}: a {kind} spec is ({kind!r}, low, high{'' if log else '[, step]'}), "
                                f"got {spec!r}")
                continue
            lo, hi = spec[1], spec[2]
            step = spec[3] if len(spec) == 4 else None
            if not (_is_number(lo, integer) and _is_number(hi, integer)) or lo > hi:
                problems.append(f"{where}: low and high must be {'integers' if integer else 'numbers'} with "
                                f"low <= high, got {spec!r}")
                continue
            if log and lo <= 0:
                problems.append(f"{where}: a {kind} range must be above 0, got low {lo!r}")
                continue
            if step is not None and not (_is_number(step, integer) and step > 0):
                problems.append(f"{where}: the step must be {'an integer' if integer else 'a number'} > 0, "
                                f"got {step!r}")
                continue
            values = [lo, hi] if integer else [lo, hi, (lo + hi) / 2]   # a float range of an integer option
            norm = (kind, lo, hi) if step is None else (kind, lo, hi, step)
        # The values at the ends of the range (or every choice) must be ones the option takes.
        for value in values:
            try:
                if scope == "model":
                    check_hparams(model, {name: value})
                else:
                    TrainConfig(**{name: value})
            except ConfigError as e:
                problems.append(f"{where}: {value!r} is not a value the option takes ({e})")
                break
        else:
            out[key] = norm
    if problems:
        raise ConfigError("\n".join(problems))
    return out


def _primitive(v) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _suggest(trial, key: str, spec: tuple):
    """The trial's value of ``key`` (lists among choices travel through optuna as JSON text)."""
    kind = spec[0]
    if kind == "categorical":
        choices = spec[1]
        if all(_primitive(c) for c in choices):
            return trial.suggest_categorical(key, choices)
        return json.loads(trial.suggest_categorical(key, [json.dumps(c) for c in choices]))
    step = spec[3] if len(spec) == 4 else None
    if kind == "float":
        return trial.suggest_float(key, spec[1], spec[2], step=step)
    if kind == "log_float":
        return trial.suggest_float(key, spec[1], spec[2], log=True)
    if kind == "int":
        return trial.suggest_int(key, spec[1], spec[2], step=step or 1)
    return trial.suggest_int(key, spec[1], spec[2], log=True)


def _make_pruner(optuna, pruner, warmup: int, epochs: int):
    if not isinstance(pruner, str):
        if isinstance(pruner, optuna.pruners.BasePruner):
            return pruner, type(pruner).__name__
        raise ConfigError(f"pruner must be one of {PRUNERS} or an optuna pruner, got {pruner!r}")
    name = pruner.lower()
    if name == "median":
        return (optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup),
                f"MedianPruner(n_startup_trials=5, n_warmup_steps={warmup})")
    if name == "hyperband":
        return (optuna.pruners.HyperbandPruner(min_resource=max(1, warmup), max_resource=epochs),
                f"HyperbandPruner(min_resource={max(1, warmup)}, max_resource={epochs})")
    if name == "none":
        return optuna.pruners.NopPruner(), "none"
    raise ConfigError(f"pruner must be one of {PRUNERS}, got {pruner!r}")


def _plain(value):
    """Plain YAML data: tuples as lists, paths as text."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (os.PathLike, str)):
        return str(value)   # a str subclass (torch's version) too
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):   # a numpy or torch scalar
        return value.item()
    return value


@dataclass
class TuneResult:
    """What :func:`tune` returns."""

    out_dir: Path
    best_config: Path          #: ``best.yaml``
    trials_table: Path         #: ``trials.csv``
    best_trial: int
    best_value: float          #: the best trial's best validation value of :attr:`monitor`
    best_options: dict         #: the options of best.yaml (without ``source``)
    monitor: str
    direction: str
    counts: dict               #: trials by state: ``{"run", "complete", "pruned", "failed"}``
    study: Any = None          #: the ``optuna.Study``


_FLAG_OPTIONS = ("epochs", "batch_size", "patience", "monitor", "task", "threads")


def _command_line(model, dataset, *, trials, timeout, out, seed, protocol, data_dir, embed_dim, min_count,
                  model_options, dataset_options, train_options, pruner, prune_warmup, study_name, storage) -> str:
    """The ``fgraph tune`` command that repeats this search."""
    def value(v):
        return v if isinstance(v, str) else json.dumps(_plain(v))

    parts = ["fgraph", "tune", "--model", model, "--dataset", dataset]
    parts += ["--trials", str(trials)] if trials is not None else []
    parts += ["--timeout", f"{timeout:g}"] if timeout is not None else []
    parts += ["--out", str(out), "--seed", str(seed)]
    for flag, v in (("--protocol", protocol), ("--data-dir", data_dir), ("--embed-dim", embed_dim),
                    ("--min-count", min_count), ("--study-name", study_name), ("--storage", storage)):
        if v is not None:
            parts += [flag, str(v)]
    if isinstance(pruner, str):
        parts += ["--pruner", pruner.lower(), "--prune-warmup", str(prune_warmup)]
    for flag, options in (("--model-option", model_options), ("--dataset-option", dataset_options)):
        for k, v in options.items():
            parts += [flag, f"{k}={value(v)}"]
    for k, v in train_options.items():
        if k in _FLAG_OPTIONS:
            parts += ["--" + k.replace("_", "-"), str(v)]
        elif k != "progress":
            parts += ["--train-option", f"{k}={value(v)}"]
    return shlex.join(parts)


def tune(model: str = "fm", dataset: str = "synthetic", *, trials: int | None = 20, timeout: float | None = None,
         out=None, seed: int = 0, pruner="median", prune_warmup: int = 2, space: dict | None = None,
         study_name: str | None = None, storage: str | None = None, data_dir=None, embed_dim: int | None = None,
         min_count: int | None = None, model_options: dict | None = None, dataset_options: dict | None = None,
         protocol: str | None = None, verbose: bool = False, echo: Callable[[str], None] | None = print,
         **train_options) -> TuneResult:
    """Search ``model``'s hyperparameters on ``dataset`` with Optuna; write ``best.yaml`` and ``trials.csv``.

    Args:
        model, dataset: as for :func:`fgraph.api.train`.
        trials: the most trials to run (None: no limit but ``timeout``).
        timeout: seconds; no trial starts after it, and one still training is stopped after its current epoch.
        out: the tuning directory (default ``runs/tune-<model>-<dataset>-<time>``): new or empty, unless a
            study saved in ``storage`` is continued there.
        seed: the sampler's seed (TPE) and every trial's training seed.
        pruner: ``"median"`` (Optuna's MedianPruner: from epoch ``prune_warmup`` on, a trial whose
            validation value is worse than the median of the earlier trials' at that epoch stops; the first 5
            trials are never pruned), ``"hyperband"``, ``"none"``, or an ``optuna.pruners.BasePruner``.
        prune_warmup: epochs before the pruner may stop a trial.
        space: the whole search space (``{"model.<option>" | "train.<option>": spec}``); default
            :func:`search_space` of the model, less the options given here.
        study_name, storage: an Optuna study name and storage URL (e.g. ``sqlite:///tune.db``), to keep the
            study and continue it (a continued study must be given the same options).
        data_dir, embed_dim, min_count, model_options, dataset_options, protocol, **train_options: options
            of every trial (see :func:`fgraph.api.train`); an option given here is not searched.
        verbose: show each trial's epoch lines (they are in its ``log.txt`` either way).
        echo: called with one line per trial and a closing line (None: silent).

    Returns:
        a :class:`TuneResult`.

    Raises:
        ConfigError: optuna is not installed, a bad option or search space (one line per problem), or a
            non-empty ``out``.
        FgraphError: no trial completed within the budget (``trials.csv`` is written all the same).
    """
    optuna = _optuna()
    # Every option checked before the first trial, each problem on its own line.
    errors = OptionErrors()
    with errors:
        trials = as_int("trials", trials, minimum=1, allow_none=True, where="tune")
    with errors:
        timeout = as_float("timeout", timeout, minimum=0.0, strict_min=True, allow_none=True, where="tune")
    with errors:
        seed = as_int("seed", seed, minimum=0, where="tune")
    with errors:
        prune_warmup = as_int("prune_warmup", prune_warmup, minimum=0, where="tune")
    with errors:
        verbose = as_bool("verbose", verbose, where="tune")
    with errors:
        if trials is None and timeout is None:
            raise ConfigError("give a budget: trials (--trials N) or timeout (--timeout SECONDS), or both")
    with errors:
        if "seed" in train_options:
            raise ConfigError("give the seed as tune's seed (--seed): it seeds the sampler and every trial")
    with errors:
        for name, v in (("study_name", study_name), ("storage", storage)):
            if v is not None and not isinstance(v, str):
                raise ConfigError(f"tune option {name!r} must be text, got {v!r}")
    config = None
    with errors:
        fixed_train = {"seed": seed if isinstance(seed, int) else 0, **train_options}
        # As a training would check them; this also finds the monitored metric.
        model, dataset, config, fixed_models, dataset_options, _ = api.check_train_options(
            model, dataset, embed_dim=embed_dim, min_count=1 if min_count is None else min_count,
            model_options=model_options, dataset_options=dataset_options, **apply_protocol(protocol, fixed_train))
        protocol = protocol.lower() if protocol is not None else None
        dataset_options = as_mapping("dataset_options", dataset_options)
    with errors:
        pruner_obj, pruner_text = _make_pruner(optuna, pruner, prune_warmup if isinstance(prune_warmup, int) else 0,
                                           config.epochs if config is not None else 1)
    out_dir = Path(out) if out is not None else \
        Path("runs") / f"tune-{model}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    with errors:
        if out_dir.exists() and not out_dir.is_dir():
            raise ConfigError(f"tuning directory {out_dir} is a file; give a directory with --out")
        if out_dir.is_dir() and any(out_dir.iterdir()) and storage is None:
            raise ConfigError(f"tuning directory {out_dir} is not empty (an earlier search?); give a new --out, "
                              f"or continue a study kept with --storage")
    if config is None:   # the model, data set or training options are bad: no space to check
        errors.raise_if_any()
    fixed_keys = {f"model.{k}" for k in fixed_models} | {f"train.{k}" for k in fixed_train}
    with errors:
        if space is None:
            space = search_space(model, fixed=fixed_keys)
            if not space:
                raise ConfigError(f"nothing to search for model {model!r}: every option of its search space "
                                  f"is given")
        elif isinstance(space, dict) and set(space) & fixed_keys:
            raise ConfigError(f"option(s) {sorted(set(space) & fixed_keys)} are both given and searched; leave "
                              f"them out of one")
        space = check_space(model, space)
    errors.raise_if_any()
    monitor = config.monitor
    direction = "maximize" if GREATER_IS_BETTER[monitor] else "minimize"
    out_dir.mkdir(parents=True, exist_ok=True)
    command = _command_line(model, dataset, trials=trials, timeout=timeout, out=out_dir, seed=seed,
                            protocol=protocol, data_dir=data_dir, embed_dim=fixed_models.get("embed_dim"),
                            min_count=min_count,
                            model_options={k: v for k, v in fixed_models.items() if k != "embed_dim"},
                            dataset_options=dataset_options, train_options=train_options, pruner=pruner,
                            prune_warmup=prune_warmup, study_name=study_name, storage=storage)

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)   # one line per trial is ours
    try:
        return _run_study(optuna=optuna, model=model, dataset=dataset, trials=trials, timeout=timeout,
                          out_dir=out_dir, seed=seed, pruner=pruner_obj, pruner_text=pruner_text, space=space,
                          study_name=study_name, storage=storage, data_dir=data_dir, min_count=min_count,
                          fixed_models=fixed_models, dataset_options=dataset_options, fixed_train=fixed_train,
                          protocol=protocol, verbose=verbose, echo=echo, monitor=monitor, direction=direction,
                          command=command)
    finally:
        optuna.logging.set_verbosity(level)


def _run_study(*, optuna, model, dataset, trials, timeout, out_dir, seed, pruner, pruner_text, space, study_name,
               storage, data_dir, min_count, fixed_models, dataset_options, fixed_train, protocol, verbose, echo,
               monitor, direction, command) -> TuneResult:
    """The search itself, once :func:`tune` has checked every option."""
    sampler = optuna.samplers.TPESampler(seed=seed)
    try:
        study = optuna.create_study(storage=storage, sampler=sampler, pruner=pruner, study_name=study_name,
                                    direction=direction, load_if_exists=storage is not None)
    except ValueError as e:   # e.g. a stored study of the other direction
        raise ConfigError(f"cannot create or load the study: {e}") from None
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    trial_defaults = {"progress": False}

    def objective(trial):
        sampled = {key: _suggest(trial, key, spec) for key, spec in space.items()}
        trial.set_user_attr("sampled", sampled)
        run_dir = out_dir / f"trial-{trial.number:03d}"
        trial.set_user_attr("run_dir", str(run_dir))
        t0 = time.monotonic()

        def report(trainer, record):
            epoch = record["epoch"]
            value = record.get(f"valid_{monitor}")
            trial.set_user_attr("epochs_run", epoch)
            trial.set_user_attr("seconds", round(time.monotonic() - t0, 3))
            if value is None:
                return
            trial.set_user_attr("last_value", value)
            trial.report(value, epoch)
            finishing = trainer.epoch >= trainer.config.epochs or trainer.bad_epochs >= trainer.config.patience
            if trial.should_prune():
                note = f"pruned at epoch {epoch}: valid {monitor} {value:.5f}"
            elif deadline is not None and time.monotonic() >= deadline and not finishing:
                note = f"stopped at epoch {epoch}: the time budget ({timeout:g} s) ran out"
            else:
                return
            trial.set_user_attr("note", note)
            raise optuna.TrialPruned(note)

        models = {**fixed_models, **{k[6:]: v for k, v in sampled.items() if k.startswith("model.")}}
        train = {**trial_defaults, **fixed_train, **{k[6:]: v for k, v in sampled.items() if k.startswith("train.")}}
        quiet = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
        try:
            with quiet:
                run = api.train(model, dataset, data_dir=data_dir, out=run_dir, overwrite=False, zoo=False,
                                protocol=protocol, callbacks=[report], min_count=min_count, model_options=models,
                                dataset_options=dataset_options, **train)
        except (TrainingDivergedError, ConfigError) as e:
            trial.set_user_attr("note", f"{type(e).__name__}: {str(e).splitlines()[0]}")
            trial.set_user_attr("seconds", round(time.monotonic() - t0, 3))
            raise
        trainer = run.trainer
        trial.set_user_attr("seconds", round(time.monotonic() - t0, 3))
        trial.set_user_attr("best_epoch", trainer.best_epoch)
        trial.set_user_attr("epochs_run", trainer.epoch)
        # The objective: the best validation value over the run's epochs. run.metrics["test"] is not read.
        return float("nan") if trainer.best_value is None else float(trainer.best_value)

    table = out_dir / "trials.csv"

    def after_trial(study, frozen):
        _write_trials(study, table, space)
        if echo is not None:
            echo(_trial_line(frozen, monitor))

    interrupted = None
    try:
        study.optimize(objective, n_trials=trials, timeout=timeout, callbacks=[after_trial],
                       catch=(TrainingDivergedError, ConfigError))
    except KeyboardInterrupt as e:
        interrupted = e
    _write_trials(study, table, space)
    states = optuna.trial.TrialState
    counts = {"run": len(study.trials),
              "complete": sum(t.state == states.COMPLETE for t in study.trials),
              "pruned": sum(t.state == states.PRUNED for t in study.trials),
              "failed": sum(t.state == states.FAIL for t in study.trials)}
    complete = [t for t in study.trials if t.state == states.COMPLETE]
    if not complete:
        if interrupted is not None:
            raise interrupted
        failed = [t.user_attrs.get("note") for t in study.trials if t.state == states.FAIL]
        why = f"; the first failure: {failed[0]}" if failed and failed[0] else ""
        raise FgraphError(f"no trial completed ({counts['run']} run, {counts['pruned']} pruned, {counts['failed']} "
                          f"failed{why}), so there is no best configuration; allow more time or trials "
                          f"(the trials are in {table})")
    best = study.best_trial
    options = _best_options(model, dataset, protocol, min_count, fixed_models, dataset_options, fixed_train,
                            best.user_attrs["sampled"])
    pinned = _pin_shipped(model, dataset, options, Path(best.user_attrs["run_dir"]))
    source = {
        "made_by": "fgraph tune",
        "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"fgraph": __version__, "optuna": optuna.__version__, "torch": str(_torch_version())},
        "objective": f"the best validation {monitor} over each trial's epochs ({direction}); the test split is "
                     f"not read",
        "value": best.value,
        "best_trial": best.number,
        "best_epoch": best.user_attrs.get("best_epoch"),
        "epochs_run": best.user_attrs.get("epochs_run"),
        "trials": counts,
        "budget": {"trials": trials, "timeout_s": timeout, "seconds_used": round(time.monotonic() - started, 1)},
        "sampler": f"TPESampler(seed={seed})",
        "pruner": pruner_text,
        "search_space": {k: list(v) for k, v in space.items()},
        "trials_table": str(table),
        "trial_run": best.user_attrs["run_dir"],
    }
    if data_dir is not None:
        source["data_dir"] = str(Path(data_dir).resolve())
    if study_name is not None or storage is not None:
        source["study"] = {"name": study.study_name, "storage": storage}
    if pinned is not None:
        source["pinned"] = (f"every option that fgraph's shipped configuration {pinned.name} sets is written out "
                            f"(the trial's value), so that it does not change this configuration")
    if interrupted is not None:
        source["interrupted"] = True
    best_path = out_dir / "best.yaml"
    _write_yaml(best_path, {**options, "source": source})
    if echo is not None:
        echo(f"best: trial {best.number}, valid {monitor} {best.value:.5f} ({counts['complete']} complete, "
             f"{counts['pruned']} pruned, {counts['failed']} failed)")
        echo(f"best configuration: {best_path} (fgraph train --config {best_path})")
    if interrupted is not None:
        raise interrupted
    return TuneResult(out_dir, best_path, table, best.number, best.value, options, monitor, direction, counts,
                      study)


def _torch_version() -> str:
    import torch

    return torch.__version__


def _best_options(model, dataset, protocol, min_count, fixed_models, dataset_options, fixed_train, sampled) -> dict:
    """The options of best.yaml: those given to every trial and the best trial's sampled values."""
    models = {**fixed_models, **{k[6:]: v for k, v in sampled.items() if k.startswith("model.")}}
    train = {**fixed_train, **{k[6:]: v for k, v in sampled.items() if k.startswith("train.")}}
    options = {"model": model, "dataset": dataset}
    if protocol is not None:
        options["protocol"] = protocol
    if "embed_dim" in models:
        options["embed_dim"] = models.pop("embed_dim")
    options.update({k: train[k] for k in sorted(train) if k not in MACHINE_OPTIONS})
    if min_count is not None:
        options["min_count"] = min_count
    if models:
        options["model_options"] = dict(sorted(models.items()))
    if dataset_options:
        options["dataset_options"] = dict(dataset_options)
    return _plain(options)


def _pin_shipped(model: str, dataset: str, options: dict, run_dir: Path) -> Path | None:
    """Trials run without the shipped configuration; ``fgraph train --config best.yaml`` layers it under the
    file. So every option the shipped file sets (and its protocol's options) is written into ``options`` with
    the best trial's value (from its config.json). Returns the shipped file, or None if there is none."""
    from .zoo import load_config

    shipped, path = load_config(model, dataset)
    if path is None:
        return None
    run = RunDirectory(run_dir).read_config()
    params = _model_params(model)
    builder = inspect.signature(DATASETS[dataset]).parameters
    models = options.setdefault("model_options", {})
    datasets = options.setdefault("dataset_options", {})

    def model_value(k):
        return run["model_options"].get(k, params[k].default if k in params else None)

    train_keys = [k for k in shipped if k not in ("model_options", "dataset_options", "embed_dim", "min_count",
                                                  "protocol", "data_dir", "out", "resume", "overwrite")]
    if shipped.get("protocol") is not None and "protocol" not in options:
        train_keys += list(PROTOCOLS.get(str(shipped["protocol"]).lower(), {}))
    for k in train_keys:
        if k not in options and k in run["train"]:
            options[k] = run["train"][k]
    for k in as_mapping("model_options", shipped.get("model_options")):
        if k not in models and k != "embed_dim":
            models[k] = model_value(k)
    has_embed = "embed_dim" in options or "embed_dim" in models
    if not has_embed and ("embed_dim" in shipped or "embed_dim" in (shipped.get("model_options") or {})):
        options["embed_dim"] = model_value("embed_dim")
    for k in as_mapping("dataset_options", shipped.get("dataset_options")):
        if k not in datasets:
            datasets[k] = run["dataset_options"].get(k, builder[k].default if k in builder else None)
    if "min_count" in shipped and "min_count" not in options:
        options["min_count"] = run["min_count"]
    for key in ("model_options", "dataset_options"):
        if not options[key]:
            del options[key]
    return path


class _FlowList(list):
    """A list YAML writes on one line (a search-space spec)."""


def _write_yaml(path: Path, data: dict) -> None:
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(_FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))
    data = _plain(data)
    space = data.get("source", {}).get("search_space")
    if space:
        data["source"]["search_space"] = {k: _FlowList(v) for k, v in space.items()}
    text = ("# Written by fgraph tune; train with it: fgraph train --config " + path.name + "\n"
            "# `source` records how it was found and sets no option.\n")
    text += yaml.dump(data, Dumper=Dumper, sort_keys=False, default_flow_style=None, allow_unicode=True,
                      width=1000)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _param_text(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return json.dumps(v) if not isinstance(v, str) else v


def _trial_line(t, monitor: str) -> str:
    state = t.state.name.lower()
    params = " ".join(f"{k}={_param_text(v)}" for k, v in (t.user_attrs.get("sampled") or {}).items())
    seconds = t.user_attrs.get("seconds")
    took = f"  {seconds:.1f} s" if seconds is not None else ""
    if state == "complete":
        what = (f"valid {monitor} {t.value:.5f} (best epoch {t.user_attrs.get('best_epoch')} of "
                f"{t.user_attrs.get('epochs_run')})")
    else:
        what = t.user_attrs.get("note") or ""
    return f"trial {t.number:3d}  {state:<8}  {what}{took}  {params}".rstrip()


TRIAL_COLUMNS = ("number", "state", "value", "best_epoch", "epochs_run", "last_value", "seconds", "note", "run_dir")


def _write_trials(study, path: Path, space: dict) -> None:
    """trials.csv: one row per trial (the validation values only), a column per searched option."""
    keys = list(space)
    for t in study.trials:
        keys += [k for k in (t.user_attrs.get("sampled") or {}) if k not in keys]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*TRIAL_COLUMNS, *keys])
    for t in study.trials:
        attrs, sampled = t.user_attrs, t.user_attrs.get("sampled") or {}
        # The objective of a complete trial (optuna gives a pruned one its last report: that is last_value).
        complete = t.state.name == "COMPLETE" and t.value is not None
        row = [t.number, t.state.name, repr(float(t.value)) if complete else ""]
        row += ["" if attrs.get(c) is None else attrs[c] for c in TRIAL_COLUMNS[3:]]
        row += [json.dumps(sampled[k]) if isinstance(sampled.get(k), list) else sampled.get(k, "") for k in keys]
        writer.writerow(row)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(buf.getvalue(), encoding="utf-8")
    os.replace(tmp, path)


__all__ = ["FALLBACK_EMBED_DIM", "PRUNERS", "SPEC_KINDS", "TuneResult", "check_space", "search_space",
           "shared_train_space", "tune"]
