"""The few-lines Python API behind ``fgraph train`` and ``fgraph evaluate``."""
from __future__ import annotations

import inspect
import json
import time
from dataclasses import dataclass, fields as dc_fields
from pathlib import Path

from .data.datasets import DATASETS, TRAIN_DEFAULTS, canonical_name, load_dataset
from .data.encoder import FieldEncoder
from .data.space import EncodedData
from .models.base import MODELS, CTRModel, build_model
from .train.checkpoint import check_same_space, load_checkpoint
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


def _dataset_kwargs(dataset: str, options: dict, task: str) -> dict:
    options = dict(options)
    builder = DATASETS[dataset]
    accepted = inspect.signature(builder).parameters
    # The regression protocol of the FM papers uses ±1 labels.
    if task == "regression" and "labels" in accepted and "labels" not in options:
        options["labels"] = "pm1"
    unknown = sorted(k for k in options if k not in accepted)
    if unknown:
        raise ValueError(f"data set {dataset!r} does not take option(s) {unknown}; "
                         f"it takes {sorted(k for k in accepted if k != 'data_dir')}")
    return options


def _check_names(model: str, dataset: str) -> tuple[str, str]:
    model = model.lower()
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; known models: {sorted(MODELS)}")
    return model, canonical_name(dataset)


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
          embed_dim: int | None = None, min_count: int = 1, model_options: dict | None = None,
          dataset_options: dict | None = None, **train_options) -> Run:
    """Train ``model`` on ``dataset`` and score it on the test split.

    Args:
        model: a registered model name (``fgraph.models.MODELS``).
        dataset: a data-set builder name (``fgraph.data.datasets.DATASETS``).
        data_dir: where the data sets are (default: ``../shared/datasets`` or ``$FGRAPH_DATA_DIR``).
        out: the run directory (default: ``runs/<model>-<dataset>-<time>``).
        resume: continue the run in ``out`` from its last checkpoint.
        embed_dim: embedding size, for models that take one.
        min_count: the encoder's ``min_count``.
        model_options: more model hyperparameters.
        dataset_options: options of the data-set builder (e.g. ``{"labels": "pm1"}``).
        **train_options: :class:`~fgraph.train.TrainConfig` fields (``epochs``, ``batch_size``, ``lr``...).
            Options not given fall back to the data set's ``TRAIN_DEFAULTS`` (if any), then to ``TrainConfig``.

    Returns:
        a :class:`Run` with the trained model (best weights), the encoder and the test metrics.
    """
    model, dataset = _check_names(model, dataset)
    unknown = sorted(set(train_options) - TRAIN_OPTIONS)
    if unknown:
        raise ValueError(f"unknown training option(s) {unknown}; known: {sorted(TRAIN_OPTIONS)}")
    model_options = dict(model_options or {})
    if embed_dim is not None:
        model_options["embed_dim"] = embed_dim
    dataset_options = dict(dataset_options or {})
    config = TrainConfig(**{**TRAIN_DEFAULTS.get(dataset, {}), **train_options})
    run_dir = Path(out) if out is not None else Path("runs") / f"{model}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_config = {"model": model, "dataset": dataset, "data_dir": None if data_dir is None else str(data_dir),
                  "min_count": min_count, "model_options": model_options, "dataset_options": dataset_options,
                  "train": config.to_dict()}
    encoder = None
    if resume:
        saved = _read_config(run_dir)
        for key in ("model", "dataset", "min_count", "model_options", "dataset_options"):
            if saved[key] != run_config[key]:
                raise ValueError(f"cannot resume {run_dir}: it was run with {key}={saved[key]!r}, "
                                 f"not {run_config[key]!r}")
        encoder = FieldEncoder.from_state_dict(load_checkpoint(run_dir / "checkpoint.pt")["encoder"])
    seed_everything(config.seed)
    encoder, data = encode_dataset(dataset, data_dir, min_count=min_count, encoder=encoder, task=config.task,
                                   **dataset_options)
    net = build_model(model, encoder.space_, **model_options)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(run_config, indent=1))
    encoder.save(run_dir / "encoder.json")
    trainer = Trainer(net, config, encoder=encoder, run_dir=run_dir, run_info=run_config)
    trainer.fit(data["train"], data["valid"], resume=resume)
    metrics = {"test": trainer.evaluate(data["test"]), "valid": trainer.evaluate(data["valid"]),
               "best_epoch": trainer.best_epoch, "epochs_run": trainer.epoch}
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return Run(run_dir, net, encoder, trainer, metrics, data)


def _read_config(run_dir: Path) -> dict:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not an fgraph run directory (no config.json)")
    return json.loads(path.read_text())


def load_run(run_dir) -> tuple[CTRModel, FieldEncoder, dict]:
    """The trained model (best weights), its encoder and the run's configuration."""
    run_dir = Path(run_dir)
    config = _read_config(run_dir)
    state = load_checkpoint(run_dir / "checkpoint.pt")
    encoder = FieldEncoder.from_state_dict(state["encoder"])
    model = build_model(state["model_name"], encoder.space_, **state["model_hparams"])
    model.load_state_dict(state["best_model_state"] or state["model_state"])
    return model, encoder, config


def evaluate(run_dir, split: str = "test", data_dir=None) -> dict:
    """Score a saved run on one split of the data set it was trained on."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    model, encoder, config = load_run(run_dir)
    train_cfg = {k: v for k, v in config["train"].items() if k in TRAIN_OPTIONS}
    train_cfg["progress"] = False
    data_dir = data_dir if data_dir is not None else config.get("data_dir")
    _, data = encode_dataset(config["dataset"], data_dir, encoder=encoder, task=train_cfg["task"],
                             **config["dataset_options"])
    check_same_space(model.space, data[split].space, what="saved run")
    trainer = Trainer(model, TrainConfig(**train_cfg))
    if train_cfg["task"] == "regression":
        trainer.clip_range = (float(data["train"].y.min()), float(data["train"].y.max()))
    return trainer.evaluate(data[split])
