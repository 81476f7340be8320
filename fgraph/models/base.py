"""What every fgraph model shares: construction from a FeatureSpace, a registry, losses, optimisers."""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field as dc_field
from typing import Callable, ClassVar

import torch
from torch import Tensor, nn

from ..data.loader import TabularBatch
from ..data.space import FeatureSpace
from ..nn.embedding import FieldEmbedding

MODELS: dict[str, type["CTRModel"]] = {}


def register_model(name: str):
    """Class decorator: make a model available to :func:`build_model` and ``fgraph train --model``."""
    def wrap(cls):
        if name in MODELS:
            raise ValueError(f"a model named {name!r} is already registered ({MODELS[name].__name__})")
        cls.model_name = name
        MODELS[name] = cls
        return cls
    return wrap


def build_model(name: str, space: FeatureSpace, **hparams) -> "CTRModel":
    """Instantiate the registered model ``name`` for ``space`` with ``hparams``."""
    key = name.lower()
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {sorted(MODELS)}")
    cls = MODELS[key]
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "space"}
    unknown = sorted(set(hparams) - accepted)
    if unknown:
        raise ValueError(f"model {key!r} does not take option(s) {unknown}; it takes {sorted(accepted)}")
    return cls(space, **hparams)


@dataclass
class OptimizerSpec:
    """One optimiser of a model and the data it steps on.

    ``data="train"``: stepped on every training batch (several such optimisers share one backward pass,
    e.g. Adam on the weights and GRDA on gates). ``data="valid"``: stepped on a validation batch after
    every training step (bilevel search, e.g. FIVES's adjacency parameters).
    """

    optimizer: torch.optim.Optimizer
    data: str = "train"
    name: str = "main"


@dataclass
class OptimConfig:
    """What the trainer passes to :meth:`CTRModel.configure_optimizers`."""

    optimizer: str | type = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    embedding_weight_decay: float = 0.0
    extra: dict = dc_field(default_factory=dict)


def resolve_optimizer(name: str | type | Callable) -> Callable:
    """``"adam"``, ``"Adagrad"``, ``"sgd"`` ... (any ``torch.optim`` class, case-insensitive) or a class."""
    if not isinstance(name, str):
        return name
    table = {k.lower(): getattr(torch.optim, k) for k in dir(torch.optim)
             if inspect.isclass(getattr(torch.optim, k)) and issubclass(getattr(torch.optim, k), torch.optim.Optimizer)}
    try:
        return table[name.lower()]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; choose one of torch.optim's: "
                         f"{sorted(k for k in table if k != 'optimizer')}") from None


class CTRModel(nn.Module):
    """Base class of fgraph's models: ``forward(batch) -> (B,)`` logits.

    Subclasses take the :class:`~fgraph.data.FeatureSpace` as first argument and hyperparameters as keyword
    arguments; the keyword arguments are recorded in :attr:`hparams`, so a checkpoint can rebuild the model.
    """

    model_name: ClassVar[str] = "model"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        sig = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self, *args, **kw):
            bound = sig.bind(self, *args, **kw)
            bound.apply_defaults()
            if not hasattr(self, "_hparams_owner"):
                # The most derived class records its own arguments.
                object.__setattr__(self, "_hparams_owner", cls)
                object.__setattr__(self, "_hparams", {k: v for k, v in bound.arguments.items()
                                                      if k not in ("self", "space")})
            init(self, *args, **kw)

        cls.__init__ = recording_init

    def __init__(self, space: FeatureSpace):
        super().__init__()
        if not isinstance(space, FeatureSpace):
            raise TypeError(f"models are built from a FeatureSpace (encoder.space_), got {type(space).__name__}")
        self.space = space

    @property
    def hparams(self) -> dict:
        return dict(getattr(self, "_hparams", {}))

    # -- what a subclass writes ---------------------------------------------------------------------------
    def forward(self, batch: TabularBatch) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def loss(self, batch: TabularBatch, loss_fn: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
        """The training loss of a batch. Models with several outputs (one per layer) override this."""
        return loss_fn(self(batch), batch.y)

    # -- optimisation -----------------------------------------------------------------------------------------
    def embedding_parameters(self) -> list[nn.Parameter]:
        seen, out = set(), []
        for module in self.modules():
            if isinstance(module, FieldEmbedding):
                for p in module.parameters():
                    if id(p) not in seen:
                        seen.add(id(p)), out.append(p)
        return out

    def parameter_groups(self, cfg: OptimConfig) -> list[dict]:
        """Embedding tables (with ``embedding_weight_decay``) and everything else (``weight_decay``)."""
        emb = self.embedding_parameters()
        emb_ids = {id(p) for p in emb}
        rest = [p for p in self.parameters() if id(p) not in emb_ids and p.requires_grad]
        groups = [{"params": emb, "weight_decay": cfg.embedding_weight_decay, "name": "embedding"}]
        if rest:
            groups.append({"params": rest, "weight_decay": cfg.weight_decay, "name": "dense"})
        return groups

    def configure_optimizers(self, cfg: OptimConfig) -> list[OptimizerSpec]:
        """One optimiser over :meth:`parameter_groups`. Models that search (FIVES, AIM) return more."""
        opt_cls = resolve_optimizer(cfg.optimizer)
        return [OptimizerSpec(opt_cls(self.parameter_groups(cfg), lr=cfg.lr, **cfg.extra), "train", "main")]

    # -- hooks the trainer calls ------------------------------------------------------------------------------
    def on_epoch_start(self, epoch: int) -> None:
        """Called before every training epoch (annealing schedules live here)."""

    def on_train_step_end(self, step: int) -> None:
        """Called after every optimiser step on a training batch."""

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.hparams.items())
