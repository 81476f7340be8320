"""One training engine for every fgraph model."""
from __future__ import annotations

import contextlib
import copy
import inspect
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field as dc_field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..data.loader import FieldLoader
from ..data.memory import release_freed_memory
from ..data.space import EncodedData
from ..models.base import CTRModel
from ..nn.init import DENSE_INITS, EMBEDDING_INITS, init_dense, init_embeddings
from .._validate import OptionErrors, as_bool, as_float, as_int, as_mapping, as_str
from ..errors import CheckpointError, ConfigError, DataError, InputFileNotFoundError, TrainingDivergedError
from . import distributed
from .checkpoint import check_encoder_fingerprint, check_same_space, check_weights, load_weights, to_plain
from .metrics import GREATER_IS_BETTER, binary_metrics, is_better, regression_metrics
from .numerics import flush_denormals
from .optim import OptimConfig, build_optimizers, resolve_optimizer
from .protocols import PROTOCOLS
from .regularizers import FORMS as REGULARIZER_FORMS, Regularizer
from .run_dir import RESUME_FIXED_OPTIONS, RunDirectory, fixed_option_differences

TASKS = ("binary", "regression")
#: the values of ``TrainConfig.lr_schedule`` (besides None)
LR_SCHEDULES = ("plateau",)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, so that a CPU run repeats exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _check_device(device) -> str:
    """The device option as a string torch accepts and this torch build can use."""
    text = str(device) if isinstance(device, torch.device) else device
    if not isinstance(text, str):
        raise ConfigError(f"training option 'device' must be a device name such as 'cpu' or 'cuda:0', got {device!r}")
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise ConfigError(f"training option 'device' is {text!r}, which torch does not know; "
                          f"use 'cpu', 'cuda', 'cuda:N' or 'mps'") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}, no GPU visible"
            raise ConfigError(f"training option 'device' is {text!r}, but this torch ({torch.__version__}, {build}) "
                              f"cannot use CUDA; use --device cpu, or install a CUDA build of torch")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"training option 'device' is {text!r}, but only {torch.cuda.device_count()} "
                              f"CUDA device(s) are visible")
    elif dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ConfigError(f"training option 'device' is {text!r}, but MPS is not available here; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"training option 'device' is {text!r}; fgraph runs on 'cpu', 'cuda' or 'mps'")
    return text


def _check_optimizer_options(opt_cls, options: dict) -> None:
    """Refuse optimiser options the optimiser does not take (torch would raise a TypeError mid-set-up)."""
    accepted = set(inspect.signature(opt_cls.__init__).parameters) - {"self", "params", "lr"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ConfigError(f"training option 'optimizer_options' has {unknown}, which {opt_cls.__name__} does not "
                          f"take; it takes {sorted(accepted)}")


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
        grad_clip: clip the total norm of the gradients that the training optimisers step (the penalties'
            included) to this value, if given.
        divergence_factor: stop with :class:`~fgraph.errors.TrainingDivergedError` when an epoch's running mean
            training loss exceeds this factor times the loss of the run's first batch (``None``: no such check;
            a NaN or infinite loss always stops the run).
        lr_schedule: ``None`` (a constant learning rate) or ``"plateau"``: after every validated epoch whose
            ``monitor`` does not improve, the learning rate of every parameter group of every optimiser that
            steps on training batches is multiplied by ``lr_factor``, down to ``min_lr`` (FuxiCTR's
            reduce-on-plateau; the same epochs count towards ``patience``). Needs validation data.
        lr_patience: how many validated epochs in a row without improvement ``"plateau"`` lets pass before it
            reduces (torch's ``ReduceLROnPlateau(patience=...)``): 0, the default and FuxiCTR's, reduces on every
            such epoch; 1 on the second in a row, and so on. The count restarts after each reduction and at each
            improvement. ``patience`` (the stop) keeps counting every epoch without improvement, so a run can
            only see a reduction before it stops if ``patience > lr_patience + 1``.
        lr_factor: the factor of ``"plateau"``, ``0 < lr_factor < 1``.
        min_lr: the floor of ``"plateau"`` (a group already at or below it is left as it is).
        embedding_init: ``None`` (the model's own initialisation), ``"normal"`` (std ``embedding_init_std``),
            ``"xavier_uniform"`` or ``"xavier_normal"``: re-draws the embedding tables once, when the Trainer
            is built (see :func:`fgraph.nn.init.init_embeddings`).
        embedding_init_std: the standard deviation of ``embedding_init="normal"``.
        dense_init: ``None`` (the model's own) or ``"xavier_normal"`` / ``"xavier_uniform"``: re-draws every
            linear map once, biases zero (see :func:`fgraph.nn.init.init_dense` for which tensors).
        embedding_regularizer: λ of the penalty λ/2·‖W‖² on the embedding tables, added to the training
            loss (see ``regularizer_form``).
        net_regularizer: λ of the penalty λ/2·‖θ‖² on every other parameter the training optimisers step,
            biases included.
        regularizer_form: ``"table"`` (the embedding penalty over whole tables, FuxiCTR's form) or
            ``"rows"`` (over the distinct rows each batch looks up).
        protocol: the name of the protocol (:data:`fgraph.train.protocols.PROTOCOLS`) whose values were
            filled in by :func:`~fgraph.train.protocols.apply_protocol`; a record only, it sets nothing.
        flush_denormal: flush subnormal floats to zero during :meth:`Trainer.fit` and :meth:`Trainer.predict`
            (``torch.set_flush_denormal``, restored after). Weights that only a weight decay moves decay into
            the subnormals under Adagrad and make every step slower (2.7x on IFM's regression protocol; see
            :mod:`fgraph.train.numerics`); flushing changes values below 1.2e-38 only.
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
    divergence_factor: float | None = 1000.0
    lr_schedule: str | None = None
    lr_factor: float = 0.1
    lr_patience: int = 0
    min_lr: float = 1e-6
    embedding_init: str | None = None
    embedding_init_std: float = 1e-4
    dense_init: str | None = None
    embedding_regularizer: float = 0.0
    net_regularizer: float = 0.0
    regularizer_form: str = "table"
    protocol: str | None = None
    flush_denormal: bool = True

    def __post_init__(self):
        # Every option is checked and coerced here, once, whatever the entry point (CLI, config file, Python):
        # a YAML ``lr: 1e-3`` (a string in YAML 1.1) becomes 0.001, ``epochs: 2.5`` and ``progress: "maybe"``
        # are refused rather than truncated or taken as true.
        w, errors = "training", OptionErrors()

        def check(attr, fn, *args, **kw):
            with errors:
                setattr(self, attr, fn(attr, getattr(self, attr), *args, where=w, **kw))

        check("task", as_str, choices=TASKS)
        check("epochs", as_int, minimum=1)
        check("batch_size", as_int, minimum=1)
        check("eval_batch_size", as_int, minimum=1, allow_none=True)
        with errors:
            if isinstance(self.optimizer, str):
                opt_cls = resolve_optimizer(self.optimizer)
            elif isinstance(self.optimizer, type) and issubclass(self.optimizer, torch.optim.Optimizer):
                opt_cls = self.optimizer
            else:
                raise ConfigError(f"training option 'optimizer' must be a torch.optim name such as 'adam', "
                                  f"got {self.optimizer!r}")
            check("optimizer_options", as_mapping)
            _check_optimizer_options(opt_cls, self.optimizer_options)
        check("lr", as_float, minimum=0.0, strict_min=True)
        check("weight_decay", as_float, minimum=0.0)
        check("embedding_weight_decay", as_float, minimum=0.0)
        check("patience", as_int, minimum=0)
        check("seed", as_int, minimum=0, maximum=2 ** 63 - 1)
        with errors:
            self.device = _check_device(self.device)
        check("threads", as_int, minimum=1, allow_none=True)
        check("progress", as_bool)
        # grad_clip 0 or None: no clipping; a negative norm would flip the gradient into ascent.
        check("grad_clip", as_float, minimum=0.0, allow_none=True)
        with errors:
            if self.monitor is None and self.task in TASKS:
                self.monitor = "auc" if self.task == "binary" else "rmse"
            allowed = ("auc", "logloss") if self.task == "binary" else ("rmse",)
            if self.monitor not in allowed:
                raise ConfigError(f"training option 'monitor' is {self.monitor!r}, which does not fit task "
                                  f"{self.task!r}; choose from {allowed}")
        # A factor <= 1 would stop a run whose loss merely wobbles above its first batch's.
        check("divergence_factor", as_float, minimum=1.0, strict_min=True, allow_none=True)
        check("lr_schedule", as_str, choices=LR_SCHEDULES, allow_none=True)
        check("lr_factor", _as_open_unit)
        check("lr_patience", as_int, minimum=0)
        check("min_lr", as_float, minimum=0.0)
        check("embedding_init", as_str, choices=EMBEDDING_INITS, allow_none=True)
        check("embedding_init_std", as_float, minimum=0.0, strict_min=True)
        check("dense_init", as_str, choices=DENSE_INITS, allow_none=True)
        check("embedding_regularizer", as_float, minimum=0.0)
        check("net_regularizer", as_float, minimum=0.0)
        check("regularizer_form", as_str, choices=REGULARIZER_FORMS)
        check("protocol", as_str, choices=sorted(PROTOCOLS), allow_none=True)
        check("flush_denormal", as_bool)
        errors.raise_if_any()

    def to_dict(self) -> dict:
        d = asdict(self)
        if not isinstance(d["optimizer"], str):
            d["optimizer"] = getattr(d["optimizer"], "__name__", str(d["optimizer"]))
        return d


def _as_open_unit(name, value, *, where=None) -> float:
    """A float strictly between 0 and 1 (``lr_factor``: 1 would never reduce, 0 would stop learning)."""
    try:
        out = as_float(name, value, minimum=0.0, strict_min=True, where=where)
    except ConfigError:
        out = None
    if out is None or out >= 1.0:
        raise ConfigError(f"{where} option {name!r} must be a finite number > 0 and < 1, got {value!r}")
    return out


def check_labels(data: EncodedData, task: str, where: str = "data") -> None:
    """Raise a clear :class:`~fgraph.errors.DataError` if the labels of ``data`` do not fit ``task``: not 0/1
    for a classification run, NaN or infinite for a regression run. The message names the row positions."""
    label = data.label_name or "label"
    if data.y is None:
        raise DataError(f"{where} has no label column {label!r}")
    y = data.y
    if task == "binary":
        bad_mask = (y != 0) & (y != 1)
        if bool(bad_mask.any()):
            bad = y[bad_mask]
            shown = [float(v) for v in torch.unique(bad[~torch.isnan(bad)])[:5]]
            if bool(torch.isnan(bad).any()):
                shown.append(float("nan"))
            rows = torch.nonzero(bad_mask).flatten()[:5].tolist()
            hint = " (labels are ±1: use the regression task, or 0/1 labels)" if set(shown) <= {-1.0} else ""
            raise DataError(f"label column {label!r} of {where} must be 0/1 for a classification run, "
                            f"found values {shown} at row positions {rows} (0-based){hint}")
    else:
        bad_mask = ~torch.isfinite(y)
        if bool(bad_mask.any()):
            rows = torch.nonzero(bad_mask).flatten()[:5].tolist()
            raise DataError(f"label column {label!r} of {where} must hold finite numbers for a regression run, "
                            f"found {[float(y[r]) for r in rows]} at row positions {rows} (0-based)")


class _BatchStream:
    """An endless stream of shuffled batches (pass after pass over a loader) whose position is saved exactly.

    Bilevel models step some parameters on a validation batch after every training step, so the validation
    batches run on across epochs. To resume such a run exactly, a checkpoint stores the loader's random state
    at the start of the current pass and how many batches of that pass were taken; restoring replays the
    pass's permutation and skips those batches.
    """

    def __init__(self, loader: FieldLoader):
        self.loader = loader
        self._iter = None
        self._pass_state: torch.Tensor | None = None
        self._position = 0

    def _start_pass(self) -> None:
        # FieldLoader draws its permutation on the first batch of a pass, from this state.
        self._pass_state = self.loader.generator.get_state()
        self._iter = iter(self.loader)
        self._position = 0

    def __next__(self):
        if self._iter is None:
            self._start_pass()
        try:
            batch = next(self._iter)
        except StopIteration:
            self._start_pass()
            batch = next(self._iter)
        self._position += 1
        return batch

    def state_dict(self) -> dict:
        return {"pass_state": self._pass_state, "position": self._position,
                "generator": self.loader.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        if state.get("pass_state") is None:   # saved before the first batch was taken
            self.loader.generator.set_state(state["generator"])
            self._iter, self._pass_state, self._position = None, None, 0
            return
        self.loader.generator.set_state(state["pass_state"])
        self._iter, self._pass_state = iter(self.loader), state["pass_state"]
        for _ in range(int(state["position"])):
            next(self._iter, None)
        self._position = int(state["position"])


class Trainer:
    """Fits any :class:`~fgraph.models.CTRModel` on encoded data.

    * loss: BCE on logits (binary) or squared error (regression);
    * optimisers from :meth:`CTRModel.configure_optimizers` (one by default; more for models that search,
      each stepping on training or on validation batches);
    * early stopping on a validation metric with ``patience``; the best weights are restored at the end;
    * optionally (see :class:`TrainConfig`): the reduce-on-plateau learning-rate schedule, gradient clipping,
      embedding and dense initialisations drawn at construction, and the λ penalties ``embedding_regularizer``
      / ``net_regularizer`` added to the backpropagated loss (the logged ``train_loss`` leaves them out; an
      epoch's mean penalty is recorded as ``train_penalty``); each epoch's record holds the ``lr`` it ran at;
    * a NaN or infinite loss, or one that blows up (see ``TrainConfig.divergence_factor``), stops the run with
      :class:`~fgraph.errors.TrainingDivergedError`; the checkpoint of the last completed epoch is kept;
    * with ``run_dir``, a checkpoint after every epoch (model, optimisers, encoder and its fingerprint, config,
      the random states of torch, NumPy, Python and both batch streams) and ``resume=True`` to continue from
      it exactly, as if the run had not stopped. A directory the Trainer claims itself (a path, not a locked
      :class:`~fgraph.train.run_dir.RunDirectory`) also gets ``config.json``, ``encoder.json`` and
      ``schema.yaml`` when :meth:`fit` starts, so that ``fgraph evaluate --data``, ``fgraph predict`` and
      ``fgraph explain`` read it like a run of ``fgraph train``.

    The run directory is locked while :meth:`fit` writes it, and :meth:`fit` refuses a directory that already
    holds a run (any of :data:`~fgraph.train.run_dir.RUN_FILES`) unless it resumes it (``resume=True``) or
    replaces it (``overwrite=True``); see :mod:`fgraph.train.run_dir`.

    Args:
        model: the model.
        config: a :class:`TrainConfig` (keyword arguments override its fields).
        encoder: the fitted encoder, stored in checkpoints so a run can be scored on raw data later.
        run_dir: where checkpoints and logs go (optional): a path, or a locked
            :class:`~fgraph.train.run_dir.RunDirectory` whose owner has already checked it.
        run_info: extra plain data stored in the checkpoint (e.g. how the data set was built).
        initialize: apply ``config.embedding_init`` / ``config.dense_init`` to the model (the default). Pass
            False for a model whose weights must stay as they are (one that is only scored, say); a resume
            loads its checkpoint over these draws anyway. The modules a model marked with
            :meth:`~fgraph.models.CTRModel.keep_weights` (a pre-trained AFM's embeddings, an AIM stage
            warm-started from the previous one) are never re-drawn.

    The initialisations of ``embedding_init`` and ``dense_init`` are drawn here, once, from torch's global
    random number generator, before the model moves to its device and before the optimisers are built (seed
    it first, as :func:`fgraph.api.train` does with :func:`seed_everything`).
    """

    def __init__(self, model: CTRModel, config: TrainConfig | None = None, *, encoder=None,
                 run_dir: str | Path | RunDirectory | None = None, run_info: dict | None = None,
                 initialize: bool = True, **overrides):
        if not isinstance(model, CTRModel):
            raise TypeError(f"Trainer needs an fgraph CTRModel, got {type(model).__name__}")
        config = config or TrainConfig()
        if overrides:
            config = TrainConfig(**{**asdict(config), **overrides})
        if encoder is not None and getattr(encoder, "space_", None) is not None:
            check_same_space(encoder.space_, model.space, what="encoder", error=DataError)
        self.model, self.config, self.encoder = model, config, encoder
        if run_dir is None or isinstance(run_dir, RunDirectory):
            self._run_directory = run_dir
        else:
            self._run_directory = RunDirectory(run_dir)
        self.run_dir = None if self._run_directory is None else self._run_directory.path
        self.run_info = dict(run_info or {})
        #: the process group's size and this process's rank (1 and 0 without torchrun; see fgraph.train.distributed)
        self.world_size, self.rank = distributed.world_size(), distributed.rank()
        self.device = distributed.device_for(config.device)
        if self.world_size > 1:
            distributed.check_model(model, self.device)
        # Weights the model holds on purpose (pre-trained, warm-started: CTRModel.keep_weights) are not re-drawn.
        kept = model.kept_modules()
        if initialize and config.embedding_init is not None:
            init_embeddings(self.model, config.embedding_init, config.embedding_init_std, skip=kept)
        if initialize and config.dense_init is not None:
            init_dense(self.model, config.dense_init, skip=kept)
        self.model.to(self.device)
        self.history: list[dict] = []
        self.best_epoch, self.best_value, self.best_state = None, None, None
        self.epoch = 0
        self.bad_epochs = 0
        self.lr_bad_epochs = 0      # epochs without improvement since the last improvement or lr reduction
        self.clip_range: tuple[float, float] | None = None
        #: the loss of the run's first training batch, the yardstick of ``divergence_factor``
        self.divergence_reference: float | None = None
        self.saved_epoch: int | None = None   # the epoch of the checkpoint on disk, written or resumed by us
        optim_cfg = OptimConfig(config.optimizer, config.lr, config.weight_decay, config.embedding_weight_decay,
                                dict(config.optimizer_options))
        self.optimizers = build_optimizers(model, optim_cfg)
        #: the parameters the training optimisers step, each once: what ``grad_clip`` clips and the penalties cover
        self.trained_parameters: list[torch.nn.Parameter] = []
        seen = set()
        for spec in self.optimizers:
            if spec.data == "train":
                for group in spec.optimizer.param_groups:
                    for p in group["params"]:
                        if id(p) not in seen:
                            seen.add(id(p))
                            self.trained_parameters.append(p)
        self.regularizer = Regularizer(model, self.trained_parameters, config.embedding_regularizer,
                                       config.net_regularizer, config.regularizer_form)
        self.train_loader: FieldLoader | None = None
        self.valid_stream: _BatchStream | None = None
        #: the DistributedDataParallel wrapper of the model's loss under torchrun (built by fit), else None
        self._ddp = None

    # -- loss ---------------------------------------------------------------------------------------------
    def loss_fn(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.config.task == "binary":
            return F.binary_cross_entropy_with_logits(output, target)
        return F.mse_loss(output, target)

    def penalty(self, batch=None) -> torch.Tensor | None:
        """The regularisation penalty of a training step on ``batch`` (``embedding_regularizer`` and
        ``net_regularizer``), which :meth:`fit` adds to the loss it backpropagates; ``None`` when both λ are 0.
        The logged ``train_loss`` leaves it out."""
        return self.regularizer(batch)

    # -- learning rate ------------------------------------------------------------------------------------
    def learning_rates(self) -> list[list[float]]:
        """The current learning rate of every parameter group, per optimiser (in :attr:`optimizers` order)."""
        return [[float(g["lr"]) for g in spec.optimizer.param_groups] for spec in self.optimizers]

    @property
    def lr(self) -> float:
        """The learning rate of the first parameter group of the first training optimiser."""
        for spec in self.optimizers:
            if spec.data == "train":
                return float(spec.optimizer.param_groups[0]["lr"])
        return float(self.optimizers[0].optimizer.param_groups[0]["lr"])

    def _reduce_lr(self) -> None:
        """Multiply every training optimiser's learning rates by ``lr_factor``, down to ``min_lr``. Optimisers
        that step on validation batches (FIVES's architecture search) keep theirs."""
        factor, floor = self.config.lr_factor, self.config.min_lr
        for spec in self.optimizers:
            if spec.data != "train":
                continue
            for group in spec.optimizer.param_groups:
                if group["lr"] > floor:
                    group["lr"] = max(group["lr"] * factor, floor)

    # -- fitting ------------------------------------------------------------------------------------------
    def fit(self, train: EncodedData, valid: EncodedData | None = None, resume: bool = False,
            overwrite: bool = False, callbacks: Sequence[Callable[["Trainer", dict], None]] = ()) -> "Trainer":
        """Train on ``train``, early-stopping on ``valid`` (when given). Returns ``self``.

        Args:
            train, valid: the encoded training and validation data.
            resume: continue the run in ``run_dir`` from its checkpoint.
            overwrite: replace the run in ``run_dir`` (its files are removed first).
            callbacks: called as ``callback(trainer, record)`` after every epoch, once its checkpoint is
                written (``record`` is the epoch's history entry). An exception a callback raises ends
                :meth:`fit` and propagates (a tuner prunes a trial this way); the checkpoint stays.

        Raises:
            RunDirectoryError: ``run_dir`` holds another run (and neither ``resume`` nor ``overwrite``), is in
                use by another training, or is a file.
            CheckpointError: the checkpoint to resume from is unreadable or does not fit this model, encoder
                or configuration.
            TrainingDivergedError: the loss became non-finite or blew up. The checkpoint of the last completed
                epoch stays on disk; the model in memory is left with the best weights so far (if any epoch
                was validated), and :attr:`epoch` and :attr:`history` end with the last completed epoch.
        """
        cfg = self.config
        check_same_space(self.model.space, train.space, what="model", error=DataError)
        check_labels(train, cfg.task, "the training data")
        if valid is not None:
            check_same_space(self.model.space, valid.space, what="model", error=DataError)
            check_labels(valid, cfg.task, "the validation data")
        if cfg.threads:
            torch.set_num_threads(int(cfg.threads))
        needs_valid_batches = any(spec.data == "valid" for spec in self.optimizers)
        if cfg.lr_schedule is not None and valid is None:
            raise ConfigError(f"training option 'lr_schedule' is {cfg.lr_schedule!r}, which reduces the learning "
                              f"rate when the validation {cfg.monitor} stops improving; pass validation data to "
                              f"fit(), or set lr_schedule=None")
        if needs_valid_batches and valid is None:
            raise ConfigError(f"{type(self.model).__name__} steps some parameters on validation batches; "
                              f"pass validation data to fit()")
        if cfg.task == "regression":
            self.clip_range = (float(train.y.min()), float(train.y.max()))
        # Under torchrun every rank draws the same permutation and reads its shard of each global batch.
        loader = FieldLoader if self.world_size == 1 else distributed.ShardedLoader
        self.train_loader = loader(train, cfg.batch_size, shuffle=True, seed=cfg.seed, device=self.device,
                                   drop_last=self._drop_last_batch(train, "training"))
        self.valid_stream = _BatchStream(loader(valid, cfg.batch_size, shuffle=True, seed=cfg.seed + 1,
                                                device=self.device, drop_last=self._drop_last_batch(valid, "validation"))
                                         ) if needs_valid_batches else None
        if self.world_size > 1 and self._ddp is None:
            self._ddp = distributed.wrap_model(self.model, self.loss_fn, self.device)
        with self._claim_run_dir(resume, overwrite), flush_denormals(cfg.flush_denormal):
            if resume:
                self._load_last_checkpoint()
            while self.epoch < cfg.epochs and not self._should_stop(valid):
                lr = self.lr
                self._train_epoch()
                release_freed_memory()
                record = {"epoch": self.epoch, **self._last_train_stats, "lr": lr}
                if valid is not None:
                    try:
                        scores = self.evaluate(valid, name="the validation data")
                    except TrainingDivergedError as e:
                        self._diverged(f"after its last step: {e}")
                    record.update({f"valid_{k}": v for k, v in scores.items()})
                    self._track_best(record[f"valid_{cfg.monitor}"])
                self.history.append(record)
                self._write_checkpoint()
                self._log(record)
                for callback in callbacks:
                    callback(self, record)
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return self

    @contextlib.contextmanager
    def _claim_run_dir(self, resume: bool, overwrite: bool):
        """Hold the run directory's lock for one :meth:`fit` (unless the caller already holds it)."""
        run = self._run_directory
        if run is None:
            if resume:
                raise InputFileNotFoundError("cannot resume: no checkpoint, since this Trainer has no run_dir; "
                                             "pass run_dir= the directory of the run to continue")
            yield
            return
        if run.locked:   # fgraph.api.train holds it and has checked what may be written there
            yield
            return
        with run:
            # A Trainer that wrote this directory itself may continue there (fit called again).
            if resume or self.saved_epoch is None:
                run.prepare(resume=resume, overwrite=overwrite)
                if overwrite:
                    run.clear()
                if distributed.is_writer():   # under torchrun only rank 0 touches the directory
                    self._write_run_files(run)
            yield

    def _write_run_files(self, run: RunDirectory) -> None:
        """What makes a directory this Trainer owns (a run started from Python) a complete run, one that
        :meth:`RunDirectory.load` (so ``fgraph evaluate``, ``predict`` and ``explain``) reads back:
        ``config.json`` (the model's name and hyperparameters, the training options; no data set, since the
        Trainer is given encoded data), and with an encoder ``encoder.json`` and ``schema.yaml``. Files a run
        being resumed already has are kept as they are. :attr:`run_info` gets the same entries, so that the
        checkpoints agree with config.json."""
        info = {"model": getattr(self.model, "model_name", type(self.model).__name__), "dataset": None,
                "data": None, "data_dir": None,
                "min_count": None if self.encoder is None else getattr(self.encoder, "min_count", None),
                "model_options": to_plain(self.model.hparams), "dataset_options": {},
                "train": to_plain(self.config.to_dict()), "zoo": None}
        if run.config_path.is_file():
            # A run being resumed (perhaps one that `fgraph train` started): its checkpoints go on agreeing
            # with the config.json it has.
            info.update({k: v for k, v in run.read_config().items() if k != "train"})
            self.run_info = {**info, **self.run_info}
        else:
            self.run_info = {**info, **self.run_info}
            run.write_config(to_plain(self.run_info))
        if self.encoder is not None:
            if not run.encoder_path.is_file() and getattr(self.encoder, "space_", None) is not None:
                run.write_encoder(self.encoder)
            if not run.schema_path.is_file():
                run.write_schema(self.encoder.schema)

    def _should_stop(self, valid) -> bool:
        return valid is not None and self.best_epoch is not None and self.bad_epochs >= self.config.patience

    def _diverged(self, what: str, step: int | None = None) -> None:
        """Stop the run: raise TrainingDivergedError saying where, and which checkpoint is kept."""
        cfg = self.config
        epoch = self.epoch
        self.epoch = len(self.history)   # the diverged epoch is not part of the run
        if self.best_state is not None:   # leave the model usable in memory: the best weights so far
            self.model.load_state_dict(self.best_state)
        where = f"epoch {epoch}" + (f", step {step} of {len(self.train_loader)}" if step is not None else "")
        if self.run_dir is None:
            kept = "nothing was saved (the Trainer has no run_dir)"
        elif self.saved_epoch is not None and self.saved_epoch == self.epoch and self.checkpoint_path.is_file():
            kept = (f"the last good checkpoint, of epoch {self.saved_epoch}, is kept at {self.checkpoint_path} "
                    f"(and no checkpoint was written for epoch {epoch})")
        else:
            kept = f"no checkpoint was written: epoch {epoch} was the run's first"
        factor = "off" if not cfg.divergence_factor else f"{cfg.divergence_factor:g}"
        raise TrainingDivergedError(
            f"training diverged at {where}: {what}; {kept}. Lower the learning rate (lr={cfg.lr:g}), set "
            f"grad_clip, or change divergence_factor (now {factor}; None turns the blow-up check off)")

    def _train_epoch(self) -> None:
        cfg = self.config
        self.epoch += 1
        self.model.train()
        self.model.on_epoch_start(self.epoch)
        train_specs = [s for s in self.optimizers if s.data == "train"]
        valid_specs = [s for s in self.optimizers if s.data == "valid"]
        factor = cfg.divergence_factor
        total, rows, started = 0.0, 0, time.perf_counter()
        penalty_total = None
        if self._ddp is not None:
            # Dropout masks: every rank has its own draws (not rank 0's copied), repeated by a resume.
            torch.manual_seed((cfg.seed * 1_000_003 + self.epoch * 10_007 + self.rank) % 2 ** 63)
        bar = tqdm(self.train_loader, desc=f"epoch {self.epoch}", leave=False,
                   disable=not cfg.progress or self.rank != 0, file=sys.stderr)
        try:
            for step, batch in enumerate(bar):
                for spec in self.optimizers:
                    spec.optimizer.zero_grad(set_to_none=True)
                if self._ddp is None:
                    loss = self.model.loss(batch, self.loss_fn)
                    # Checked before the step, so that a NaN never reaches the weights of a later checkpoint.
                    value = float(loss.detach())
                    n = batch.num_rows
                else:   # this rank's shard: the loss to backpropagate, the global batch's mean loss and rows
                    loss, value, n = self._shard_loss(self._ddp, batch)
                if not math.isfinite(value):
                    self._diverged(f"the training loss is {value}", step + 1)
                total += value * n
                rows += n
                if self.divergence_reference is None:
                    self.divergence_reference = value
                elif factor and total / rows > factor * max(self.divergence_reference, 1e-12):
                    self._diverged(f"the epoch's mean training loss is {total / rows:.6g}, more than "
                                   f"{factor:g} times the loss of the run's first batch "
                                   f"({self.divergence_reference:.6g})", step + 1)
                penalty = None
                if self.regularizer.active:
                    # Under torchrun the same on every rank: the "rows" form looks up the global batch's rows.
                    rows_form = self._ddp is not None and self.regularizer.form == "rows" and self.regularizer.embedding
                    penalty = self.regularizer(distributed.gather_batch(batch) if rows_form else batch)
                if penalty is not None:
                    # Backpropagated with the loss, but not part of the logged training loss.
                    part = penalty.detach() * n
                    penalty_total = part if penalty_total is None else penalty_total + part
                    loss = loss + penalty
                loss.backward()
                if cfg.grad_clip:
                    # The gradients the training optimisers step, penalty included (the validation-batch
                    # optimisers zero theirs before their own backward pass).
                    torch.nn.utils.clip_grad_norm_(self.trained_parameters, cfg.grad_clip)
                for spec in train_specs:
                    spec.optimizer.step()
                self.model.on_train_step_end(step)
                for spec in valid_specs:
                    spec.optimizer.zero_grad(set_to_none=True)
                    if self._ddp is None:
                        valid_loss = self.model.loss(next(self.valid_stream), self.loss_fn)
                        valid_value = float(valid_loss.detach())
                    else:   # a plain forward pass: the gradients are averaged below, for this optimiser only
                        valid_loss, valid_value, _ = self._shard_loss(self._ddp.module, next(self.valid_stream))
                    if not math.isfinite(valid_value):
                        self._diverged(f"the loss of the validation batch that steps {spec.name!r} is "
                                       f"{valid_value}", step + 1)
                    valid_loss.backward()
                    if self._ddp is not None:
                        distributed.average_gradients(
                            [p for group in spec.optimizer.param_groups for p in group["params"]])
                    spec.optimizer.step()
                if step % 20 == 0:
                    bar.set_postfix(loss=f"{total / rows:.4f}")
        finally:
            bar.close()
        # The last step's update is not seen by any loss of this epoch: check the weights it left.
        bad = [name for name, p in self.model.named_parameters() if not bool(torch.isfinite(p).all())]
        if bad:
            self._diverged(f"the weights {bad[:3]} are not finite after the epoch's last step", len(self.train_loader))
        elapsed = time.perf_counter() - started
        self._last_train_stats = {"train_loss": total / rows, "samples_per_s": rows / elapsed,
                                  "epoch_seconds": elapsed}
        if penalty_total is not None:
            self._last_train_stats["train_penalty"] = float(penalty_total) / rows

    def _shard_loss(self, module, batch) -> tuple[torch.Tensor, float, int]:
        """Under torchrun: ``(loss, value, rows)`` of this rank's shard of a global batch of ``B`` rows.

        ``loss`` is the shard's mean loss times ``N * n_r / B`` (``n_r`` its rows, ``N`` the world size), so that
        DDP's average of the ranks' gradients is the gradient of the mean over the global batch, whatever the
        shards' sizes (see :mod:`fgraph.train.distributed`); ``value`` is the global batch's mean loss and
        ``rows`` its ``B`` rows, the same on every rank (one all-reduce), so that every rank takes the same
        divergence decisions."""
        n_local, n_global = batch.num_rows, int(batch.global_rows)
        local = module(batch)
        local_value = float(local.detach()) if n_local else 0.0
        total = distributed.all_reduce_sum(torch.tensor([local_value * n_local], dtype=torch.float64))
        return local * (self.world_size * n_local / n_global), float(total[0]) / n_global, n_global

    def _track_best(self, value: float) -> None:
        metric = self.config.monitor
        if is_better(metric, value, self.best_value):
            self.best_value, self.best_epoch, self.bad_epochs = value, self.epoch, 0
            self.lr_bad_epochs = 0
            self.best_state = copy.deepcopy(self.model.state_dict())
        else:
            self.bad_epochs += 1
            self.lr_bad_epochs += 1
            if self.config.lr_schedule == "plateau" and self.lr_bad_epochs > self.config.lr_patience:
                self._reduce_lr()
                self.lr_bad_epochs = 0

    def _drop_last_batch(self, data: EncodedData, what: str) -> bool:
        """Whether the shuffled batches of ``data`` that the model trains on drop their last, smaller batch:
        only when the model normalises over the batch (a BatchNorm layer) and that batch would leave a rank
        fewer than 2 rows, which BatchNorm cannot normalise in training mode (torch raises "Expected more than
        1 value per channel"). The rows are reshuffled every epoch, so a different row sits out each time."""
        if not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in self.model.modules()):
            return False
        size, world = self.config.batch_size, self.world_size
        rest = len(data) % size
        if not 0 < rest < 2 * world:
            return False
        per_rank = "" if world == 1 else f" on each of the {world} processes"
        if len(data) < size:
            raise ConfigError(f"the {what} data has {len(data)} row(s): {type(self.model).__name__}'s BatchNorm needs "
                              f"at least 2 rows per batch{per_rank}; give more rows")
        if distributed.is_writer():
            tqdm.write(f"{what} batches: {len(data):,} rows in batches of {size:,} leave a last batch of {rest}, "
                       f"too small for {type(self.model).__name__}'s BatchNorm{per_rank}: it is left out of every "
                       f"epoch (the rows are reshuffled, so a different {rest} each time)", file=sys.stdout)
        return True

    def _log_line(self, record: dict, best: bool) -> str:
        parts = [f"epoch {record['epoch']:3d}", f"loss {record['train_loss']:.5f}"]
        parts += [f"{k} {v:.5f}" for k, v in record.items() if k.startswith("valid_")]
        if self.config.lr_schedule is not None and "lr" in record:
            parts.append(f"lr {record['lr']:.3g}")
        parts.append(f"{record['samples_per_s']:,.0f} samples/s")
        if best:
            parts.append("*")
        return " | ".join(parts)

    def _log(self, record: dict) -> None:
        if not distributed.is_writer():
            return
        line = self._log_line(record, self.best_epoch == record["epoch"])
        tqdm.write(line, file=sys.stdout)
        if self.run_dir is not None:
            self._run_directory.append_log(line)

    def _rewrite_log(self) -> None:
        """Write log.txt anew from :attr:`history`: on a resume it then holds each epoch of the checkpoint once,
        and nothing of an epoch that was interrupted (or logged after the checkpoint it never got)."""
        lines, best = [], None
        metric = f"valid_{self.config.monitor}"
        for record in self.history:
            improved = metric in record and is_better(self.config.monitor, record[metric], best)
            if improved:
                best = record[metric]
            lines.append(self._log_line(record, improved) + "\n")
        self._run_directory.write_log("".join(lines))

    # -- evaluation ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, data: EncodedData, name: str = "the data") -> np.ndarray:
        """Probabilities (binary) or predicted values (regression, unclipped), one per row.

        Raises:
            TrainingDivergedError: the model's weights are not finite, so neither are its outputs.
            DataError: the outputs of some rows are NaN or infinite although the weights are finite (their
                values overflow); the message names the row positions.
        """
        check_same_space(self.model.space, data.space, what="model", error=DataError)
        self.model.eval()
        size = self.config.eval_batch_size or self.config.batch_size
        if self.world_size == 1:
            loader = FieldLoader(data, size, device=self.device)
        else:   # each rank scores one contiguous block of rows; gathered in rank order, they are the data
            loader = distributed.ShardedLoader(data, size, device=self.device, split="rows")
        with flush_denormals(self.config.flush_denormal):
            outs = [self.model(batch).float().cpu() for batch in loader]
        out = torch.cat(outs) if outs else torch.zeros(0)
        del outs
        release_freed_memory()   # the batches' arrays (fgraph/data/memory.py says why)
        if self.world_size > 1:
            out = distributed.all_gather_rows(out)
        bad = ~torch.isfinite(out)
        if bool(bad.any()):
            rows = torch.nonzero(bad).flatten()
            count, shown = rows.numel(), rows[:10].tolist()
            broken = [n for n, p in self.model.named_parameters() if not bool(torch.isfinite(p).all())]
            if broken:
                raise TrainingDivergedError(
                    f"the model's weights {broken[:3]} are not finite, so its outputs for {name} are not either "
                    f"({count} of {len(out)} rows, first at row positions {shown}); the training diverged: "
                    f"train again with a lower learning rate")
            raise DataError(f"the model's output is not finite (NaN or inf) for {count} of {len(out)} rows of "
                            f"{name}, first at row positions {shown} (0-based): these rows' values overflow its "
                            f"arithmetic; check their numeric columns for huge values")
        return (torch.sigmoid(out) if self.config.task == "binary" else out).numpy()

    def evaluate(self, data: EncodedData, name: str = "the evaluation data") -> dict[str, float]:
        """Metrics of the model on ``data``: AUC and logloss, or RMSE. ``name`` names ``data`` in errors."""
        check_labels(data, self.config.task, name)
        pred = self.predict(data, name=name)
        y = data.y.numpy()
        if self.config.task == "binary":
            return binary_metrics(y, pred, name=name)
        clip = self.clip_range or (float(y.min()), float(y.max()))
        return regression_metrics(y, pred, clip, name=name)

    # -- checkpoints --------------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return None if self._run_directory is None else self._run_directory.checkpoint_path

    def state_dict(self) -> dict:
        np_state = np.random.get_state(legacy=False)
        return {
            "model_name": getattr(self.model, "model_name", type(self.model).__name__),
            "model_hparams": to_plain(self.model.hparams),
            "model_state": self.model.state_dict(),
            "best_model_state": self.best_state,
            "optimizers": [spec.optimizer.state_dict() for spec in self.optimizers],
            "learning_rates": self.learning_rates(),
            "space": self.model.space.to_dict(),
            "encoder": None if self.encoder is None else self.encoder.state_dict(),
            "encoder_fingerprint": None if self.encoder is None else self.encoder.fingerprint(),
            "config": to_plain(self.config.to_dict()),
            "run_info": to_plain(self.run_info),
            "epoch": self.epoch,
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "bad_epochs": self.bad_epochs,
            "lr_bad_epochs": self.lr_bad_epochs,
            "history": self.history,
            "clip_range": None if self.clip_range is None else list(self.clip_range),
            "divergence_reference": self.divergence_reference,
            "rng_torch": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
            "rng_numpy": {"state": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                          "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]),
                          "gauss": float(np_state["gauss"])},
            "rng_python": _plain_random_state(random.getstate()),
            "rng_loader": None if self.train_loader is None else self.train_loader.generator.get_state(),
            "valid_stream": None if self.valid_stream is None else self.valid_stream.state_dict(),
            "world_size": self.world_size,
        }

    def _write_checkpoint(self) -> None:
        if self.run_dir is None:
            return
        if not distributed.is_writer():   # rank 0 writes; the others know which epoch is on disk
            self.saved_epoch = self.epoch
            return
        self._run_directory.write_checkpoint(self.state_dict())
        self.saved_epoch = self.epoch
        self._run_directory.write_history(self.history)

    def load_state_dict(self, state: dict, path: str | Path | None = None) -> None:
        """Continue from ``state`` (a :meth:`state_dict`, e.g. read by :func:`~fgraph.train.checkpoint.load_checkpoint` from ``path``).

        Raises:
            CheckpointError: the checkpoint holds another model (name, hyperparameters, weights, optimisers),
                another feature space, or another encoder than this Trainer's (see
                :func:`~fgraph.train.checkpoint.check_encoder_fingerprint`).
            ConfigError: this Trainer's configuration differs from the checkpoint's in an option a resume
                must keep (:data:`RESUME_FIXED_OPTIONS`).
        """
        from ..data.encoder import FieldEncoder

        where = "the checkpoint" if path is None else f"checkpoint {path}"
        saved_world = int(state.get("world_size", 1))
        if saved_world != self.world_size:
            how = lambda n: "one process (no torchrun)" if n == 1 else f"{n} processes (torchrun --nproc_per_node={n})"  # noqa: E731
            raise ConfigError(f"cannot resume from {where}: it was written by a run on {how(saved_world)}, and "
                              f"this one runs on {how(self.world_size)}; a resume keeps the number of processes "
                              f"(its batches are split in as many shards), so resume it on {how(saved_world)}")
        check_same_space(state["space"], self.model.space, what=where)
        name = getattr(self.model, "model_name", type(self.model).__name__)
        if state["model_name"] != name:
            raise CheckpointError(f"{where} holds a {state['model_name']!r} model, not the {name!r} model "
                                  f"this Trainer trains")
        hparams = to_plain(self.model.hparams)
        # Keys on one side only (a hyperparameter added or removed by another fgraph version) are not compared.
        for key in sorted(set(hparams) & set(state["model_hparams"])):
            if state["model_hparams"][key] != hparams[key]:
                raise CheckpointError(f"{where} holds a {name!r} model with {key}="
                                      f"{state['model_hparams'][key]!r}, not {hparams[key]!r} as this one")
        diff = fixed_option_differences(state["config"], self.config.to_dict())
        if diff:
            key, was, now = diff[0]
            raise ConfigError(f"cannot resume from {where}: it was trained with {key}={was!r}, not "
                              f"{now!r}; a resume keeps the run's {', '.join(RESUME_FIXED_OPTIONS)}")
        saved_encoder = None
        if state.get("encoder") is not None:
            try:
                saved_encoder = FieldEncoder.from_state_dict(state["encoder"])
            except Exception as e:
                raise CheckpointError(f"the encoder stored in {where} cannot be read ({e}): the "
                                      f"checkpoint is damaged") from None
        saved_print = state.get("encoder_fingerprint")
        if saved_encoder is not None:
            check_encoder_fingerprint(saved_print, saved_encoder.fingerprint(), path, "encoder stored with it")
            saved_print = saved_encoder.fingerprint()
        if self.encoder is not None:
            check_encoder_fingerprint(saved_print, self.encoder.fingerprint(), path, "Trainer's encoder")
        elif saved_encoder is not None:
            # Keep the run's encoder in the checkpoints written from now on, rather than dropping it.
            self.encoder = saved_encoder
        load_weights(self.model, state["model_state"], path, "weights")
        best = state.get("best_model_state")
        if best is not None:
            check_weights(self.model, best, path, "best weights")
        if len(state["optimizers"]) != len(self.optimizers):
            raise CheckpointError(f"{where} has {len(state['optimizers'])} optimiser states, but this "
                                  f"model has {len(self.optimizers)} optimisers")
        for spec, opt_state in zip(self.optimizers, state["optimizers"]):
            try:
                spec.optimizer.load_state_dict(opt_state)
            except (ValueError, KeyError, TypeError, RuntimeError) as e:
                raise CheckpointError(f"the state of optimiser {spec.name!r} in {where} does not fit "
                                      f"this model's ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
                                      ) from None
        # The optimisers' states hold their learning rates already; set them from the record as well, so that
        # a schedule's reductions come back exactly whatever an optimiser keeps in its state.
        saved_lrs = state.get("learning_rates")
        if saved_lrs is not None and len(saved_lrs) == len(self.optimizers):
            for spec, lrs in zip(self.optimizers, saved_lrs):
                if len(lrs) == len(spec.optimizer.param_groups):
                    for group, lr in zip(spec.optimizer.param_groups, lrs):
                        if not isinstance(group["lr"], torch.Tensor):   # a tensor lr is in the state already
                            group["lr"] = float(lr)
        self.best_state = best
        self.epoch, self.best_epoch = state["epoch"], state.get("best_epoch")
        self.best_value, self.bad_epochs = state.get("best_value"), state.get("bad_epochs", 0)
        self.lr_bad_epochs = state.get("lr_bad_epochs", 0)   # older checkpoints: lr_patience 0 needs no count
        self.history = list(state["history"])
        self.clip_range = None if state.get("clip_range") is None else tuple(state["clip_range"])
        self.divergence_reference = state.get("divergence_reference")
        torch.set_rng_state(state["rng_torch"])
        if state.get("rng_cuda") is not None and self.device.type == "cuda" and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        if state.get("rng_numpy") is not None:
            s = state["rng_numpy"]
            np.random.set_state(("MT19937", s["state"].numpy().astype(np.uint32), s["pos"], s["has_gauss"],
                                 s["gauss"]))
        if state.get("rng_python") is not None:
            random.setstate(_random_state_from_plain(state["rng_python"]))
        if state.get("rng_loader") is not None and self.train_loader is not None:
            self.train_loader.generator.set_state(state["rng_loader"])
        if state.get("valid_stream") is not None and self.valid_stream is not None:
            self.valid_stream.load_state_dict(state["valid_stream"])

    def _load_last_checkpoint(self) -> None:
        if self.checkpoint_path is None or not self.checkpoint_path.exists():
            raise InputFileNotFoundError(f"cannot resume: no checkpoint in {self.run_dir}")
        # Read onto the CPU: the random states must be CPU tensors whatever the device; the weights and the
        # optimiser states are copied onto the model's device as they load.
        self.load_state_dict(self._run_directory.read_checkpoint(map_location="cpu"), self.checkpoint_path)
        self.saved_epoch = self.epoch
        # history.json and log.txt may lag or lead the checkpoint (a crash between the writes): make them agree.
        self._run_directory.write_history(self.history)
        self._rewrite_log()


def _plain_random_state(state: tuple) -> list:
    """Python's ``random.getstate()`` as lists (``torch.load(weights_only=True)`` reads them)."""
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _random_state_from_plain(state: list) -> tuple:
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


__all__ = ["Trainer", "TrainConfig", "seed_everything", "check_labels", "GREATER_IS_BETTER",
           "RESUME_FIXED_OPTIONS"]
