"""Batches of field graphs as PyG ``Batch`` objects.

One node per field, ``B`` instances side by side. The structure of a ``(B, n)`` batch -- ``edge_index``,
``batch``, ``ptr``, the field id of every node -- depends only on ``(B, n)`` and is built once and cached.
Node features are a free view of the dense ``(B, n, d)`` embeddings (no copy either way).
"""
from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor
from torch_geometric.data import Batch

from ..data.loader import TabularBatch
from .adjacency import DenseAdj


@lru_cache(maxsize=8)
def _structure(num_graphs: int, num_fields: int, device: torch.device) -> dict[str, Tensor]:
    B, n = num_graphs, num_fields
    ptr = torch.arange(B + 1, device=device) * n
    return {
        "batch": torch.arange(B, device=device).repeat_interleave(n),
        "ptr": ptr,
        "field": torch.arange(n, device=device).repeat(B),
        "graph_ptr": torch.arange(B + 1, device=device),
        "zeros": torch.zeros(B, dtype=torch.long, device=device),
    }


def to_dense(x: Tensor, num_fields: int) -> Tensor:
    """Node rows ``(B*n, ...)`` as ``(B, n, ...)``: a view, never a copy."""
    return x.view(-1, num_fields, *x.shape[1:])


def to_flat(x: Tensor) -> Tensor:
    """``(B, n, ...)`` as node rows ``(B*n, ...)``: a view for contiguous input."""
    return x.view(x.size(0) * x.size(1), *x.shape[2:])


class _Repeat:
    """``[value] * length`` without building the list (PyG indexes it once per separated graph)."""

    __slots__ = ("value", "length")

    def __init__(self, value: int, length: int):
        self.value, self.length = value, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, idx: int) -> int:
        if not -self.length <= idx < self.length:
            raise IndexError(idx)
        return self.value


def field_graph(num_graphs: int, num_fields: int, *, x: Tensor | None = None, self_loops: bool = True,
                y: Tensor | None = None, device=None, **node_attrs: Tensor) -> Batch:
    """A PyG ``Batch`` of ``num_graphs`` fully-connected field graphs with ``num_fields`` nodes each.

    Args:
        num_graphs: ``B``.
        num_fields: ``n``.
        x: node features, ``(B*n, d)`` or dense ``(B, n, d)`` (stored as a view).
        self_loops: whether each field is its own neighbour.
        y: graph labels ``(B,)``.
        **node_attrs: more node-level tensors with ``B*n`` rows.

    The batch carries ``edge_index`` (general path), ``adj`` (a :class:`DenseAdj`, the fast path),
    ``batch``, ``ptr`` and ``field`` (the field index of every node), and supports PyG's
    ``to_data_list()`` / ``get_example()``.
    """
    if device is None:
        device = x.device if x is not None else torch.device("cpu")
    device = torch.device(device)
    B, n = int(num_graphs), int(num_fields)
    s = _structure(B, n, device)
    adj = DenseAdj.complete(B, n, self_loops=self_loops, device=device)
    attrs = dict(node_attrs)
    if x is not None:
        attrs["x"] = to_flat(x) if x.dim() == 3 else x
    for key, value in attrs.items():
        if value.size(0) != B * n:
            raise ValueError(f"node attribute {key!r} must have B*n = {B * n} rows, got {tuple(value.shape)}")
    edge_index = adj.edge_index
    g = Batch(edge_index=edge_index, batch=s["batch"], ptr=s["ptr"], field=s["field"], **attrs)
    if y is not None:
        g.y = y
    g.adj = adj
    g.num_fields = n
    g.self_loops = self_loops
    # What PyG needs to split the batch back into graphs.
    g._num_graphs = B
    g.num_nodes = B * n
    g._store._num_nodes = _Repeat(n, B)  # per-graph node counts, read by ``to_data_list``
    node_slices = {key: s["ptr"] for key in ("field", *attrs)}
    g._slice_dict = {**node_slices, "edge_index": s["graph_ptr"] * adj.k * n}
    g._inc_dict = {**{key: s["zeros"] for key in node_slices}, "edge_index": s["ptr"][:-1]}
    if y is not None:
        g._slice_dict["y"], g._inc_dict["y"] = s["graph_ptr"], s["zeros"]
    return g


def batch_graph(batch: TabularBatch, self_loops: bool = True) -> Batch:
    """A :class:`~fgraph.data.TabularBatch` as a PyG ``Batch`` of fully-connected field graphs (see
    :func:`field_graph`).

    Nodes carry ``ids``, ``value`` and ``field``; multi-valued nodes also ``bag`` (other nodes a bag holding
    just their id). The embedding is a model's job, so ``x`` is not set here.
    """
    B, n = batch.ids.shape
    node = {"ids": batch.ids.reshape(B * n)}
    if batch.values is not None:
        node["value"] = batch.values.reshape(B * n)
    if batch.bags is not None:
        L = batch.bags.size(-1)
        bag = torch.full((B, n, L), -1, dtype=batch.bags.dtype, device=batch.bags.device)
        bag[..., 0] = batch.ids
        bag[:, batch.space.bag_positions] = batch.bags
        node["bag"] = bag.reshape(B * n, L)
    return field_graph(B, n, self_loops=self_loops, y=batch.y, device=batch.ids.device, **node)


def graph_batches(batches, self_loops: bool = True):
    """Iterate ``batches`` (a :class:`~fgraph.data.FieldLoader` or any iterable of
    :class:`~fgraph.data.TabularBatch`) as PyG ``Batch`` objects of field graphs (:func:`batch_graph`)."""
    for batch in batches:
        yield batch_graph(batch, self_loops)
