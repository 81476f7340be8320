"""The graph models' per-instance interaction graphs as networkx graphs, and their data-set level summary.

Both are read off the models' one protocol, :meth:`~fgraph.models.FieldGraphModel.edge_records` (a
:class:`~fgraph.nn.LayerRecord` per layer); :func:`records_to_graphs` and :func:`mean_edge_weights` work on
records directly, for a model of your own.
"""
from __future__ import annotations

from typing import Callable, Iterable

import networkx as nx
import numpy as np
import pandas as pd
import torch

from ..data.loader import TabularBatch
from ..nn.records import LayerRecord
from ._build import build_graph, head_columns, node_values


def needs_protocol(model, method: str, what: str, hint: str) -> None:
    """Refuse, with a TypeError that says what to use instead, a model without the protocol ``method``."""
    if not callable(getattr(model, method, None)):
        raise TypeError(f"{what} reads {method}() of the model, which a {type(model).__name__} does not have; "
                        f"{hint}")


def records_to_graphs(records: list[LayerRecord], field_names: list[str],
                      node_values: list[list] | None = None) -> list[list[nx.DiGraph]]:
    """``graphs[b][layer]``: an ``nx.DiGraph`` per instance and layer, from a model's layer records.

    Nodes are named by field and carry the field's ``value`` (when ``node_values`` is given); an edge
    ``j -> i`` means field ``i`` used field ``j``, with the layer's edge attributes (per-head attention becomes
    one scalar attribute per head, ``alpha_head0``, ``alpha_head1``, ..., so the graphs write to GraphML;
    :func:`~fgraph.explain.write_graphs`).
    """
    out = []
    B = records[0].adj.num_graphs if records else 0
    for b in range(B):
        per_layer = []
        for rec in records:
            adj = rec.adj
            n, k = adj.num_nodes, adj.k
            local = adj.local_index()
            src = local[b if local.size(0) > 1 else 0].reshape(-1).tolist()
            dst = torch.arange(n).repeat_interleave(k).tolist()
            tensors = {name: adj.edges(value.detach())[b].reshape(n * k, *value.shape[1:])
                       for name, value in rec.edge_attrs.items()}
            per_layer.append(build_graph(field_names, list(zip(src, dst)), head_columns(tensors),
                                         directed=True, values=None if node_values is None else node_values[b]))
        out.append(per_layer)
    return out


@torch.no_grad()
def mean_edge_weights(batches: Iterable, record_fn: Callable[[object], list[LayerRecord]],
                      field_names: list[str], attr: str | None = None) -> list[pd.DataFrame]:
    """Mean weight of every field pair over all instances of ``batches``, one ``n x n`` frame per layer.

    Entry ``[i, j]`` is the mean over instances of the weight of edge ``j -> i`` (0 where the layer dropped
    it). ``record_fn(batch)`` returns the layer records of a batch; ``attr`` names the edge attribute (default:
    each record's first; a per-head attribute is averaged over heads).
    """
    totals, count = None, 0
    for batch in batches:
        records = record_fn(batch)
        if totals is None:
            totals = [np.zeros((len(field_names), len(field_names))) for _ in records]
        for layer, rec in enumerate(records):
            name = attr or next(iter(rec.edge_attrs))
            w = rec.edge_attrs[name]
            w = w.mean(-1) if w.dim() == 2 else w
            dense = rec.adj.dense_adjacency(rec.adj.edges(w.detach().float()))       # (B, n, n)
            totals[layer] += dense.sum(0).cpu().numpy()
        count += records[0].adj.num_graphs
    if totals is None:
        raise ValueError("the edge summary got no batches")
    return [pd.DataFrame(t / count, index=field_names, columns=field_names) for t in totals]


_GRAPH_MODELS = "it is for the graph models (GraphFM, Fi-GNN, FIVES); for AFM and the IFM family use pair_graph()"


def instance_graphs(model, batch: TabularBatch, encoder=None) -> list[list[nx.DiGraph]]:
    """``graphs[b][layer]``: the interaction graph a graph model used for instance ``b`` at each layer.

    Nodes are named by field; with the fitted ``encoder`` they carry the instance's decoded ``value``
    (otherwise its id). Edge ``j -> i`` (field ``i`` used field ``j``) carries the layer's edge attributes (see
    :meth:`~fgraph.models.FieldGraphModel.edge_records`); per-head ones become one scalar attribute per
    head (``alpha_head0``, ``alpha_head1``, ...). Computed in evaluation mode.

    Args:
        model: a :class:`~fgraph.models.FieldGraphModel` (GraphFM, Fi-GNN, FIVES and their "+" variants).
        batch: the rows, a :class:`~fgraph.data.TabularBatch`.
        encoder: the model's fitted :class:`~fgraph.data.FieldEncoder`, to name the nodes' values.
    """
    needs_protocol(model, "edge_records", "instance_graphs()", _GRAPH_MODELS)
    names = model.space.names
    return records_to_graphs(model.edge_records(batch), names, node_values(batch, names, encoder))


def edge_summary(model, batches: Iterable[TabularBatch], attr: str | None = None) -> list[pd.DataFrame]:
    """Mean edge weight of every field pair over ``batches`` (e.g. a :class:`~fgraph.data.FieldLoader`), one
    ``n x n`` frame per layer of a graph model: entry ``[i, j]`` is the mean weight of edge ``j -> i`` (0
    where the layer dropped it). Computed in evaluation mode.

    Args:
        model: a :class:`~fgraph.models.FieldGraphModel`.
        batches: the rows.
        attr: the edge attribute to average (default: each layer's first, see
            :meth:`~fgraph.models.FieldGraphModel.edge_records`; a per-head one is averaged over heads).
    """
    needs_protocol(model, "edge_records", "edge_summary()", _GRAPH_MODELS)
    return mean_edge_weights(batches, model.edge_records, model.space.names, attr)


__all__ = ["instance_graphs", "edge_summary", "records_to_graphs", "mean_edge_weights"]
