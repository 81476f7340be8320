"""The few-lines Python API behind the ``fgraph`` command: :func:`train` (on a built-in data set or on a user's
CSV / Parquet files), :func:`evaluate`, :func:`load` (a trained run as a :class:`Predictor`),
:func:`predict_file` and :func:`explain`."""
from __future__ import annotations

import dataclasses
import inspect
import os
import shutil
import time
from dataclasses import dataclass, fields as dc_fields
from pathlib import Path

import numpy as np
import pandas as pd

from .data.datasets import DATASETS, TRAIN_DEFAULTS, canonical_name, load_dataset
from .data.encoder import FieldEncoder
from .data.files import PARQUET_SUFFIXES, file_columns, file_splits, read_file
from .data.space import EncodedData
from ._validate import OptionErrors, as_annotated, as_bool, as_int, as_mapping
from .errors import (CheckpointError, ColumnNotFoundError, ConfigError, DataError, InputFileError,
                     InputFileNotFoundError)
from .models.base import MODELS, CTRModel, build_model, check_hparams
from .configfile import apply_variants
from .zoo import load_config as load_zoo_config
from .train.checkpoint import check_same_space, to_plain
from .train.run_dir import (RESUME_FIXED_OPTIONS, RUN_KEYS, STAGES_DIR, LoadedRun, RunDirectory,
                             fixed_option_differences)
from .train.stages import fit_stages, is_staged
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
    #: for a run on files: where the data came from, as config.json's ``data`` records it (see :func:`train`)
    source: dict | None = None


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

    ``dataset=None`` stands for a run on the user's files (``train(data=...)``): no data-set defaults, no
    data-set options.

    Returns ``(model, dataset, config, model_options, dataset_options, min_count)``. Raises one
    :class:`~fgraph.errors.ConfigError` with a line per bad option (unknown names included).
    """
    errors = OptionErrors()
    with errors:
        if not isinstance(model, str) or model.lower() not in MODELS:
            raise ConfigError(f"unknown model {model!r}; known models: {sorted(MODELS)}")
        model = model.lower()
    with errors:
        if dataset is not None:
            if not isinstance(dataset, str):
                raise ConfigError(f"the data set must be given by name, one of {sorted(DATASETS)}; got "
                                  f"{dataset!r}")
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
        if dataset is None and dataset_options:
            raise ConfigError(f"dataset_options {sorted(dataset_options)} are options of the built-in data sets; "
                              f"a run on your own files (data=, --data) takes none")
        if names_ok and dataset is not None:
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


def train(model: str = "fm", dataset: str | None = None, *, data=None, valid=None, test=None,
          label: str | None = None, schema=None, positive=None, fractions=None, data_dir=None, out=None,
          resume: bool = False, overwrite: bool = False, embed_dim: int | None = None, min_count: int | None = None,
          model_options: dict | None = None, dataset_options: dict | None = None, protocol: str | None = None,
          zoo: bool = True, callbacks=(), **train_options) -> Run:
    """Train ``model`` on a built-in data set (``dataset``) or on your own files (``data``), and score it on
    the test split.

    Args:
        model: a registered model name (``fgraph.models.MODELS``).
        dataset: a data-set builder name (``fgraph.data.datasets.DATASETS``); ``"synthetic"`` when neither
            ``dataset`` nor ``data`` is given. Not together with ``data``.
        data: the training file of a run on your own data (CSV or Parquet, read in chunks; see
            :func:`fgraph.data.files.file_splits`). Its schema is inferred (or read from ``schema``), printed
            and saved as ``schema.yaml`` in the run directory; without ``valid`` and ``test`` a validation and
            a test split are cut from it at random (``fractions``, seeded by the training option ``seed``), and
            the cut is printed. ``config.json`` records the files (as absolute paths), the label, the schema,
            the seed and the split, so that :func:`evaluate` reads the same rows again. fgraph's shipped
            configurations (:mod:`fgraph.zoo`) are for the built-in data sets and do not apply here: options
            not given are the protocol's, else the model's and ``TrainConfig``'s defaults.
        valid, test: the validation and test files of a run on ``data`` (optional; the same columns).
        label: the label column of ``data`` (or named by the schema file).
        schema: a schema for ``data``: the path of a schema file (YAML, full or partial: see
            :class:`fgraph.data.files.SchemaSpec`), a :class:`~fgraph.data.Schema` or a mapping.
        positive: the label value that is the positive class, for text or two-number labels.
        fractions: train/valid/test fractions of the random split of ``data`` (default 0.8/0.1/0.1).
        data_dir: where the data sets are (default: ``../shared/datasets`` or ``$FGRAPH_DATA_DIR``).
        out: the run directory (default: ``runs/<model>-<dataset>-<time>``, or ``runs/<model>-<file>-<time>``).
        resume: continue the run in ``out`` from its last checkpoint (training options not given are the
            run's own; see :func:`_prepare_resume`). ``config.json`` is left as the run was started. A run
            on files resumes on the same files (give the same ``data``, ``valid`` and ``test``) with its own
            ``schema.yaml``.
        overwrite: replace the run in ``out``: its files are removed (once the data is read) before the new
            run writes. Without ``resume`` or ``overwrite``, an ``out`` that holds a run is refused.
        embed_dim: embedding size, for models that take one.
        min_count: the encoder's ``min_count`` (default 1).
        model_options: more model hyperparameters. ``pretrained`` (the AFM family's FM pre-training) takes an
            FM run directory, or ``"fm"``: train that FM first, on the same data with the same embedding
            size and seed (and the FM's shipped configuration), in ``pretrained-fm/`` inside ``out``.
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
        ConfigError: both ``dataset`` and ``data``, or a file option (``valid``, ``label``...) without ``data``.
        RunDirectoryError: ``out`` holds a run (and neither ``resume`` nor ``overwrite``), is a file, or is in
            use by another training (it is locked while this one runs).
        TrainingDivergedError: the loss became NaN or blew up; the last good checkpoint stays in ``out``.
    """
    # What was given, for the FM of pretrained=fm (`data` is the encoded splits further down).
    given_data = dict(data=data, valid=valid, test=test, label=label, schema=schema, positive=positive,
                      fractions=fractions)
    files = _file_options(dataset, data, valid, test, label, schema, positive, fractions, data_dir)
    if files is None and dataset is None:
        dataset = "synthetic"
    zoo_path, given = None, dict(train_options)
    if isinstance(model, str) and model.lower() in MODELS and (files is not None or isinstance(dataset, str)):
        embed_dim, min_count, model_options, dataset_options, protocol, train_options, zoo_path = \
            _layer_options(model.lower(), None if files is not None else canonical_name(dataset),
                           files is None and as_bool("zoo", zoo), embed_dim, min_count, model_options,
                           dataset_options, protocol, train_options)
    model, dataset, config, model_options, dataset_options, min_count = check_train_options(
        model, dataset, embed_dim=embed_dim, min_count=1 if min_count is None else min_count,
        model_options=model_options, dataset_options=dataset_options, **train_options)
    resume, overwrite = as_bool("resume", resume), as_bool("overwrite", overwrite)
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise ConfigError(f"option 'out' must be a directory path, got {out!r}")
    if out is not None:
        run_dir = Path(out)
    else:
        what = dataset if files is None else (files["train"].name.split(".")[0] or "data")
        run_dir = Path("runs") / f"{model}-{what}-{time.strftime('%Y%m%d-%H%M%S')}"
    # Plain data (a Path among model_options becomes its string), so config.json and the checkpoint agree.
    # data_dir absolute, so that `fgraph evaluate` from another working directory reads the same files.
    run_config = to_plain({"model": model, "dataset": dataset,
                           "data_dir": None if data_dir is None else str(Path(data_dir).resolve()),
                           "min_count": min_count, "model_options": model_options,
                           "dataset_options": dataset_options, "train": config.to_dict(),
                           "zoo": None if zoo_path is None else zoo_path.name})
    if files is not None:
        run_config["data"] = None   # filled in once the files are read (the label's mapping, the split)
    # The lock is taken before any data is read: a second training into the same directory fails at once.
    source = None
    with RunDirectory(run_dir) as run:
        run.prepare(resume=resume, overwrite=overwrite)
        encoder = None
        saved = None
        if resume:
            saved = run.read_config()
            _check_resume_source(run, saved, files)
            config, encoder = _prepare_resume(run, run_config, config, given)
            run_config["train"] = to_plain(config.to_dict())
        seed_everything(config.seed)
        if files is None:
            encoder, data = encode_dataset(dataset, data_dir, min_count=min_count, encoder=encoder,
                                           task=config.task, **dataset_options)
            schema_ = encoder.schema
        else:
            encoder, data, source = _encode_files(run, files, config, min_count, encoder, saved)
            run_config["data"] = source
            schema_ = encoder.schema
            if not resume and "batch_size" not in given and config.protocol is None:
                config = _file_batch_size(config, len(data["train"]))
                run_config["train"] = to_plain(config.to_dict())
        staged = is_staged(model)
        # A staged model (AIM) is built here too, from the user's options, only to refuse a bad option before
        # anything is written; its stages build their own models.
        build_options = model_options
        if not staged and model_options.get("pretrained") == PRETRAIN_HERE:
            # `pretrained=fm`: an FM on the same rows first, in a run directory of its own inside this one.
            fm_dir = run.path / PRETRAINED_DIR
            if overwrite:
                shutil.rmtree(fm_dir, ignore_errors=True)
            fm_options = dict(dataset=None if files is not None else dataset, **given_data)
            _pretrain_fm(fm_dir, model, model_options, fm_options, data_dir, min_count, dataset_options,
                         as_bool("zoo", zoo), config)
            seed_everything(config.seed)   # this model's draws do not depend on whether the FM was reused
            build_options = {**model_options, "pretrained": str(fm_dir)}
        net = build_model(model, encoder.space_, **(_read_found(build_options) if staged
                                                    else _read_pretrained(build_options)))
        if overwrite:
            run.clear()   # only now, so that a failure while reading the data leaves the old run intact
            if staged:
                shutil.rmtree(run.path / STAGES_DIR, ignore_errors=True)
        if not resume:
            run.write_config(run_config)
            run.write_encoder(encoder)
            run.write_schema(schema_)
            if files is not None:
                print(f"schema saved as {run.schema_path} (--schema {run.schema_path} trains on the same fields)")
        else:
            # config.json keeps how the run was started; metrics.json described the checkpoint being replaced.
            run.remove_metrics()
            if not run.encoder_path.is_file():
                run.write_encoder(encoder)   # restored from the checkpoint's copy
            if not run.schema_path.is_file():
                run.write_schema(schema_)
        if staged:
            # The search stages (AIM), each a run of its own under stages/; the run itself retrains what they found.
            final_options, _ = fit_stages(model, encoder, data, config, _read_found(model_options), run)
            net = build_model(model, encoder.space_, **final_options)
        trainer = Trainer(net, config, encoder=encoder, run_dir=run, run_info=run_config)
        trainer.fit(data["train"], data["valid"], resume=resume and run.checkpoint_path.is_file(),
                    callbacks=callbacks)
        metrics = {"test": trainer.evaluate(data["test"], name="the test split"),
                   "valid": trainer.evaluate(data["valid"], name="the validation split"),
                   "best_epoch": trainer.best_epoch, "epochs_run": trainer.epoch}
        run.write_metrics(metrics)
    return Run(run_dir, net, encoder, trainer, metrics, data, zoo_path, source)


#: bounds of the batch size a run on the user's file gets when none is given (see :func:`_file_batch_size`)
FILE_BATCH_RANGE = (64, 4096)


def _file_batch_size(config: TrainConfig, train_rows: int) -> TrainConfig:
    """``config`` with the batch size a table of ``train_rows`` rows gets when the user names none: the largest
    power of two at most ``train_rows / 100``, within :data:`FILE_BATCH_RANGE`, so that an epoch has about a
    hundred steps or more. Why: the fixed 4096 of the public benchmarks gives a 5,000-row table one step per
    epoch, and early stopping ends the run before the model has learned anything (the demo table: valid AUC
    0.45 after 3 epochs at 4096, 0.6-0.7 at 64)."""
    low, high = FILE_BATCH_RANGE
    size = low
    while size * 2 <= min(high, train_rows / 100):
        size *= 2
    if size != config.batch_size:
        print(f"batch size {size}: about a hundred steps per epoch over the {train_rows:,} training rows "
              f"(powers of two from {low} to {high}; --batch-size sets it)")
    return dataclasses.replace(config, batch_size=size)


#: what :func:`train` takes only with ``data=`` (a run on the user's files)
_FILE_OPTIONS = ("valid", "test", "label", "schema", "positive", "fractions")


def _file_options(dataset, data, valid, test, label, schema, positive, fractions, data_dir) -> dict | None:
    """The file options of :func:`train`, checked (None for a run on a built-in data set)."""
    given = {"valid": valid, "test": test, "label": label, "schema": schema, "positive": positive,
             "fractions": fractions}
    if data is None:
        stray = [k for k, v in given.items() if v is not None]
        if stray:
            flags = ", ".join(f"{k}= (--{k})" for k in stray)
            raise ConfigError(f"{flags} {'describes' if len(stray) == 1 else 'describe'} a training file, but no "
                              f"data= (--data FILE) is given; give the "
                              f"training file, or leave {'it' if len(stray) == 1 else 'them'} out to train on a "
                              f"built-in data set")
        return None
    if dataset is not None:
        raise ConfigError(f"both a data set ({dataset!r}, dataset= / --dataset) and a training file ({data!r}, "
                          f"data= / --data) are given; give one: --dataset trains on a built-in data set, --data "
                          f"on your own CSV or Parquet file")
    if data_dir is not None:
        raise ConfigError("data_dir= (--data-dir) is where the built-in data sets are; a run on your own files "
                          "(data=, --data) does not read it: leave it out")
    paths = {}
    for name, value in (("data", data), ("valid", valid), ("test", test)):
        if value is None:
            continue
        if not isinstance(value, (str, os.PathLike)):
            raise ConfigError(f"option {name!r} must be the path of a CSV or Parquet file, got "
                              f"{type(value).__name__} {value!r:.60}")
        path = Path(value).expanduser()
        if not path.is_file():
            what = "is a directory, not a file" if path.is_dir() else "does not exist"
            raise InputFileNotFoundError(f"{name} file {path} {what}")
        paths["train" if name == "data" else name] = path.resolve()
    if fractions is not None:
        if isinstance(fractions, str):
            try:
                fractions = [float(x) for x in fractions.split(",")]
            except ValueError:
                raise ConfigError(f"option 'fractions' must be three numbers such as 0.8,0.1,0.1, got "
                                  f"{fractions!r}") from None
        if not isinstance(fractions, (list, tuple)) or len(fractions) != 3:
            raise ConfigError(f"option 'fractions' must be three numbers (train, valid, test) summing to 1, such "
                              f"as 0.8,0.1,0.1; got {fractions!r}")
        fractions = [float(x) for x in fractions]
        if valid is not None and test is not None:
            raise ConfigError("option 'fractions' splits the training file, but both a validation and a test "
                              "file are given, so nothing is split: leave it out")
    if isinstance(schema, (str, os.PathLike)):
        schema = Path(schema).expanduser().resolve()
    return {**paths, "label": label, "schema": schema, "positive": positive, "fractions": fractions}


def _check_resume_source(run: RunDirectory, saved: dict, files: dict | None) -> None:
    """Refuse to resume a run on other data than it was started on (files or data set)."""
    source = saved.get("data")
    if source is None and files is None:
        return
    if files is None:
        raise ConfigError(f"cannot resume {run.path}: it was trained on the file {source.get('train')}; give the "
                          f"same --data (and --valid / --test) to continue it")
    if source is None:
        where = f"data set {saved.get('dataset')!r}" if saved.get("dataset") else "data given from Python"
        raise ConfigError(f"cannot resume {run.path}: it was trained on {where}, not on files; {_NEW_RUN}")
    for key in ("train", "valid", "test"):
        now = None if files.get(key) is None else str(files[key])
        if now != source.get(key):
            raise ConfigError(f"cannot resume {run.path}: its {key} file was {source.get(key)}, not {now}; give "
                              f"the run's own files, or {_NEW_RUN}")
    for key in ("label", "positive", "fractions"):
        if files.get(key) is not None and files[key] != source.get(key):
            raise ConfigError(f"cannot resume {run.path}: it was trained with {key} {source.get(key)!r}, not "
                              f"{files[key]!r}; leave the option out to keep the run's, or {_NEW_RUN}")
    if files.get("schema") is not None:
        raise ConfigError(f"cannot resume {run.path} with another schema: a resume uses the run's own "
                          f"{run.schema_path.name}; leave --schema out")


def _encode_files(run: RunDirectory, files: dict, config: TrainConfig, min_count: int,
                  encoder: FieldEncoder | None, saved: dict | None):
    """Read the user's files (:func:`~fgraph.data.files.file_splits`), print what was inferred and how they
    were split, fit the encoder (unless a resume brings one) and encode the splits. Returns ``(encoder,
    {split: EncodedData}, source)``, ``source`` being what config.json records as ``data``."""
    if saved is not None:   # a resume: the run's own schema, label, positive class and split
        source = saved["data"]
        schema, label, positive = run.schema_path, source["label"], source.get("positive")
        fractions = source.get("fractions")
        if not run.schema_path.is_file():
            schema = encoder.schema
    else:
        schema, label, positive, fractions = files["schema"], files["label"], files["positive"], files["fractions"]
    if _takes_out_of_core(files):
        return _encode_out_of_core(run, files, config, min_count, encoder, saved, schema, label, positive, fractions)
    splits = file_splits(files["train"], files.get("valid"), files.get("test"), label=label, schema=schema,
                         task=config.task, positive=positive, seed=config.seed, fractions=fractions)
    print(splits.describe())
    if encoder is None:
        encoder = FieldEncoder(splits.schema, min_count=min_count).fit(splits.train)
    elif encoder.schema.names != splits.schema.names:
        raise CheckpointError(f"the encoder of {run.path} was fitted on fields {encoder.schema.names}, but its "
                              f"schema now gives {splits.schema.names}")
    data = {name: encoder.transform(frame) for name, frame in splits.splits.items()}
    meta = splits.meta
    schema_given = files["schema"] if saved is None else (saved["data"] or {}).get("schema_given")
    source = to_plain({
        "train": str(files["train"]), "valid": None if files.get("valid") is None else str(files["valid"]),
        "test": None if files.get("test") is None else str(files["test"]),
        "label": splits.schema.label, "schema": run.schema_path.name,
        "schema_given": schema_given if schema_given is None or isinstance(schema_given, (str, Path))
        else "given from Python",
        "task": config.task, "positive": meta.get("positive"), "label_mapping": meta.get("label_mapping"),
        "seed": config.seed, "fractions": list(fractions) if fractions is not None else None,
        "split": meta.get("split"), "rows": meta.get("rows")})
    return encoder, data, source


def _takes_out_of_core(files: dict) -> bool:
    """Whether a run on ``files`` takes the out-of-core path (:mod:`fgraph.data.out_of_core`): a training
    file at least ``out_of_core_threshold()`` bytes (1 GiB; ``$FGRAPH_OUT_OF_CORE_BYTES``), cut into its
    splits (no valid or test file: with them the in-memory path is taken, saying so)."""
    from .data.out_of_core import out_of_core_threshold

    size, limit = files["train"].stat().st_size, out_of_core_threshold()
    if size < limit:
        return False
    if files.get("valid") is not None or files.get("test") is not None:
        print(f"out-of-core: {files['train'].name} is larger than {limit:,} bytes, but valid/test files are given, "
              f"which the out-of-core path does not take yet: reading everything into memory")
        return False
    return True


def _encode_out_of_core(run: RunDirectory, files: dict, config: TrainConfig, min_count: int,
                        encoder: FieldEncoder | None, saved: dict | None, schema, label, positive, fractions):
    """:func:`_encode_files` for a training file larger than memory: fitted over chunks, encoded into the
    data cache beside the run (``RUN/../.fgraph-cache``, or ``$FGRAPH_CACHE_DIR``), the
    splits as row-index arrays; the splits, the encoder and the batches are those of the in-memory path."""
    from .data import out_of_core as ooc

    path = files["train"]
    print(f"out-of-core: {path.name} ({path.stat().st_size / 2**30:.2f} GiB) is larger than "
          f"{ooc.out_of_core_threshold() / 2**30:.2f} GiB (${ooc.THRESHOLD_ENV}): training from the encoded "
          f"table in {ooc.cache_root(run.path)}")
    out = ooc.out_of_core_splits(path, label=label, schema=schema, task=config.task, positive=positive,
                                 seed=config.seed, fractions=fractions, min_count=min_count, encoder=encoder,
                                 run_dir=run.path, log=lambda text: print(text, flush=True))
    report, enc_label = out["report"], out["label_encoding"]
    encoder = out["encoder"]
    print("\n".join([report.describe(), enc_label.describe(encoder.schema.label), out["split"],
                     "rows: " + ", ".join(f"{k} {len(v):,}" for k, v in out["data"].items())]))
    meta = out["meta"]
    schema_given = files["schema"] if saved is None else (saved["data"] or {}).get("schema_given")
    source = to_plain({
        "train": str(path), "valid": None, "test": None, "label": encoder.schema.label, "schema": run.schema_path.name,
        "schema_given": schema_given if schema_given is None or isinstance(schema_given, (str, Path))
        else "given from Python",
        "task": config.task, "positive": meta.get("positive"), "label_mapping": meta.get("label_mapping"),
        "seed": config.seed, "fractions": list(fractions) if fractions is not None else None,
        "split": meta.get("split"), "rows": meta.get("rows"), "out_of_core": meta.get("out_of_core")})
    return encoder, out["data"], source


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
    shipped = apply_variants(shipped, model_options)     # e.g. aim-frappe.yaml's settings for --base deepfm
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


#: the ``pretrained`` model option that trains the FM first, inside the run (``fgraph train --model afm
#: --model-option pretrained=fm``); a run directory named like it is written ``./fm``
PRETRAIN_HERE = "fm"
#: where a run keeps the FM that ``pretrained=fm`` trained for it
PRETRAINED_DIR = "pretrained-fm"


def _pretrain_fm(fm_dir: Path, model: str, model_options: dict, data_options: dict, data_dir, min_count: int,
                 dataset_options: dict, zoo: bool, config: TrainConfig) -> None:
    """Train the FM of ``pretrained=fm`` in ``fm_dir``, on the same data (data set and options, or files and
    split) and encoder options as the run, with the run's embedding size, seed, task, device and threads, and
    the FM's own shipped configuration for the data set (if ``zoo`` and there is one). An FM that already
    ended there (a resumed or repeated run) is used as it is; one stopped midway is resumed."""
    embed_dim = model_options.get("embed_dim")
    if embed_dim is None:
        embed_dim = inspect.signature(MODELS[model].__init__).parameters["embed_dim"].default
    fm_run = RunDirectory(fm_dir)
    if fm_run.metrics_path.is_file():
        print(f"pre-trained FM: {fm_dir} (already trained)")
        return
    print(f"pre-training an FM in {fm_dir} (pretrained={PRETRAIN_HERE})")
    train("fm", **data_options, data_dir=data_dir, out=fm_dir, resume=fm_run.checkpoint_path.is_file(),
          embed_dim=embed_dim, min_count=min_count, dataset_options=dataset_options, zoo=zoo, seed=config.seed,
          task=config.task, device=config.device, threads=config.threads, progress=config.progress)


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


def _read_found(model_options: dict) -> dict:
    """``model_options`` with a ``found`` run directory (an AIM run whose found set this run retrains, e.g.
    ``fgraph train --model aim --base ipnn --model-option found=runs/aim-fm``) replaced by what that run found
    (its ``search.json``): a model takes the found set, never a path. config.json keeps the path."""
    source = model_options.get("found")
    if not isinstance(source, (str, os.PathLike)):
        return model_options
    return {**model_options, "found": RunDirectory(source).read_search()["found"]}


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
    if run.checkpoint_path.is_file():
        _, encoder = run.read_run(saved)
    else:   # a staged run stopped during a search stage: the stages resume, the retraining has not started
        encoder = run.read_encoder()
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


def _scoring_config(loaded: LoadedRun, device="cpu", batch_size: int | None = None) -> TrainConfig:
    """The options scoring needs (task, monitor, batch sizes), from a run's checkpoint, on ``device``."""
    saved = loaded.checkpoint.get("config") or loaded.config["train"]
    # Only what scoring needs, so that a run saved on a GPU, or by an fgraph with other option rules, still scores.
    train_cfg = {k: saved[k] for k in ("task", "monitor", "batch_size", "eval_batch_size") if k in saved}
    if batch_size is not None:
        train_cfg["eval_batch_size"] = batch_size
    try:
        return TrainConfig(**train_cfg, progress=False, device=device)
    except ConfigError as e:
        raise CheckpointError(f"the training options saved with {RunDirectory(loaded.path).checkpoint_path} are "
                              f"not valid: {e}") from None


def _no_known_data(loaded: LoadedRun, what: str) -> ConfigError:
    return ConfigError(f"run {loaded.path} was trained from Python on data fgraph was not told about (its "
                       f"config.json names no data set and no file), so it has no {what}: give the rows with "
                       f"--data FILE (data= in Python), a CSV or Parquet file with the run's columns "
                       f"{loaded.encoder.schema.names}")


def _file_run_splits(loaded: LoadedRun):
    """The splits of a run on files, cut again as at training (the same files, schema, label, seed)."""
    source = loaded.config["data"]
    schema = RunDirectory(loaded.path).schema_path
    try:
        return file_splits(source["train"], source.get("valid"), source.get("test"), label=source["label"],
                           schema=schema if schema.is_file() else loaded.encoder.schema,
                           task=source.get("task", "binary"), positive=source.get("positive"),
                           seed=source.get("seed", 0), fractions=source.get("fractions"))
    except InputFileNotFoundError as e:
        raise InputFileNotFoundError(f"{e} (run {loaded.path} was trained on it); to score the run on another "
                                     f"file, give --data FILE (data= in Python)") from None


def run_split(run, split: str = "valid", data_dir=None) -> EncodedData:
    """A split of the data a run was trained on, encoded with the run's encoder.

    Args:
        run: a run directory, or a :class:`~fgraph.train.run_dir.LoadedRun` / :class:`Predictor`.
        split: ``"train"``, ``"valid"`` or ``"test"``.
        data_dir: where the built-in data sets are, if not where the training found them.

    Raises:
        ConfigError: an unknown split, or a run trained from Python on data fgraph does not know (give the
            data yourself, e.g. ``evaluate(run, data=FILE)``).
    """
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
    loaded = _loaded(run)
    config, encoder = loaded.config, loaded.encoder
    if config.get("dataset"):
        task = (loaded.checkpoint.get("config") or config["train"]).get("task", "binary")
        data_dir = data_dir if data_dir is not None else config.get("data_dir")
        _, data = encode_dataset(config["dataset"], data_dir, encoder=encoder, task=task,
                                 **config["dataset_options"])
        encoded = data[split]
    elif config.get("data"):
        if data_dir is not None:
            raise ConfigError(f"--data-dir (data_dir=) is where the built-in data sets are; run {loaded.path} was "
                              f"trained on files ({config['data']['train']}): leave it out")
        encoded = encoder.transform(getattr(_file_run_splits(loaded), split))
    else:
        raise _no_known_data(loaded, f"{split} split")
    check_same_space(loaded.model.space, encoded.space, what="saved run")
    return encoded


def _loaded(run) -> LoadedRun:
    if isinstance(run, LoadedRun):
        return run
    if isinstance(run, Predictor):
        return run.run
    return RunDirectory(run).load()


def evaluate(run_dir, split: str | None = None, data_dir=None, data=None) -> dict:
    """Score a saved run (its best weights, on the CPU) on a split of the data it was trained on, or on a
    labelled file or DataFrame ``data``.

    Args:
        run_dir: a run directory (of ``fgraph train``, or of a ``Trainer(..., run_dir=...)`` from Python).
        split: ``"train"``, ``"valid"`` or ``"test"`` (default ``"test"``); not with ``data``. A run on files
            reads its files again (the paths in config.json) and cuts the same split.
        data_dir: where the built-in data sets are, if not where the training found them.
        data: a CSV or Parquet file (or a DataFrame) with the run's field columns and its label column; text
            labels are mapped to 0/1 as in the run's training file.

    Raises:
        ConfigError: ``split`` and ``data`` together, or no ``data`` for a run fgraph does not know the data of.
        ColumnNotFoundError: ``data`` lacks a field or the label (named, with the file).
    """
    if data is not None and split is not None:
        raise ConfigError("give a split (--split) or a file to score (--data), not both: --data scores the whole "
                          "file")
    split = "test" if split is None else split
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
    loaded: LoadedRun = RunDirectory(run_dir).load()
    cfg = _scoring_config(loaded)
    if data is not None:
        encoded, name = _labelled_data(loaded, data), _data_name(data)
    else:
        encoded, name = run_split(loaded, split, data_dir), f"the {split} split"
    trainer = Trainer(loaded.model, cfg, initialize=False)
    if cfg.task == "regression":
        clip = loaded.checkpoint.get("clip_range")
        if clip:
            trainer.clip_range = tuple(clip)
        elif data is None:
            train_y = run_split(loaded, "train", data_dir).y
            trainer.clip_range = (float(train_y.min()), float(train_y.max()))
    return trainer.evaluate(encoded, name=name)


def _data_name(data) -> str:
    return f"file {data}" if isinstance(data, (str, os.PathLike)) else "the data"


def _read_columns(path, needed: list[str], what: str, run_path) -> pd.DataFrame:
    """Columns ``needed`` of a CSV or Parquet file, with an error naming the missing ones and the file."""
    have = file_columns(path)
    missing = [c for c in needed if c not in have]
    if missing:
        raise ColumnNotFoundError(f"{path} has no column(s) {missing}, which {what} of run {run_path} needs; "
                                  f"its columns are {have}")
    return read_file(path, columns=needed)


def _labelled_data(loaded: LoadedRun, data) -> EncodedData:
    """``data`` (a file or a DataFrame with fields and label) encoded with the run's encoder, its label mapped
    to 0/1 the way the run's training file was (for text labels)."""
    schema = loaded.encoder.schema
    label = schema.label
    needed = [*schema.names, label]
    if isinstance(data, (str, os.PathLike)):
        frame = _read_columns(data, needed, "scoring", loaded.path)
    elif isinstance(data, pd.DataFrame):
        missing = [c for c in needed if c not in data.columns]
        if missing:
            raise ColumnNotFoundError(f"the data has no column(s) {missing}, which scoring run {loaded.path} needs; "
                                      f"its columns are {list(data.columns)}")
        frame = data[needed]
    else:
        raise ConfigError(f"data must be a CSV or Parquet file, or a pandas DataFrame, got {type(data).__name__}")
    mapping = (loaded.config.get("data") or {}).get("label_mapping")
    if mapping:
        frame = frame.assign(**{label: _map_labels(frame[label], mapping, label, _data_name(data))})
    return loaded.encoder.transform(frame)


def _map_labels(col: pd.Series, mapping: dict, label: str, where: str) -> np.ndarray:
    """Text (or boolean) labels as the 0/1 of the training file's mapping (its keys, as text)."""
    texts = col.astype(object).map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v))
                                   else str(v).strip())
    lookup = {str(k): float(v) for k, v in mapping.items()}
    known = texts.map(lambda t: t in lookup).to_numpy(dtype=bool)
    if not known.all():
        pos = int(np.flatnonzero(~known)[0])
        raise DataError(f"label column {label!r} of {where} holds {col.iloc[pos]!r} at data row {pos + 1}, which "
                        f"the run's training labels ({', '.join(map(repr, lookup))}) do not have")
    return texts.map(lookup).to_numpy(dtype=np.float32)


# -- prediction ----------------------------------------------------------------------------------------------

class Predictor:
    """A trained run, ready to score new rows: what :func:`load` (``fgraph.load``) returns.

    :meth:`predict` gives one number per row, in the rows' order: the probability of the positive class for
    a binary run, the predicted value for a regression run (clipped to the training labels' range, as
    :func:`evaluate` scores it). The model runs in eval mode, without gradients, batch by batch, on
    ``device`` (the CPU by default). Values a column did not hold at training get the encoder's unknown id
    (see :class:`~fgraph.data.FieldEncoder`'s ``handle_unknown``), as in training.

    Attributes:
        path: the run directory.
        model: the model with the run's best weights, in eval mode.
        encoder: the run's fitted encoder.
        config: the run's ``config.json``.
        checkpoint: the checkpoint's dict.
        task: ``"binary"`` or ``"regression"``.
        output_name: the column ``fgraph predict`` writes: ``"probability"`` (binary) or ``"prediction"``.
    """

    def __init__(self, run: LoadedRun, device="cpu", batch_size: int | None = None):
        self.run = run
        self.path, self.model, self.encoder = run.path, run.model, run.encoder
        self.config, self.checkpoint = run.config, run.checkpoint
        cfg = _scoring_config(run, device=device, batch_size=batch_size)
        self.task = cfg.task
        self._scorer = Trainer(self.model, cfg, initialize=False)
        clip = self.checkpoint.get("clip_range")
        self.clip_range = tuple(clip) if clip else None
        self.model.eval()

    def __repr__(self) -> str:
        return (f"Predictor({str(self.path)!r}, model={self.config.get('model')!r}, task={self.task!r}, "
                f"fields={self.fields})")

    @property
    def fields(self) -> list[str]:
        """The columns a frame to predict must hold."""
        return list(self.encoder.schema.names)

    @property
    def label(self) -> str:
        return self.encoder.schema.label

    @property
    def output_name(self) -> str:
        return "probability" if self.task == "binary" else "prediction"

    def _encode(self, data, where: str) -> EncodedData:
        if isinstance(data, EncodedData):
            return data
        if not isinstance(data, pd.DataFrame):
            raise ConfigError(f"predict needs a pandas DataFrame of raw rows (or an EncodedData), got "
                              f"{type(data).__name__}")
        missing = [c for c in self.fields if c not in data.columns]
        if missing:
            raise ColumnNotFoundError(f"{where} has no column(s) {missing}, which run {self.path} needs (its "
                                      f"fields: {self.fields}); its columns are {list(data.columns)}")
        if len(data) == 0:
            raise DataError(f"{where} has no rows to predict")
        # The label column is not read (it may be absent, or hold text).
        return self.encoder.transform(data[self.fields])

    def predict(self, data, *, where: str = "the data") -> np.ndarray:
        """One number per row of ``data`` (a DataFrame with the run's field columns, other columns ignored;
        or an :class:`~fgraph.data.EncodedData`), in its order: the positive class's probability (binary) or
        the predicted value (regression, clipped to the training labels' range). ``where`` names ``data``
        in errors."""
        out = self._scorer.predict(self._encode(data, where), name=where)
        if self.task == "regression" and self.clip_range is not None:
            out = np.clip(out, *self.clip_range)
        return np.asarray(out, dtype=np.float64)

    def predict_proba(self, data, *, where: str = "the data") -> np.ndarray:
        """``(n, 2)``: the probabilities of the negative and the positive class, per row (binary runs)."""
        if self.task != "binary":
            raise ConfigError(f"predict_proba is for a binary run; run {self.path} is a {self.task} run: use "
                              f"predict()")
        p = self.predict(data, where=where)
        return np.column_stack([1.0 - p, p])


def load(run_dir, *, device="cpu", batch_size: int | None = None) -> Predictor:
    """A trained run, ready to predict: ``fgraph.load("runs/mine").predict(frame)``.

    Works for every run directory: of ``fgraph train`` (a built-in data set or files), and of a
    ``Trainer(..., encoder=..., run_dir=...)`` fitted from Python.

    Args:
        run_dir: the run directory.
        device: where the model runs (default: the CPU).
        batch_size: rows per batch (default: the run's evaluation batch size).

    Raises:
        InputFileNotFoundError, InputFileError, CheckpointError: as :meth:`RunDirectory.load
            <fgraph.train.run_dir.RunDirectory.load>` (not a run, a damaged or foreign file).
    """
    return Predictor(RunDirectory(run_dir).load(), device=device, batch_size=batch_size)


#: output formats of :func:`predict_file`, by suffix
_CSV_OUT = {".csv": ",", ".tsv": "\t"}


def _parse_columns(text, option: str) -> list[str]:
    if text is None:
        return []
    names = [c.strip() for c in text.split(",")] if isinstance(text, str) else [str(c) for c in text]
    if any(not n for n in names):
        raise ConfigError(f"{option} takes comma-separated column names such as id,user; got {text!r}")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{option} names column(s) {dup} twice; keep one")
    return names


def predict_file(run_dir, data, out, *, keep=None, overwrite: bool = False, batch_size: int | None = None) -> dict:
    """Predict every row of a CSV or Parquet file and write the predictions, in the rows' order.

    The output (CSV, TSV or Parquet, by ``out``'s suffix) has the ``keep`` columns, copied from ``data`` as
    they are, then one column: ``probability`` (the positive class's, binary runs) or ``prediction``
    (regression runs, clipped as :func:`evaluate` does). The label column of ``data`` may be absent.

    Args:
        run_dir: the run directory.
        data: the file of rows to predict (it must hold the run's field columns).
        out: the file to write; an existing one is refused unless ``overwrite``; never ``data`` itself.
        keep: column names of ``data`` to copy (a list, or one comma-separated string).
        overwrite: replace ``out`` if it exists.
        batch_size: rows per batch.

    Returns:
        ``{"out": path, "rows": n, "column": name}``.

    Raises:
        ConfigError: an unknown output suffix, ``out`` exists (without ``overwrite``) or is ``data``, a keep
            column named twice or named as the output column.
        ColumnNotFoundError: ``data`` lacks a field column or a keep column (named, with the file).
    """
    data_path, out_path = Path(data).expanduser(), Path(out).expanduser()
    keep = _parse_columns(keep, "--keep (keep=)")
    suffix = out_path.suffix.lower()
    if suffix not in _CSV_OUT and suffix not in PARQUET_SUFFIXES:
        raise ConfigError(f"--out {out_path}: unknown output format {suffix or '(no suffix)'!r}; the predictions "
                          f"are written as {', '.join([*_CSV_OUT, *PARQUET_SUFFIXES])}")
    if out_path.exists() and data_path.exists() and out_path.resolve() == data_path.resolve():
        raise ConfigError(f"--out {out_path} is the input file itself; write the predictions to another file")
    if out_path.is_dir():
        raise ConfigError(f"--out {out_path} is a directory; give a file name such as {out_path / 'predictions.csv'}")
    if out_path.exists() and not overwrite:
        raise ConfigError(f"--out {out_path} already exists; pass --overwrite (overwrite=True) to replace it, or "
                          f"choose another file")
    if not out_path.parent.is_dir():
        raise InputFileNotFoundError(f"cannot write {out_path}: the directory {out_path.parent} does not exist")
    predictor = load(run_dir, batch_size=batch_size)
    if predictor.output_name in keep:
        raise ConfigError(f"--keep names {predictor.output_name!r}, the column the predictions go in; rename that "
                          f"column of {data_path}, or leave it out of --keep")
    have = file_columns(data_path)
    for what, names in (("field column(s)", predictor.fields), ("--keep column(s)", keep)):
        missing = [c for c in names if c not in have]
        if missing:
            needs = f"which run {predictor.path} needs" if what.startswith("field") else "asked for by --keep"
            raise ColumnNotFoundError(f"{data_path} has no {what} {missing}, {needs}; its columns are {have}")
    frame = read_file(data_path, columns=predictor.fields)
    values = predictor.predict(frame, where=str(data_path))
    if keep:
        # Copied as the file has them: CSV cells as text (so "007" or "1.50" stay as written).
        csv_input = data_path.suffix.lower() not in PARQUET_SUFFIXES
        result = read_file(data_path, columns=keep, text=keep if csv_input else ())
    else:
        result = pd.DataFrame(index=pd.RangeIndex(len(values)))
    if len(result) != len(values):   # pragma: no cover - the file changed between the two reads
        raise InputFileError(f"{data_path} changed while it was read ({len(values)} then {len(result)} rows)")
    result[predictor.output_name] = values
    _write_table(result, out_path, overwrite)
    return {"out": out_path, "rows": len(values), "column": predictor.output_name}


def _write_table(frame: pd.DataFrame, path: Path, overwrite: bool) -> None:
    """Write ``frame`` to ``path`` (by suffix) through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False, sep=_CSV_OUT[path.suffix.lower()])
        if path.exists() and not overwrite:   # created meanwhile: never replace what someone else wrote
            raise ConfigError(f"--out {path} appeared while the predictions were computed; nothing was written "
                              f"over it (pass --overwrite to replace it)")
        os.replace(tmp, path)
    except OSError as e:
        raise InputFileError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def write_demo_table(out, *, rows: int = 10000, seed: int = 0, overwrite: bool = False) -> Path:
    """Write :func:`fgraph.data.datasets.demo.demo_table` (a generated click log with categorical, numeric and
    multi-valued columns, label ``click``) to ``out`` (CSV, TSV or Parquet by suffix); returns the path.

    Raises:
        ConfigError: ``out`` exists (and not ``overwrite``), has an unknown suffix, or ``rows`` is bad.
    """
    from .data.datasets.demo import demo_table

    path = Path(out)
    suffix = path.suffix.lower()
    if suffix not in PARQUET_SUFFIXES and suffix not in _CSV_OUT:
        raise ConfigError(f"demo table: {path} has suffix {suffix or '(none)'!r}; use one of "
                          f"{sorted({*_CSV_OUT, *PARQUET_SUFFIXES})}")
    if path.exists() and not overwrite:
        raise ConfigError(f"demo table: {path} exists; nothing was written over it (pass --overwrite to replace it)")
    if not path.parent.is_dir():
        raise ConfigError(f"demo table: the folder {path.parent} of {path} does not exist")
    _write_table(demo_table(rows=as_int("rows", rows), seed=as_int("seed", seed)), path, overwrite)
    return path


# -- explanations --------------------------------------------------------------------------------------------

def explain(run_dir, out, *, rows=None, data=None, level: str | None = None, **options) -> dict:
    """Write explanations of a trained run into folder ``out``: :func:`fgraph.explain.report.explain_run` does
    the work (``options``: its ``layer``, ``attr``, ``formats``, ``heatmaps``, ``overwrite``); this function
    finds the rows.

    ``data`` is a CSV or Parquet file (read with the run's field columns), a DataFrame or an
    :class:`~fgraph.data.EncodedData`. Without it, the run's validation split is used: the built-in data
    set's, encoded with the run's encoder, or the split of the run's files; a run fgraph does not know the
    data of (trained from Python) gets ``data=None`` and :func:`explain_run` says what it needs.
    """
    from .explain.report import explain_run

    if level is not None and level not in ("instance", "dataset"):
        raise ConfigError(f"level must be 'instance' or 'dataset', got {level!r}")
    if options.get("heatmaps", True):
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ConfigError("the heat maps of an explanation need matplotlib, which is not installed: pip "
                              "install 'fgraph[plot]', or leave them out (--no-heatmaps, heatmaps=False)") from None
    if rows is not None:
        rows = _parse_rows(rows)
    if isinstance(data, (str, os.PathLike)):
        loaded = RunDirectory(run_dir).load()
        data = _read_columns(data, list(loaded.encoder.schema.names), "explaining", loaded.path)
    elif data is None:
        loaded = RunDirectory(run_dir).load()
        if loaded.config.get("dataset") or loaded.config.get("data"):
            data = run_split(loaded, "valid")
    return explain_run(run_dir, out, rows=rows, data=data, level=level, **options)


def _parse_rows(rows) -> list[int]:
    """``"0,5"`` or ``[0, 5]`` as row positions (0-based)."""
    items = rows.split(",") if isinstance(rows, str) else list(rows) if isinstance(rows, (list, tuple)) else [rows]
    out = []
    for item in items:
        try:
            value = int(str(item).strip())
        except ValueError:
            raise ConfigError(f"rows must be row positions (0-based integers) such as 0,5; got {rows!r}") from None
        if value < 0:
            raise ConfigError(f"rows are 0-based positions, so none is negative; got {value}")
        out.append(value)
    return out
