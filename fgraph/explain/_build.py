"""The one place where fgraph's explanation graphs are put together.

Every family (graph models, attentive-pair models, FIVES's adjacency) reduces what its model computed to
field names, node values, an edge list and one column per edge attribute, and :func:`build_graph` turns that
into a networkx graph. Keeping the last step in one function keeps the graphs of all families alike: nodes
named by field, attributes that are plain Python scalars (so that GraphML and node-link JSON can hold them).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import networkx as nx
from torch import Tensor

from ..data.loader import TabularBatch
from ..data.space import PAD


def plain(value):
    """``value`` as a plain Python scalar (a numpy scalar or a 0-d tensor becomes ``int``/``float``/``bool``)."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


def head_columns(tensors: Mapping[str, Tensor]) -> dict[str, list]:
    """Edge tensors ``(E,)`` or ``(E, H)`` as columns of plain scalars, one column per head for the latter.

    A per-head tensor ``alpha`` gives the columns ``alpha_head0``, ``alpha_head1``, ...: scalars only, so that
    every graph writes to GraphML (which takes no lists) and reads back equal.
    """
    columns: dict[str, list] = {}
    for name, t in tensors.items():
        t = t.detach().cpu()
        if t.dim() == 1:
            columns[name] = t.tolist()
            continue
        if t.dim() != 2:
            raise ValueError(f"edge attribute {name!r} must have shape (E,) or (E, heads), got {tuple(t.shape)}")
        for h in range(t.size(1)):
            columns[f"{name}_head{h}"] = t[:, h].tolist()
    return columns


def build_graph(names: Sequence[str], edges: Sequence[tuple[int, int]], columns: Mapping[str, Sequence],
                *, directed: bool, values: Sequence | None = None, graph: Mapping | None = None) -> nx.Graph:
    """A graph over the fields ``names`` with one edge per ``(source, target)`` position pair of ``edges``.

    Args:
        names: the field names, in the model's field order; they name the nodes (added in this order).
        edges: ``(source, target)`` field positions; for an undirected graph the order within a pair is
            immaterial.
        columns: ``{attribute: one value per edge}``, aligned with ``edges``.
        directed: an ``nx.DiGraph`` (True) or an ``nx.Graph``.
        values: one ``value`` per node (the row's decoded value, or its id), or None for no node values.
        graph: graph attributes.
    """
    g = nx.DiGraph() if directed else nx.Graph()
    g.graph.update({k: plain(v) for k, v in (graph or {}).items()})
    if values is None:
        g.add_nodes_from(names)
    else:
        g.add_nodes_from((name, {"value": plain(v)}) for name, v in zip(names, values))
    items = list(columns.items())
    for e, (s, t) in enumerate(edges):
        g.add_edge(names[s], names[t], **{k: plain(col[e]) for k, col in items})
    return g


def node_values(batch: TabularBatch, names: list[str], encoder=None) -> list[list]:
    """Per row of ``batch``, the value of every field: decoded with the fitted ``encoder`` (a string), else the
    id (an int). A multi-valued field gives its tokens joined by ``|`` (decoded, or their ids)."""
    ids = batch.ids.cpu().tolist()
    bags = {}
    if batch.bags is not None:
        for slot, k in enumerate(batch.space.bag_positions):
            bags[k] = [[t for t in row if t != PAD] for row in batch.bags[:, slot].cpu().tolist()]
    out = []
    for b, row in enumerate(ids):
        values = []
        for k, (name, i) in enumerate(zip(names, row)):
            if k in bags:
                tokens = bags[k][b]
                values.append("|".join(str(encoder.value_of(name, t) if encoder is not None else t) for t in tokens))
            else:
                values.append(str(encoder.value_of(name, i)) if encoder is not None else int(i))
        out.append(values)
    return out


__all__ = ["build_graph", "head_columns", "node_values", "plain"]
