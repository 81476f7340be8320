"""The few-lines Python API behind ``fgraph train`` and ``fgraph evaluate``."""
from __future__ import annotations

import inspect
import os
import time
from dataclasses import dataclass, fields as dc_fields
from pathlib import Path

from .data.datasets import DATASETS, TRAIN_DEFAULTS, canonical_name, load_dataset
from .data.encoder import FieldEncoder
from .data.space import EncodedData
from ._validate import OptionErrors, as_annotated, as_bool, as_int, as_mapping
from .errors import CheckpointError, ConfigError
from .models.base import MODELS, CTRModel, build_model, check_hparams
from .zoo import load_config as load_zoo_config
from .train.checkpoint import check_same_space, to_plain
from .train.run_dir import RESUME_FIXED_OPTIONS, RUN_KEYS, LoadedRun, RunDirectory, fixed_option_differences
from .train.trainer import TrainConfig, Trainer, seed_everything

SPLITS = ("train", "valid", "test")
TRAIN_OPTIONS = {f.name for f in dc_fields(TrainConfig)}


@dataclass
class Run:
    """What :func:`train` returns."""

    run_dir: Path
    model: CTRModel
    encoder: FieldEncoder
    trainer: Trainer
    metrics: dict
    data: dict
    zoo_config: Path | None = None    #: the shipped configuration the run used, if any


def _dataset_kwargs(dataset: str, options: dict, task: str) -> dict:
    """The builder options of ``dataset``, checked against the builder's signature and coerced."""
    options = as_mapping("dataset_options", options)
    builder = DATASETS[dataset]
    accepted = {k: p for k, p in inspect.signature(builder).parameters.items() if k != "data_dir"}
    # The regression protocol of the FM papers uses ±1 labels.
    if task == "regression" and "labels" in accepted and "labels" not in options:
        options["labels"] = "pm1"
    unknown = sorted(k for k in options if k not in accepted)
    if unknown:
        raise ConfigError(f"data set {dataset!r} does not take option(s) {unknown}; it takes {sorted(accepted)}")
    errors = OptionErrors()
    for k, v in options.items():
        with errors:
            options[k] = as_annotated(k, v, accepted[k].annotation, where=f"data set {dataset!r}")
    errors.raise_if_any()
    return options


def _check_names(model: str, dataset: str) -> tuple[str, str]:
    if not isinstance(model, str) or model.lower() not in MODELS:
        raise ConfigError(f"unknown model {model!r}; known models: {sorted(MODELS)}")
    if not isinstance(dataset, str):
        raise ConfigError(f"the data set must be given by name, one of {sorted(DATASETS)}; got {dataset!r}")
    return model.lower(), canonical_name(dataset)


def check_train_options(model: str = "fm", dataset: str = "synthetic", *, embed_dim=None, min_count=1,
                        model_options=None, dataset_options=None, **train_options):
    """Every option of :func:`train` checked and coerced, before any data is read.

    Returns ``(model, dataset, config, model_options, dataset_options, min_count)``. Raises one
    :class:`~fgraph.errors.ConfigError` with a line per bad option (unknown names included).
    """
    errors = OptionErrors()
    with errors:
        if not isinstance(model, str) or model.lower() not in MODELS:
            raise ConfigError(f"unknown model {model!r}; known models: {sorted(MODELS)}")
        model = model.lower()
    with errors:
        if not isinstance(dataset, str):
            raise ConfigError(f"the data set must be given by name, one of {sorted(DATASETS)}; got {dataset!r}")
        dataset = canonical_name(dataset)
    names_ok = not errors.messages
    with errors:
        unknown = sorted(set(train_options) - TRAIN_OPTIONS)
        if unknown:
            raise ConfigError(f"unknown training option(s) {unknown}; known: {sorted(TRAIN_OPTIONS)}")
    config = None
    with errors:
        defaults = TRAIN_DEFAULTS.get(dataset, {}) if names_ok else {}
        config = TrainConfig(**{**defaults, **{k: v for k, v in train_options.items() if k in TRAIN_OPTIONS}})
    with errors:
        min_count = as_int("min_count", min_count, minimum=1)
    with errors:
        model_options = as_mapping("model_options", model_options)
        if embed_dim is not None:
            if "embed_dim" in model_options and model_options["embed_dim"] != embed_dim:
                raise ConfigError(f"embed_dim is given twice: {embed_dim!r} (embed_dim / --embed-dim) and "
                                  f"{model_options['embed_dim']!r} (model_options); keep one")
            model_options["embed_dim"] = embed_dim
        if names_ok:
            model_options = check_hparams(model, model_options)
    with errors:
        dataset_options = as_mapping("dataset_options", dataset_options)
        if names_ok:
            task = config.task if config is not None else "binary"
            _dataset_kwargs(dataset, dataset_options, task)
    errors.raise_if_any()
    return model, dataset, config, model_options, dataset_options, min_count


def encode_dataset(dataset: str, data_dir=None, *, min_count: int = 1, encoder: FieldEncoder | None = None,
                   task: str = "binary", **dataset_options) -> tuple[FieldEncoder, dict[str, EncodedData]]:
    """Build a data set, fit an encoder on its training split (unless one is given) and encode all splits."""
    splits = load_dataset(dataset, data_dir, **_dataset_kwargs(dataset, dataset_options, task))
    if encoder is None:
        encoder = FieldEncoder(splits.schema, min_count=min_count).fit(splits.train)
    elif encoder.schema.names != splits.schema.names:
        raise ValueError(f"the saved encoder was fitted on fields {encoder.schema.names}, but data set "
                         f"{dataset!r} has fields {splits.schema.names}")
    frames = {"train": splits.train, "valid": splits.valid, "test": splits.test}
    return encoder, {name: encoder.transform(frame) for name, frame in frames.items()}


def train(model: str = "fm", dataset: str = "synthetic", *, data_dir=None, out=None, resume: bool = False,
          overwrite: bool = False, embed_dim: int | None = None, min_count: int | None = None,
          model_options: dict | None = None, dataset_options: dict | None = None, protocol: str | None = None,
          zoo: bool = True, callbacks=(), **train_options) -> Run:
    """Train ``model`` on ``dataset`` and score it on the test split.

    Args:
        model: a registered model name (``fgraph.models.MODELS``).
        dataset: a data-set builder name (``fgraph.data.datasets.DATASETS``).
        data_dir: where the data sets are (default: ``../shared/datasets`` or ``$FGRAPH_DATA_DIR``).
        out: the run directory (default: ``runs/<model>-<dataset>-<time>``).
        resume: continue the run in ``out`` from its last checkpoint (training options not given are the
            run's own; see :func:`_prepare_resume`). ``config.json`` is left as the run was started.
        overwrite: replace the run in ``out``: its files are removed (once the data is read) before the new
            run writes. Without ``resume`` or ``overwrite``, an ``out`` that holds a run is refused.
        embed_dim: embedding size, for models that take one.
        min_count: the encoder's ``min_count`` (default 1).
        model_options: more model hyperparameters.
        dataset_options: options of the data-set builder (e.g. ``{"labels": "pm1"}``).
        protocol: a named training protocol (:data:`fgraph.train.protocols.PROTOCOLS`, e.g. ``"bars"``): its
            values fill the training options not given (here or by the shipped configuration).
        zoo: use fgraph's shipped configuration for this model and data set (:mod:`fgraph.zoo`), if there
            is one. Options given here win over it, key by key (``model_options`` too).
        callbacks: ``callback(trainer, record)`` after every epoch (see :meth:`fgraph.train.Trainer.fit`).
        **train_options: :class:`~fgraph.train.TrainConfig` fields (``epochs``, ``batch_size``, ``lr``...).
            Options not given come from, in order: the shipped configuration, the protocol, the data set's
            ``TRAIN_DEFAULTS`` (if any), then ``TrainConfig``'s defaults.

    Returns:
        a :class:`Run` with the trained model (best weights), the encoder and the test metrics.

    Raises:
        RunDirectoryError: ``out`` holds a run (and neither ``resume`` nor ``overwrite``), is a file, or is in
            use by another training (it is locked while this one runs).
        TrainingDivergedError: the loss became NaN or blew up; the last good checkpoint stays in ``out``.
    """
    zoo_path, given = None, dict(train_options)
    if isinstance(model, str) and isinstance(dataset, str) and model.lower() in MODELS:
        embed_dim, min_count, model_options, dataset_options, protocol, train_options, zoo_path = \
            _layer_options(model.lower(), canonical_name(dataset), as_bool("zoo", zoo), embed_dim, min_count,
                           model_options, dataset_options, protocol, train_options)
    model, dataset, config, model_options, dataset_options, min_count = check_train_options(
        model, dataset, embed_dim=embed_dim, min_count=1 if min_count is None else min_count,
        model_options=model_options, dataset_options=dataset_options, **train_options)
    resume, overwrite = as_bool("resume", resume), as_bool("overwrite", overwrite)
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise ConfigError(f"option 'out' must be a directory path, got {out!r}")
    run_dir = Path(out) if out is not None else Path("runs") / f"{model}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    # Plain data (a Path among model_options becomes its string), so config.json and the checkpoint agree.
    # data_dir absolute, so that `fgraph evaluate` from another working directory reads the same files.
    run_config = to_plain({"model": model, "dataset": dataset,
                           "data_dir": None if data_dir is None else str(Path(data_dir).resolve()),
                           "min_count": min_count, "model_options": model_options,
                           "dataset_options": dataset_options, "train": config.to_dict(),
                           "zoo": None if zoo_path is None else zoo_path.name})
    # The lock is taken before any data is read: a second training into the same directory fails at once.
    with RunDirectory(run_dir) as run:
        run.prepare(resume=resume, overwrite=overwrite)
        encoder = None
        if resume:
            config, encoder = _prepare_resume(run, run_config, config, given)
            run_config["train"] = to_plain(config.to_dict())
        seed_everything(config.seed)
        encoder, data = encode_dataset(dataset, data_dir, min_count=min_count, encoder=encoder, task=config.task,
                                       **dataset_options)
        net = build_model(model, encoder.space_, **_read_pretrained(model_options))
        if overwrite:
            run.clear()   # only now, so that a failure while reading the data leaves the old run intact
        if not resume:
            run.write_config(run_config)
            run.write_encoder(encoder)
        else:
            # config.json keeps how the run was started; metrics.json described the checkpoint being replaced.
            run.remove_metrics()
            if not run.encoder_path.is_file():
                run.write_encoder(encoder)   # restored from the checkpoint's copy
        trainer = Trainer(net, config, encoder=encoder, run_dir=run, run_info=run_config)
        trainer.fit(data["train"], data["valid"], resume=resume, callbacks=callbacks)
        metrics = {"test": trainer.evaluate(data["test"], name="the test split"),
                   "valid": trainer.evaluate(data["valid"], name="the validation split"),
                   "best_epoch": trainer.best_epoch, "epochs_run": trainer.epoch}
        run.write_metrics(metrics)
    return Run(run_dir, net, encoder, trainer, metrics, data, zoo_path)


def zoo_config_path(model, dataset) -> Path | None:
    """The shipped configuration :func:`train` would use for ``model`` on ``dataset`` (None if none, or if
    a name is unknown: :func:`train` reports that)."""
    if not (isinstance(model, str) and isinstance(dataset, str)) or model.lower() not in MODELS:
        return None
    try:
        dataset = canonical_name(dataset)
    except ConfigError:
        return None
    from .zoo import config_path

    return config_path(model.lower(), dataset)


def _layer_options(model, dataset, zoo, embed_dim, min_count, model_options, dataset_options, protocol,
                   train_options):
    """The options of a run, layered: what the caller gave, over the shipped configuration, over the
    protocol's values. Returns them with the shipped configuration's path (or None)."""
    shipped, path = load_zoo_config(model, dataset) if zoo else ({}, None)
    model_options = as_mapping("model_options", model_options)
    dataset_options = as_mapping("dataset_options", dataset_options)
    shipped_models = as_mapping("model_options", shipped.pop("model_options", None))
    if embed_dim is not None or "embed_dim" in model_options:   # the caller's embed_dim replaces the file's
        shipped.pop("embed_dim", None)
        shipped_models.pop("embed_dim", None)
    model_options = {**shipped_models, **model_options}
    dataset_options = {**as_mapping("dataset_options", shipped.pop("dataset_options", None)), **dataset_options}
    embed_dim = embed_dim if embed_dim is not None else shipped.pop("embed_dim", None)
    min_count = min_count if min_count is not None else shipped.pop("min_count", None)
    protocol = protocol if protocol is not None else shipped.pop("protocol", None)
    for key in ("embed_dim", "min_count", "protocol", "data_dir", "out", "resume", "overwrite"):
        shipped.pop(key, None)
    train_options = {**shipped, **train_options}
    if protocol is not None:
        from .train.protocols import apply_protocol

        train_options = apply_protocol(protocol, train_options)
    return embed_dim, min_count, model_options, dataset_options, protocol, train_options, path


_NEW_RUN = "start a new run with --overwrite or another --out"


def _read_pretrained(model_options: dict) -> dict:
    """``model_options`` with a ``pretrained`` run directory (the AFM family's FM pre-training, e.g. ``fgraph
    train --model-option pretrained=runs/fm``) replaced by a function that loads the FM of that run: a model
    takes an FM, never a path, and reading run directories is this layer's job. config.json keeps the path."""
    source = model_options.get("pretrained")
    if not isinstance(source, (str, os.PathLike)):
        return model_options
    run = RunDirectory(source)
    # A function the model calls while it is built, rather than the FM itself: building the FM draws random
    # initial weights (then overwritten by the run's), and drawn at that point of the model's construction the
    # model's own initial weights are the ones fgraph has always drawn for a pre-trained run.
    return {**model_options, "pretrained": lambda: run.load().model}


def _prepare_resume(run: RunDirectory, run_config: dict, config: TrainConfig, given: dict
                    ) -> tuple[TrainConfig, FieldEncoder]:
    """The configuration and encoder a resume continues with, after checking config.json, the checkpoint and
    encoder.json agree with each other and with what was asked.

    Training options not given fall back to the run's own (config.json), not to the defaults: a resume with
    ``--epochs 10`` alone continues at the run's learning rate. An option of
    :data:`~fgraph.train.run_dir.RESUME_FIXED_OPTIONS` given with another value is refused.
    """
    run_dir = run.path
    saved = run.read_config()
    for key in RUN_KEYS:
        if saved[key] != run_config[key]:
            raise ConfigError(f"cannot resume {run_dir}: it was run with {key}={saved[key]!r}, not "
                              f"{run_config[key]!r}; give the run's own value (see {run.config_path}), "
                              f"or {_NEW_RUN}")
    saved_train = {k: v for k, v in saved["train"].items() if k in TRAIN_OPTIONS}
    current = to_plain(config.to_dict())
    asked = {k: current[k] for k in given if k in current}
    for key, was, now in fixed_option_differences({k: saved_train.get(k) for k in asked}, asked):
        raise ConfigError(f"cannot resume {run_dir}: it was run with {key}={was!r}, not {now!r}; a resume keeps "
                          f"the run's {', '.join(RESUME_FIXED_OPTIONS)} (leave the option out to keep it), or "
                          f"{_NEW_RUN}")
    try:
        config = TrainConfig(**{**saved_train, **asked})
    except ConfigError as e:
        raise ConfigError(f"cannot resume {run_dir}: the training options in its {run.config_path.name} are not "
                          f"valid: {e}") from None
    _, encoder = run.read_run(saved)
    return config, encoder


def load_run(run_dir) -> tuple[CTRModel, FieldEncoder, dict]:
    """The trained model (best weights), its encoder and the run's configuration (``config.json``).

    The same as :meth:`RunDirectory(run_dir).load() <fgraph.train.run_dir.RunDirectory.load>`, which also
    gives the checkpoint.

    Raises:
        InputFileNotFoundError: not a run directory, or one without a checkpoint.
        InputFileError: a damaged config.json or encoder.json.
        CheckpointError: a damaged or foreign checkpoint, or one that disagrees with config.json or
            encoder.json (another run's, or another encoder's).
    """
    loaded = RunDirectory(run_dir).load()
    return loaded.model, loaded.encoder, loaded.config


def evaluate(run_dir, split: str = "test", data_dir=None) -> dict:
    """Score a saved run on one split of the data set it was trained on (on the CPU)."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
    loaded: LoadedRun = RunDirectory(run_dir).load()
    model, encoder, config, state = loaded.model, loaded.encoder, loaded.config, loaded.checkpoint
    saved = state.get("config") or config["train"]
    # Only what scoring needs, so that a run saved on a GPU, or by an fgraph with other option rules, still scores.
    train_cfg = {k: saved[k] for k in ("task", "monitor", "batch_size", "eval_batch_size") if k in saved}
    try:
        cfg = TrainConfig(**train_cfg, progress=False, device="cpu")
    except ConfigError as e:
        raise CheckpointError(f"the training options saved with {RunDirectory(run_dir).checkpoint_path} are not "
                              f"valid: {e}") from None
    data_dir = data_dir if data_dir is not None else config.get("data_dir")
    _, data = encode_dataset(config["dataset"], data_dir, encoder=encoder, task=cfg.task,
                             **config["dataset_options"])
    check_same_space(model.space, data[split].space, what="saved run")
    trainer = Trainer(model, cfg)
    if cfg.task == "regression":
        clip = state.get("clip_range")
        trainer.clip_range = tuple(clip) if clip else (float(data["train"].y.min()), float(data["train"].y.max()))
    return trainer.evaluate(data[split], name=f"the {split} split")
