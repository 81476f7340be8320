r"""Multi-head self-attention over the nodes of a graph (AutoInt's interacting layer, Fi-GNN's first layer)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..graph.adjacency import DenseAdj
from .message_passing import FieldMessagePassing, edge_softmax


class FieldSelfAttention(FieldMessagePassing):
    r"""Multi-head key-value attention of every node over its neighbours, with a residual:

    .. math::
        \alpha^h_{ij} &= \operatorname{softmax}_{j \in \mathcal{N}(i)}
            \big\langle \mathbf{W}^h_Q \mathbf{h}_i, \mathbf{W}^h_K \mathbf{h}_j \big\rangle \\
        \mathbf{h}'_i &= \mathrm{ReLU}\Big(\big\Vert_{h=1}^{H} \sum_{j \in \mathcal{N}(i)} \alpha^h_{ij}
            \mathbf{W}^h_V \mathbf{h}_j + \mathbf{W}_R \mathbf{h}_i\Big)

    On the complete field graph with self-loops this is AutoInt's interacting layer, which Fi-GNN applies to
    the embeddings before its graph steps. The dot product is not scaled, as in both papers. On a
    :class:`~fgraph.graph.DenseAdj` the attention runs as one fused dense kernel
    (:func:`torch.nn.functional.scaled_dot_product_attention`).

    Args:
        in_channels: node feature size ``d``.
        out_channels: size per head ``D``; the output has ``H * D`` channels.
        heads: number of heads ``H``.
        residual: add :math:`\mathbf{W}_R \mathbf{h}_i`.

    Shapes:
        - **input:** node features ``(N, d)``, ``edge_index`` ``(2, E)`` or a :class:`~fgraph.graph.DenseAdj`
        - **output:** ``(N, H * D)``
    """

    def __init__(self, in_channels: int, out_channels: int, heads: int = 2, residual: bool = True):
        super().__init__(aggr="sum", node_dim=0)
        self.in_channels, self.out_channels, self.heads = in_channels, out_channels, heads
        # The fused kernel below is for DenseAdj only; sparse adjacencies take PyG's message path.
        self.fuse = False
        self.query = nn.Linear(in_channels, heads * out_channels, bias=False)
        self.key = nn.Linear(in_channels, heads * out_channels, bias=False)
        self.value = nn.Linear(in_channels, heads * out_channels, bias=False)
        self.res = nn.Linear(in_channels, heads * out_channels, bias=False) if residual else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.query, self.key, self.value, self.res):
            if lin is not None:
                nn.init.xavier_uniform_(lin.weight)

    def forward(self, x: Tensor, edge_index: Tensor | DenseAdj) -> Tensor:
        if x.dim() != 2 or x.size(-1) != self.in_channels:
            raise ValueError(f"x must have shape (N, {self.in_channels}), got {tuple(x.shape)}")
        H, D = self.heads, self.out_channels
        q, k, v = (lin(x).view(-1, H, D) for lin in (self.query, self.key, self.value))
        out = self.propagate(edge_index, q=q, k=k, v=v).reshape(x.size(0), H * D)
        if self.res is not None:
            out = out + self.res(x)
        return torch.relu(out)

    def message(self, q_i: Tensor, k_j: Tensor, v_j: Tensor, index, ptr, size_i) -> Tensor:
        alpha = edge_softmax((q_i * k_j).sum(-1), index, ptr, size_i)            # (..., H)
        return alpha.unsqueeze(-1) * v_j

    def message_and_aggregate(self, adj_t: DenseAdj, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        B, n, _ = adj_t.shape
        q, k, v = (t.view(B, n, self.heads, self.out_channels).transpose(1, 2) for t in (q, k, v))
        mask = None
        if not adj_t.is_broadcast:
            mask = adj_t.dense_adjacency().bool().unsqueeze(1)                   # (B, 1, n, n)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0)  # (B, H, n, D)
        return out.transpose(1, 2).reshape(B * n, self.heads, self.out_channels)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, heads={self.heads}, "
                f"residual={self.res is not None})")
