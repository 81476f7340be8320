"""The attentive-pair models' (AFM, IFM, INN, DeepIFM) learned pair weights as undirected networkx graphs.

Read off the models' one protocol, :meth:`~fgraph.models.AttentivePairModel.pair_weights`.
"""
from __future__ import annotations

from typing import Iterable

import networkx as nx
from torch import Tensor

from ..data.loader import TabularBatch
from ._build import build_graph, head_columns, node_values
from .graphs import needs_protocol


def pairs_to_graph(names: list[str], pairs: Tensor, attrs: dict[str, Tensor], values: list | None = None) -> nx.Graph:
    """An undirected ``nx.Graph`` over the fields with one edge per pair of ``pairs`` ``(2, P)``, carrying
    ``attrs`` (``(P,)`` each); nodes carry ``values`` as ``value`` when given."""
    edges = [tuple(p) for p in pairs.t().tolist()]
    return build_graph(list(names), edges, head_columns(attrs), directed=False, values=values)


def pair_graph(model, data: TabularBatch | Iterable[TabularBatch] | None = None, encoder=None):
    r"""The interaction graph an attentive-pair model learned: an undirected ``nx.Graph`` over the fields,
    one edge per pair it pools over.

    * ``data`` a :class:`~fgraph.data.TabularBatch`: a list of graphs, one per row. Edge attribute ``weight``
      is the row's attention weight of the pair (they sum to 1 over a row's edges; 0 for a pair that sampling
      left out); nodes carry the row's ``value`` (decoded with the fitted ``encoder``, otherwise the id).
    * ``data`` an iterable of batches (e.g. a :class:`~fgraph.data.FieldLoader`): one graph whose ``weight``
      is the mean over all rows.
    * ``data=None``: the instance-independent graph, for models that have one (IFM's field aspect).

    Edges also carry the model's instance-independent attributes (IFM: ``field_norm``,
    :math:`\lVert \mathbf{f}_{ij} \rVert`). Computed in evaluation mode (see
    :meth:`~fgraph.models.AttentivePairModel.pair_weights`).

    Raises:
        ValueError: ``data=None`` for a model whose pair weights all depend on the row (AFM), or ``data`` an
            empty iterable.
    """
    needs_protocol(model, "pair_weights", "pair_graph()",
                   "it is for AFM and the IFM family; for the graph models use instance_graphs()")
    names = model.space.names
    if data is None:
        static = model.pair_weights()
        pairs = static.pop("pairs")
        if not static:
            raise ValueError(f"{type(model).__name__}'s pair weights depend on the row: pass a batch or a loader "
                             f"to pair_graph()")
        return pairs_to_graph(names, pairs, static)
    if isinstance(data, TabularBatch):
        found = model.pair_weights(data)
        pairs, weight = found.pop("pairs"), found.pop("weight").cpu()
        values = node_values(data, names, encoder)
        return [pairs_to_graph(names, pairs, {"weight": weight[b], **found}, values[b]) for b in range(weight.size(0))]
    total, rows, found = None, 0, {}
    for part in data:
        found = model.pair_weights(part)
        summed = found.pop("weight").sum(0).cpu()
        total = summed if total is None else total + summed
        rows += part.num_rows
    if not rows:
        raise ValueError("pair_graph() got no batches")
    pairs = found.pop("pairs")
    return pairs_to_graph(names, pairs, {"weight": total / rows, **found})


__all__ = ["pair_graph", "pairs_to_graph"]
