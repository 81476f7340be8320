"""Learned per-instance interaction graphs as networkx graphs, and their data-set level summary."""
from __future__ import annotations

from dataclasses import dataclass, field as dc_field
from typing import Callable, Iterable

import networkx as nx
import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import to_networkx

from ..graph.adjacency import DenseAdj


@dataclass
class LayerRecord:
    """What one layer of a graph model decided for a batch of field graphs.

    Attributes:
        adj: the layer's neighbourhoods (which edges it used).
        edge_attrs: edge tensors ``(E,)`` or ``(E, H)`` in ``adj``'s flat edge order, e.g. ``{"weight": p,
            "alpha": attention}``; the first one is the edge's weight in summaries.
    """

    adj: DenseAdj
    edge_attrs: dict[str, Tensor] = dc_field(default_factory=dict)


def instance_graphs(records: list[LayerRecord], field_names: list[str],
                    node_values: list[list] | None = None) -> list[list[nx.DiGraph]]:
    """``graphs[b][layer]``: an ``nx.DiGraph`` per instance and layer.

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
def edge_weight_summary(batches: Iterable, record_fn: Callable[[object], list[LayerRecord]],
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
        raise ValueError("edge_weight_summary got no batches")
    return [pd.DataFrame(t / count, index=field_names, columns=field_names) for t in totals]
