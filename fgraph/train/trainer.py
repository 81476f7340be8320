"""One training engine for every fgraph model."""
from __future__ import annotations

import copy
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field as dc_field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..data.loader import FieldLoader
from ..data.space import EncodedData
from ..models.base import CTRModel, OptimConfig
from .checkpoint import check_same_space, load_checkpoint, save_checkpoint
from .metrics import GREATER_IS_BETTER, binary_metrics, is_better, regression_metrics

TASKS = ("binary", "regression")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, so that a CPU run repeats exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class TrainConfig:
    """Options of :class:`Trainer`.

    Args:
        epochs: maximum number of epochs.
        batch_size: training batch size.
        eval_batch_size: batch size for evaluation (default: ``batch_size``).
        optimizer: any ``torch.optim`` optimiser name (``"adam"``, ``"adagrad"``...) or class.
        lr: learning rate.
        weight_decay: L2 on the non-embedding weights.
        embedding_weight_decay: L2 on the embedding tables.
        optimizer_options: more keyword arguments for the optimiser.
        task: ``"binary"`` (BCE on logits; AUC, logloss) or ``"regression"`` (squared error; RMSE with
            predictions clipped to the training labels' range, e.g. ±1 labels).
        monitor: validation metric for early stopping and for choosing the best weights
            (default ``"auc"`` for binary, ``"rmse"`` for regression).
        patience: epochs without improvement of ``monitor`` before stopping.
        seed: seeds the shuffling of batches.
        device: torch device.
        threads: ``torch.set_num_threads`` for the run, if given.
        progress: show a tqdm bar per epoch.
        grad_clip: clip the gradient norm to this value, if given.
    """

    epochs: int = 20
    batch_size: int = 4096
    eval_batch_size: int | None = None
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    embedding_weight_decay: float = 0.0
    optimizer_options: dict = dc_field(default_factory=dict)
    task: str = "binary"
    monitor: str | None = None
    patience: int = 2
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    progress: bool = True
    grad_clip: float | None = None

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.monitor is None:
            self.monitor = "auc" if self.task == "binary" else "rmse"
        allowed = ("auc", "logloss") if self.task == "binary" else ("rmse",)
        if self.monitor not in allowed:
            raise ValueError(f"monitor {self.monitor!r} does not fit task {self.task!r}; choose from {allowed}")
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.patience < 0:
            raise ValueError(f"patience must be >= 0, got {self.patience}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")

    def to_dict(self) -> dict:
        d = asdict(self)
        if not isinstance(d["optimizer"], str):
            d["optimizer"] = getattr(d["optimizer"], "__name__", str(d["optimizer"]))
        return d


def check_labels(data: EncodedData, task: str, where: str = "data") -> None:
    """Raise a clear error if the labels of ``data`` do not fit ``task``."""
    label = data.label_name or "label"
    if data.y is None:
        raise ValueError(f"{where} has no label column {label!r}")
    if task == "binary":
        bad = torch.unique(data.y[(data.y != 0) & (data.y != 1)])
        if bad.numel():
            shown = [float(v) for v in bad[:5]]
            hint = " (labels are ±1: use the regression task, or 0/1 labels)" if set(shown) <= {-1.0} else ""
            raise ValueError(f"label column {label!r} of {where} must be 0/1 for a classification run, "
                             f"found values {shown}{hint}")


class Trainer:
    """Fits any :class:`~fgraph.models.CTRModel` on encoded data.

    * loss: BCE on logits (binary) or squared error (regression);
    * optimisers from :meth:`CTRModel.configure_optimizers` (one by default; more for models that search,
      each stepping on training or on validation batches);
    * early stopping on a validation metric with ``patience``; the best weights are restored at the end;
    * with ``run_dir``, a checkpoint after every epoch (model, optimisers, encoder, config, RNG states) and
      ``resume=True`` to continue from it.

    Args:
        model: the model.
        config: a :class:`TrainConfig` (keyword arguments override its fields).
        encoder: the fitted encoder, stored in checkpoints so a run can be scored on raw data later.
        run_dir: where checkpoints and logs go (optional).
        run_info: extra plain data stored in the checkpoint (e.g. how the data set was built).
    """

    def __init__(self, model: CTRModel, config: TrainConfig | None = None, *, encoder=None,
                 run_dir: str | Path | None = None, run_info: dict | None = None, **overrides):
        if not isinstance(model, CTRModel):
            raise TypeError(f"Trainer needs an fgraph CTRModel, got {type(model).__name__}")
        config = config or TrainConfig()
        if overrides:
            config = TrainConfig(**{**asdict(config), **overrides})
        self.model, self.config, self.encoder = model, config, encoder
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.run_info = dict(run_info or {})
        self.device = torch.device(config.device)
        self.model.to(self.device)
        self.history: list[dict] = []
        self.best_epoch, self.best_value, self.best_state = None, None, None
        self.epoch = 0
        self.bad_epochs = 0
        self.clip_range: tuple[float, float] | None = None
        optim_cfg = OptimConfig(config.optimizer, config.lr, config.weight_decay, config.embedding_weight_decay,
                                dict(config.optimizer_options))
        self.optimizers = model.configure_optimizers(optim_cfg)
        self.train_loader: FieldLoader | None = None

    # -- loss ---------------------------------------------------------------------------------------------
    def loss_fn(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.config.task == "binary":
            return F.binary_cross_entropy_with_logits(output, target)
        return F.mse_loss(output, target)

    # -- fitting ------------------------------------------------------------------------------------------
    def fit(self, train: EncodedData, valid: EncodedData | None = None, resume: bool = False) -> "Trainer":
        """Train on ``train``, early-stopping on ``valid`` (when given). Returns ``self``."""
        cfg = self.config
        check_same_space(self.model.space, train.space, what="model")
        check_labels(train, cfg.task, "the training data")
        if valid is not None:
            check_same_space(self.model.space, valid.space, what="model")
            check_labels(valid, cfg.task, "the validation data")
        if cfg.threads:
            torch.set_num_threads(int(cfg.threads))
        if cfg.task == "regression":
            self.clip_range = (float(train.y.min()), float(train.y.max()))
        self.train_loader = FieldLoader(train, cfg.batch_size, shuffle=True, seed=cfg.seed, device=self.device)
        needs_valid_batches = any(spec.data == "valid" for spec in self.optimizers)
        if needs_valid_batches and valid is None:
            raise ValueError(f"{type(self.model).__name__} steps some parameters on validation batches; "
                             f"pass validation data to fit()")
        valid_batches = self._cycle(FieldLoader(valid, cfg.batch_size, shuffle=True, seed=cfg.seed + 1,
                                                device=self.device)) if needs_valid_batches else None
        if resume:
            self._load_last_checkpoint()
        while self.epoch < cfg.epochs and not self._should_stop(valid):
            self._train_epoch(valid_batches)
            record = {"epoch": self.epoch, **self._last_train_stats}
            if valid is not None:
                record.update({f"valid_{k}": v for k, v in self.evaluate(valid).items()})
                self._track_best(record[f"valid_{cfg.monitor}"])
            self.history.append(record)
            self._log(record)
            self._write_checkpoint()
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return self

    def _should_stop(self, valid) -> bool:
        return valid is not None and self.best_epoch is not None and self.bad_epochs >= self.config.patience

    @staticmethod
    def _cycle(loader: FieldLoader):
        while True:
            yield from loader

    def _train_epoch(self, valid_batches) -> None:
        cfg = self.config
        self.epoch += 1
        self.model.train()
        self.model.on_epoch_start(self.epoch)
        train_specs = [s for s in self.optimizers if s.data == "train"]
        valid_specs = [s for s in self.optimizers if s.data == "valid"]
        total, rows, started = 0.0, 0, time.perf_counter()
        bar = tqdm(self.train_loader, desc=f"epoch {self.epoch}", leave=False, disable=not cfg.progress,
                   file=sys.stderr)
        for step, batch in enumerate(bar):
            for spec in self.optimizers:
                spec.optimizer.zero_grad(set_to_none=True)
            loss = self.model.loss(batch, self.loss_fn)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            for spec in train_specs:
                spec.optimizer.step()
            self.model.on_train_step_end(step)
            for spec in valid_specs:
                spec.optimizer.zero_grad(set_to_none=True)
                self.model.loss(next(valid_batches), self.loss_fn).backward()
                spec.optimizer.step()
            n = batch.num_rows
            total += float(loss.detach()) * n
            rows += n
            if step % 20 == 0:
                bar.set_postfix(loss=f"{total / rows:.4f}")
        elapsed = time.perf_counter() - started
        self._last_train_stats = {"train_loss": total / rows, "samples_per_s": rows / elapsed,
                                  "epoch_seconds": elapsed}

    def _track_best(self, value: float) -> None:
        metric = self.config.monitor
        if is_better(metric, value, self.best_value):
            self.best_value, self.best_epoch, self.bad_epochs = value, self.epoch, 0
            self.best_state = copy.deepcopy(self.model.state_dict())
        else:
            self.bad_epochs += 1

    def _log(self, record: dict) -> None:
        parts = [f"epoch {record['epoch']:3d}", f"loss {record['train_loss']:.5f}"]
        parts += [f"{k} {v:.5f}" for k, v in record.items() if k.startswith("valid_")]
        parts.append(f"{record['samples_per_s']:,.0f} samples/s")
        if self.best_epoch == record["epoch"]:
            parts.append("*")
        line = " | ".join(parts)
        tqdm.write(line, file=sys.stdout)
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            with open(self.run_dir / "log.txt", "a") as fh:
                fh.write(line + "\n")

    # -- evaluation ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, data: EncodedData) -> np.ndarray:
        """Probabilities (binary) or predicted values (regression, unclipped), one per row."""
        check_same_space(self.model.space, data.space, what="model")
        self.model.eval()
        size = self.config.eval_batch_size or self.config.batch_size
        outs = [self.model(batch).float().cpu() for batch in FieldLoader(data, size, device=self.device)]
        out = torch.cat(outs)
        return (torch.sigmoid(out) if self.config.task == "binary" else out).numpy()

    def evaluate(self, data: EncodedData) -> dict[str, float]:
        """Metrics of the model on ``data``: AUC and logloss, or RMSE."""
        check_labels(data, self.config.task, "the evaluation data")
        pred = self.predict(data)
        y = data.y.numpy()
        if self.config.task == "binary":
            return binary_metrics(y, pred)
        clip = self.clip_range or (float(y.min()), float(y.max()))
        return regression_metrics(y, pred, clip)

    # -- checkpoints --------------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.run_dir is None else self.run_dir / "checkpoint.pt"

    def state_dict(self) -> dict:
        return {
            "model_name": getattr(self.model, "model_name", type(self.model).__name__),
            "model_hparams": _plain(self.model.hparams),
            "model_state": self.model.state_dict(),
            "best_model_state": self.best_state,
            "optimizers": [spec.optimizer.state_dict() for spec in self.optimizers],
            "space": self.model.space.to_dict(),
            "encoder": None if self.encoder is None else self.encoder.state_dict(),
            "config": _plain(self.config.to_dict()),
            "run_info": _plain(self.run_info),
            "epoch": self.epoch,
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "bad_epochs": self.bad_epochs,
            "history": self.history,
            "clip_range": None if self.clip_range is None else list(self.clip_range),
            "rng_torch": torch.get_rng_state(),
            "rng_loader": None if self.train_loader is None else self.train_loader.generator.get_state(),
        }

    def _write_checkpoint(self) -> None:
        if self.run_dir is None:
            return
        save_checkpoint(self.state_dict(), self.checkpoint_path)
        (self.run_dir / "history.json").write_text(json.dumps(self.history, indent=1))

    def load_state_dict(self, state: dict) -> None:
        check_same_space(state["space"], self.model.space)
        self.model.load_state_dict(state["model_state"])
        if len(state["optimizers"]) != len(self.optimizers):
            raise ValueError("the checkpoint has a different number of optimisers than this model")
        for spec, opt_state in zip(self.optimizers, state["optimizers"]):
            spec.optimizer.load_state_dict(opt_state)
        self.best_state = state["best_model_state"]
        self.epoch, self.best_epoch = state["epoch"], state["best_epoch"]
        self.best_value, self.bad_epochs = state["best_value"], state["bad_epochs"]
        self.history = list(state["history"])
        self.clip_range = None if state["clip_range"] is None else tuple(state["clip_range"])
        torch.set_rng_state(state["rng_torch"])
        if state["rng_loader"] is not None and self.train_loader is not None:
            self.train_loader.generator.set_state(state["rng_loader"])

    def _load_last_checkpoint(self) -> None:
        if self.checkpoint_path is None or not self.checkpoint_path.exists():
            raise FileNotFoundError(f"cannot resume: no checkpoint in {self.run_dir}")
        self.load_state_dict(load_checkpoint(self.checkpoint_path, map_location=self.device))


def _plain(obj):
    """Plain Python data (what ``torch.load(weights_only=True)`` and JSON accept)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


__all__ = ["Trainer", "TrainConfig", "seed_everything", "check_labels", "GREATER_IS_BETTER"]
