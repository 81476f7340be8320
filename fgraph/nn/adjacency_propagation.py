r"""FIVES's graph convolution: cross each node's state with a weighted mean of its typed neighbours."""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn import HeteroLinear

from ..graph.adjacency import DenseAdj
from .message_passing import FieldMessagePassing


class AdjacencyPropagation(FieldMessagePassing):
    r"""One layer of FIVES (Xie et al., Eq. 2):

    .. math::
        \mathbf{n}^{(k)}_i = \mathbf{p}^{(k)}_i \odot \mathbf{n}^{(k-1)}_i, \qquad
        \mathbf{p}^{(k)}_i = \frac{\sum_{j} A^{(k)}_{ij}\, \mathbf{W}_{t(j)}\, \mathbf{n}^{(0)}_j}
                                  {\max\big(1, \sum_j A^{(k)}_{ij}\big)}

    where the sums run over the in-neighbours :math:`j` of :math:`i`, :math:`A^{(k)}_{ij}` is the weight of
    edge :math:`j \to i` and :math:`\mathbf{W}_{t(j)}` the transformation of node :math:`j`'s type (its field).
    For a 0/1 adjacency :math:`\mathbf{p}_i` is exactly the MEAN over the kept neighbours of Eq. 2, and 0 when
    none is kept; for soft weights it is their weighted mean, with a denominator of at least 1 so that a row
    of near-zero weights stays near zero instead of renormalising to a full neighbour.

    Inputs may be bipartite in the PyG way: ``x = (x_src, x_dst)`` takes the neighbours' features from
    ``x_src`` (FIVES: the embeddings :math:`\mathbf{n}^{(0)}`) and the multiplied state from ``x_dst``
    (:math:`\mathbf{n}^{(k-1)}`). A single tensor serves as both.

    On a :class:`~fgraph.graph.DenseAdj` the node type defaults to the node's position (its field), so
    ``num_types`` must then equal ``n``. When the edge weights are shared by all graphs -- a ``(n, k)``
    tensor on a ``DenseAdj`` whose neighbourhoods are shared, such as FIVES's global adjacency on the
    complete field graph -- the aggregation is one ``(n, n)`` by ``(B, n, d)`` matrix product.

    Args:
        channels: node feature size ``d``.
        num_types: number of node types (fields), one :math:`\mathbf{W}` each.

    Shapes:
        - **input:** node features ``(N, d)`` or a pair of them, ``edge_index`` ``(2, E)`` or a ``DenseAdj``,
          edge weights ``(E,)`` in the graph's edge order or, on a ``DenseAdj``, ``(n, k)`` shared by all
          graphs (optional: without weights every edge counts 1), node types ``(N,)`` (optional on a
          ``DenseAdj``), ``transformed`` ``(N, d)`` or, on a ``DenseAdj``, ``(B, n, d)`` (optional:
          :math:`\mathbf{W}_{t(j)} \mathbf{x}_j` from :meth:`transform`, for models that reuse it across layers)
        - **output:** ``(N, d)``
    """

    def __init__(self, channels: int, num_types: int):
        super().__init__(aggr="sum", node_dim=0)
        if int(channels) < 1 or int(num_types) < 1:
            raise ValueError(f"need channels >= 1 and num_types >= 1, got {channels} and {num_types}")
        self.channels, self.num_types = int(channels), int(num_types)
        self.lin = HeteroLinear(self.channels, self.channels, self.num_types, bias=False)

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()

    def transform(self, x: Tensor, edge_index: Tensor | DenseAdj, node_type: Tensor | None = None) -> Tensor:
        r""":math:`\mathbf{W}_{t(v)} \mathbf{x}_v` for every node ``v``: ``(N, d)``, or ``(B, n, d)`` on a
        ``DenseAdj`` without ``node_type`` (one batched product per field; its field-major memory layout is
        what the shared-weights aggregation consumes without a copy; ``.reshape(-1, d)`` gives node rows)."""
        if node_type is None:
            if not isinstance(edge_index, DenseAdj):
                if self.num_types != 1:
                    raise ValueError(f"{type(self).__name__} has {self.num_types} node types: pass node_type "
                                     f"(N,) for a graph given as edge_index")
                return x @ self.lin.weight[0]
            n = edge_index.num_nodes
            if n != self.num_types:
                raise ValueError(f"on a field graph the node type is the field, but the graph has {n} fields and "
                                 f"the layer {self.num_types} types; pass node_type")
            return torch.einsum("bni,nio->bno", x.view(-1, n, x.size(-1)), self.lin.weight)
        if node_type.shape != x.shape[:1]:
            raise ValueError(f"node_type must have shape ({x.size(0)},), got {tuple(node_type.shape)}")
        if node_type.numel() and not 0 <= int(node_type.min()) <= int(node_type.max()) < self.num_types:
            raise ValueError(f"node_type values must lie in 0..{self.num_types - 1}")
        return self.lin(x, node_type.long())

    def forward(self, x: Tensor | tuple[Tensor, Tensor], edge_index: Tensor | DenseAdj,
                edge_weight: Tensor | None = None, node_type: Tensor | None = None,
                transformed: Tensor | None = None) -> Tensor:
        x_src, x_dst = x if isinstance(x, (tuple, list)) else (x, x)
        if x_src.size(-1) != self.channels or x_dst.size(-1) != self.channels:
            raise ValueError(f"expected node features of size {self.channels}, got {tuple(x_src.shape)} and "
                             f"{tuple(x_dst.shape)}")
        src = self.transform(x_src, edge_index, node_type) if transformed is None else transformed
        if isinstance(edge_index, DenseAdj) and edge_weight is not None and edge_weight.dim() == 2:
            return self._propagate_shared(src, x_dst, edge_index, edge_weight)
        out = self.propagate(edge_index, x=src.reshape(-1, src.size(-1)), edge_weight=edge_weight)
        total, degree = out[:, :-1], out[:, -1:]
        return total / degree.clamp(min=1.0) * x_dst

    def message(self, x_j: Tensor, edge_weight: Tensor | None) -> Tensor:
        if edge_weight is None:
            w = x_j.new_ones(x_j.shape[:-1] + (1,))
        else:
            w = edge_weight.unsqueeze(-1)
        msg = w * x_j
        # The last channel carries the weight itself, so one pass also gives each node's degree.
        return torch.cat([msg, w.expand(*msg.shape[:-1], 1)], dim=-1)

    def _propagate_shared(self, src: Tensor, x_dst: Tensor, adj: DenseAdj, weight: Tensor) -> Tensor:
        B, n, k = adj.shape
        if weight.shape != (n, k):
            raise ValueError(f"shared edge weights on this graph must have shape (n, k) = ({n}, {k}), "
                             f"got {tuple(weight.shape)}")
        if adj.index is not None and adj.index.size(0) != 1:
            raise ValueError("shared (n, k) edge weights need neighbourhoods shared by all graphs; pass (E,) "
                             "edge weights for per-graph neighbourhoods")
        dense = weight if adj.is_broadcast else adj[0].dense_adjacency(weight.unsqueeze(0))[0]   # (n, n)
        # Normalise the (n, n) rows, not the (B, n, d) sums; then one (n, n) x (n, B*d) product.
        dense = dense / dense.sum(1, keepdim=True).clamp(min=1.0)
        p = torch.einsum("ij,bjd->bid", dense, src.view(B, n, -1) if src.dim() == 2 else src)   # field-major
        # The node-order operand first: the product comes out in node order and reads p in place, where
        # p.contiguous() * x_dst copied p back to node order first. The same values (the product commutes);
        # FIVES's inference against its dense reference went from 1.03 / 1.07 / 1.00x to 1.17 / 1.12 / 1.09x
        # at n = 10 / 23 / 39 (benchmarks.speed --models fives --repeats 15, 2 threads, the two runs in turn).
        return (x_dst.reshape(B, n, -1) * p).reshape(B * n, -1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.channels}, types={self.num_types})"
