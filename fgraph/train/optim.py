"""The trainer's optimiser vocabulary: turning what a model asks for into torch optimisers.

A model says *what* it wants optimised, in plain data (:meth:`fgraph.models.CTRModel.configure_optimizers`
and :meth:`~fgraph.models.CTRModel.parameter_groups`: lists of parameters, per-group options, which batches
an optimiser steps on); this module decides *how*, from the training options (:class:`OptimConfig`). So no
model imports ``torch.optim`` settings or the trainer, and one place resolves optimiser names.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field as dc_field
from typing import Callable

import torch

from ..errors import ConfigError
from .grda import GRDA

#: where an optimiser steps: on every training batch, or on a validation batch after every training step
OPTIMIZER_DATA = ("train", "valid")
#: the keys of a model's optimiser description (see :meth:`fgraph.models.CTRModel.configure_optimizers`)
REQUEST_KEYS = ("params", "name", "data", "optimizer", "lr", "options")
#: the training options a parameter group may take its weight decay from (``decay_from``)
DECAY_OPTIONS = ("weight_decay", "embedding_weight_decay")
#: fgraph's own optimisers, by the (lower-case) name :func:`resolve_optimizer` knows them by
FGRAPH_OPTIMIZERS: dict[str, type] = {"grda": GRDA}


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
    """The training options that shape a model's optimisers (what :func:`build_optimizers` reads)."""

    optimizer: str | type = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    embedding_weight_decay: float = 0.0
    extra: dict = dc_field(default_factory=dict)


def resolve_optimizer(name: str | type | Callable) -> Callable:
    """``"adam"``, ``"Adagrad"``, ``"sgd"`` ... (any ``torch.optim`` class), ``"grda"`` (fgraph's own,
    :data:`FGRAPH_OPTIMIZERS`), case-insensitive; or a class, returned as it is."""
    if not isinstance(name, str):
        return name
    if name.lower() in FGRAPH_OPTIMIZERS:
        return FGRAPH_OPTIMIZERS[name.lower()]
    table = {k.lower(): getattr(torch.optim, k) for k in dir(torch.optim)
             if inspect.isclass(getattr(torch.optim, k)) and issubclass(getattr(torch.optim, k), torch.optim.Optimizer)}
    try:
        return table[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown optimizer {name!r}; choose one of torch.optim's: "
                         f"{sorted(k for k in table if k != 'optimizer')}, or fgraph's: "
                         f"{sorted(FGRAPH_OPTIMIZERS)}") from None


def resolve_groups(groups: list, cfg: OptimConfig) -> list:
    """A model's parameter groups (:meth:`~fgraph.models.CTRModel.parameter_groups`) as torch parameter
    groups: a group's ``decay_from`` becomes its ``weight_decay``, read from that training option of ``cfg``;
    every other key stays as it is. A plain list of parameters is returned unchanged.

    Raises:
        TypeError: a group names an unknown option in ``decay_from``, or gives both ``decay_from`` and
            ``weight_decay`` (a model's mistake, not the user's).
    """
    out = []
    for group in groups:
        if not isinstance(group, dict) or "decay_from" not in group:
            out.append(group)
            continue
        source = group["decay_from"]
        if source not in DECAY_OPTIONS or "weight_decay" in group:
            raise TypeError(f"parameter group {group.get('name')!r}: decay_from must be one of {DECAY_OPTIONS} "
                            f"and exclude weight_decay, got decay_from={source!r}"
                            f"{', weight_decay=' + repr(group['weight_decay']) if 'weight_decay' in group else ''}")
        # In place of decay_from, so that the group reads as the model wrote it.
        out.append({("weight_decay" if k == "decay_from" else k): (getattr(cfg, source) if k == "decay_from" else v)
                    for k, v in group.items()})
    return out


def build_optimizers(model, cfg: OptimConfig) -> list[OptimizerSpec]:
    """The torch optimisers of ``model``: one per description of its
    :meth:`~fgraph.models.CTRModel.configure_optimizers`, in that order.

    An optimiser without ``optimizer`` is ``cfg.optimizer`` with ``cfg.extra`` (the training option
    ``optimizer_options``) updated by the description's ``options``; one that names its own gets only its
    ``options`` (e.g. ``{"optimizer": "grda", "options": {"c": 0.005, "mu": 0.8}}``). ``lr`` missing or None
    is ``cfg.lr``.

    Raises:
        TypeError: the model's description is not a list of dicts with the keys of :data:`REQUEST_KEYS`
            and a ``data`` of :data:`OPTIMIZER_DATA`, or its ``options`` is not a dict of keyword arguments
            other than ``params`` and ``lr`` (a model's mistake, not the user's).
    """
    requests = model.configure_optimizers()
    where = f"{type(model).__name__}.configure_optimizers()"
    if not isinstance(requests, (list, tuple)) or not requests:
        raise TypeError(f"{where} must return a non-empty list of optimiser descriptions (dicts), "
                        f"got {requests!r}")
    specs = []
    for request in requests:
        if not isinstance(request, dict) or "params" not in request:
            raise TypeError(f"{where} must describe each optimiser as a dict with 'params', got {request!r}")
        unknown = sorted(set(request) - set(REQUEST_KEYS))
        data = request.get("data", "train")
        if unknown or data not in OPTIMIZER_DATA:
            raise TypeError(f"{where}: optimiser {request.get('name', 'main')!r} has unknown keys {unknown} or "
                            f"data={data!r}; the keys are {REQUEST_KEYS}, data one of {OPTIMIZER_DATA}")
        options = {} if request.get("options") is None else request["options"]
        if not isinstance(options, dict) or not all(isinstance(k, str) for k in options) \
                or {"params", "lr"} & set(options):
            raise TypeError(f"{where}: optimiser {request.get('name', 'main')!r} has options={options!r}; "
                            f"options must be a dict of the optimiser's keyword arguments other than 'params' "
                            f"and 'lr' (the description's own keys)")
        if request.get("optimizer") is None:
            opt_cls, extra = resolve_optimizer(cfg.optimizer), {**cfg.extra, **options}
        else:
            opt_cls, extra = resolve_optimizer(request["optimizer"]), dict(options)
        lr = cfg.lr if request.get("lr") is None else request["lr"]
        optimizer = opt_cls(resolve_groups(list(request["params"]), cfg), lr=lr, **extra)
        specs.append(OptimizerSpec(optimizer, data, request.get("name", "main")))
    return specs


__all__ = ["OptimConfig", "OptimizerSpec", "resolve_optimizer", "resolve_groups", "build_optimizers",
           "OPTIMIZER_DATA", "FGRAPH_OPTIMIZERS"]
