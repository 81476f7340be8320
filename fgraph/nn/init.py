r"""Initialisation schemes that a training protocol can impose on any fgraph model.

Two functions, each over a model, a module or an iterable of modules, drawing from torch's global random
number generator (seed it, e.g. with :func:`fgraph.train.seed_everything`, before calling them):

* :func:`init_embeddings` -- the embedding *tables*: the ``nn.Embedding`` weights inside every
  :class:`~fgraph.nn.FieldEmbedding`, the first-order weights of :class:`~fgraph.nn.FieldLinear` included
  (they are a one-dimensional ``FieldEmbedding``, as FuxiCTR's ``LR_Layer`` is a one-dimensional feature
  embedding). Every row is drawn: fgraph's tables have no padding row, so the reserved ids ``MISSING`` (0) and
  ``RARE`` (2) of every field are drawn and trained like any value. The ``UNKNOWN`` row (1) of an id or bag
  field is then set back to zero, as :meth:`FieldEmbedding.reset_parameters` does (no training row selects
  it, so an unseen value contributes nothing); id 1 of a scaled numeric field is its "present" vector and is
  drawn. The projection of a mixed-dimension ``FieldEmbedding`` is a dense weight, not a table.
* :func:`init_dense` -- the dense weight matrices: every ``torch.nn.Linear`` (its subclasses and
  PyG's ``torch_geometric.nn.Linear`` too, wherever it sits, the projections of mixed-dimension embeddings
  included) and every PyG ``HeteroLinear`` (fgraph's :class:`~fgraph.nn.FieldwiseLinear`, the per-field maps
  of Fi-GNN and FIVES), whose ``(num_types, in, out)`` weight is treated as ``num_types`` matrices of
  ``in -> out``, each drawn with fan-in ``in`` and fan-out ``out``. Their biases are set to zero.
  Nothing else is touched: the embedding tables, free-standing biases (:class:`~fgraph.nn.FieldLinear`'s
  :math:`w_0`, the readout's), GRU cells (torch's own uniform init, as FuxiCTR leaves them), normalisation
  layers, and parameters a layer defines with a deliberate init of its own (FIVES's adjacency logits, the
  field aspects of IFM-style layers, which start near 1).
"""
from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import Tensor, nn
from torch.nn.parameter import is_lazy
from torch_geometric.nn import HeteroLinear
from torch_geometric.nn.dense.linear import Linear as PygLinear

from ..data.space import UNKNOWN
from .embedding import FieldEmbedding

#: the ``kind`` values of :func:`init_embeddings`
EMBEDDING_INITS = ("normal", "xavier_uniform", "xavier_normal")
#: the ``kind`` values of :func:`init_dense`
DENSE_INITS = ("xavier_normal", "xavier_uniform")


def _roots(model_or_modules: nn.Module | Iterable[nn.Module]) -> list[nn.Module]:
    roots = [model_or_modules] if isinstance(model_or_modules, nn.Module) else list(model_or_modules)
    for root in roots:
        if not isinstance(root, nn.Module):
            raise TypeError(f"expected a torch module or an iterable of them, got {type(root).__name__}")
    return roots


def _modules(model_or_modules: nn.Module | Iterable[nn.Module],
             skip: nn.Module | Iterable[nn.Module] = ()) -> list[nn.Module]:
    """Every module under ``model_or_modules``, each once (shared modules are not initialised twice), less
    ``skip`` and every module under it (a module reached both inside and outside ``skip`` is skipped)."""
    skipped = {id(m) for root in _roots(skip) for m in root.modules()}
    seen, out = set(skipped), []
    for root in _roots(model_or_modules):
        for module in root.modules():
            if id(module) not in seen:
                seen.add(id(module))
                out.append(module)
    return out


def field_embeddings(model_or_modules: nn.Module | Iterable[nn.Module],
                     skip: nn.Module | Iterable[nn.Module] = ()) -> list[FieldEmbedding]:
    """The :class:`FieldEmbedding` modules under ``model_or_modules`` (less those in ``skip``), each once."""
    return [m for m in _modules(model_or_modules, skip) if isinstance(m, FieldEmbedding)]


def embedding_tables(model_or_modules: nn.Module | Iterable[nn.Module]) -> list[Tensor]:
    """The embedding tables (``nn.Embedding`` weights of every :class:`FieldEmbedding`), each once."""
    seen, out = set(), []
    for emb in field_embeddings(model_or_modules):
        for table in emb.tables:
            if id(table.weight) not in seen:
                seen.add(id(table.weight))
                out.append(table.weight)
    return out


def _check_kind(kind: str, choices: tuple[str, ...], what: str) -> None:
    if kind not in choices:
        raise ValueError(f"{what} init must be one of {list(choices)}, got {kind!r}")


@torch.no_grad()
def init_embeddings(model_or_modules: nn.Module | Iterable[nn.Module], kind: str = "normal",
                    std: float = 1e-4, skip: nn.Module | Iterable[nn.Module] = ()) -> int:
    r"""Re-draw every embedding table under ``model_or_modules``; returns how many tables were drawn.

    Args:
        model_or_modules: a model, a module, or an iterable of modules.
        kind: ``"normal"`` (:math:`\mathcal N(0, \mathrm{std}^2)`, FuxiCTR's and the BARS runs' choice with
            ``std=1e-4``), ``"xavier_uniform"`` or ``"xavier_normal"`` (torch's rules on the
            ``(rows, dim)`` table: fan-in ``dim``, fan-out ``rows``; ``std`` is not used).
        std: the standard deviation of ``"normal"``.
        skip: modules left as they are, with everything under them (pre-trained ones, say:
            :meth:`CTRModel.keep_weights <fgraph.models.CTRModel.keep_weights>`).

    Every row is drawn, the reserved ids included; the ``UNKNOWN`` row of id and bag fields is set back to
    zero (see the module's documentation).
    """
    _check_kind(kind, EMBEDDING_INITS, "embedding")
    if kind == "normal" and not (math.isfinite(std) and std > 0):
        raise ValueError(f"the std of a normal embedding init must be a finite number > 0, got {std!r}")
    count = 0
    for emb in field_embeddings(model_or_modules, skip):
        for g, table in enumerate(emb.tables):
            weight = table.weight
            if kind == "normal":
                weight.normal_(0.0, std)
            elif kind == "xavier_uniform":
                nn.init.xavier_uniform_(weight)
            else:
                nn.init.xavier_normal_(weight)
            positions = getattr(emb, f"positions_{g}")
            has_unknown = torch.tensor([emb.space.kinds[int(k)] != "scaled" for k in positions],
                                       dtype=torch.bool, device=positions.device)
            weight[getattr(emb, f"offsets_{g}")[has_unknown] + UNKNOWN] = 0.0
            count += 1
    return count


def _draw(weight: Tensor, fan_in: int, fan_out: int, kind: str) -> None:
    std = math.sqrt(2.0 / (fan_in + fan_out))
    if kind == "xavier_normal":
        weight.normal_(0.0, std)
    else:
        bound = math.sqrt(3.0) * std
        weight.uniform_(-bound, bound)


def dense_weights(model_or_modules: nn.Module | Iterable[nn.Module],
                  skip: nn.Module | Iterable[nn.Module] = ()) -> list[tuple[nn.Module, int, int]]:
    """``(module, fan_in, fan_out)`` of each module that :func:`init_dense` re-draws (lazy ones and those in
    ``skip`` left out)."""
    out = []
    for module in _modules(model_or_modules, skip):
        weight = getattr(module, "weight", None)
        if weight is None or is_lazy(weight):
            continue
        if isinstance(module, (nn.Linear, PygLinear)):          # weight (out, in)
            out.append((module, int(weight.size(1)), int(weight.size(0))))
        elif isinstance(module, HeteroLinear):                 # weight (types, in, out)
            out.append((module, int(weight.size(1)), int(weight.size(2))))
    return out


@torch.no_grad()
def init_dense(model_or_modules: nn.Module | Iterable[nn.Module], kind: str = "xavier_normal",
               skip: nn.Module | Iterable[nn.Module] = ()) -> int:
    r"""Re-draw the dense weight matrices under ``model_or_modules`` and zero their biases; returns how many
    modules were re-drawn.

    Args:
        model_or_modules: a model, a module, or an iterable of modules.
        kind: ``"xavier_normal"`` (:math:`\mathcal N(0, 2/(\mathrm{fan_{in}} + \mathrm{fan_{out}}))`, FuxiCTR's
            choice for its linear layers) or ``"xavier_uniform"`` (the same variance, uniform).
        skip: modules left as they are, with everything under them (see :func:`init_embeddings`).

    Which modules: every ``nn.Linear`` and PyG ``Linear`` (fan-in ``in_features``, fan-out
    ``out_features``) and every PyG ``HeteroLinear`` / :class:`~fgraph.nn.FieldwiseLinear` (each type's
    ``in -> out`` matrix on its own fans). Embedding tables and every other parameter are left as they are.
    """
    _check_kind(kind, DENSE_INITS, "dense")
    found = dense_weights(model_or_modules, skip)
    for module, fan_in, fan_out in found:
        _draw(module.weight, fan_in, fan_out, kind)
        bias = getattr(module, "bias", None)
        if isinstance(bias, Tensor) and not is_lazy(bias):
            bias.zero_()
    return len(found)


__all__ = ["init_embeddings", "init_dense", "embedding_tables", "field_embeddings", "dense_weights",
           "EMBEDDING_INITS", "DENSE_INITS"]
