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
from torch_geometric.data import Data
from torch_geometric.utils import to_networkx

from ..data.loader import TabularBatch
from ..nn.records import LayerRecord


def needs_protocol(model, method: str, what: str, hint: str) -> None:
    """Refuse, with a TypeError that says what to use instead, a model without the protocol ``method``."""
    if not callable(getattr(model, method, None)):
        raise TypeError(f"{what} reads {method}() of the model, which a {type(model).__name__} does not have; "
                        f"{hint}")


def node_values(batch: TabularBatch, names: list[str], encoder=None) -> list[list]:
    """Per row of ``batch``, the value of every field: decoded with the fitted ``encoder``, else the id."""
    ids = batch.ids.cpu().tolist()
    if encoder is None:
        return ids
    return [[encoder.value_of(name, i) for name, i in zip(names, row)] for row in ids]


def records_to_graphs(records: list[LayerRecord], field_names: list[str],
                      node_values: list[list] | None = None) -> list[list[nx.DiGraph]]:
    """``graphs[b][layer]``: an ``nx.DiGraph`` per instance and layer, from a model's layer records.

    Nodes are named by field and carry the field's ``value`` (when ``node_values`` is given); an edge
    ``j -> i`` means field ``i`` used field ``j``, with the layer's edge attributes (per-head attention becomes
    ``alpha`` as a list and ``alpha_h<k>`` per head).
    """
    out = []
    B = records[0].adj.num_graphs if records else 0
    mapping = dict(enumerate(field_names))
    for b in range(B):
        per_layer = []
        for rec in records:
            adj = rec.adj
            n, k = adj.num_nodes, adj.k
            src = adj.local_index()[b if adj.local_index().size(0) > 1 else 0].reshape(-1)
            dst = torch.arange(n, device=src.device).repeat_interleave(k)
            data = Data(edge_index=torch.stack([src, dst]).cpu(), num_nodes=n)
            attrs = []
            for name, value in rec.edge_attrs.items():
                v = adj.edges(value.detach())[b].reshape(n * k, *value.shape[1:]).cpu()
                if v.dim() == 2:
                    data[name] = v.tolist()
                    for h in range(v.size(1)):
                        data[f"{name}_h{h}"] = v[:, h]
                        attrs.append(f"{name}_h{h}")
                else:
                    data[name] = v
                attrs.append(name)
            g = to_networkx(data, edge_attrs=attrs)
            g = nx.relabel_nodes(g, mapping)
            if node_values is not None:
                nx.set_node_attributes(g, dict(zip(field_names, node_values[b])), "value")
            per_layer.append(g)
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
    :meth:`~fgraph.models.FieldGraphModel.edge_records`); per-head ones become a list and one attribute per
    head (``alpha``, ``alpha_h0``, ...). Computed in evaluation mode.

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
