r"""A linear map with its own weight per field (node type)."""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn import HeteroLinear


class FieldwiseLinear(HeteroLinear):
    r"""PyG's :class:`~torch_geometric.nn.HeteroLinear` with a fast path for field graphs:
    :math:`\mathbf{x}'_v = \mathbf{W}^{(t_v)} \mathbf{x}_v + \mathbf{b}^{(t_v)}`, one weight per node type
    :math:`t_v` (per field, for fgraph's layers).

    On any graph, pass each node's type. On a batch of field graphs, node ``b * n + i`` is field ``i``, so
    ``node_type=None`` runs the map as one batched product over the ``(B, n, d)`` view, with no sorting or
    per-type loop.

    Args:
        in_channels: input size.
        out_channels: output size.
        num_types: number of node types (fields) ``n``.
        bias: learn a per-type bias.

    Shapes:
        - **input:** ``(N, in_channels)``, node types ``(N,)`` or None (then ``N`` is a multiple of ``n``)
        - **output:** ``(N, out_channels)``
    """

    def __init__(self, in_channels: int, out_channels: int, num_types: int, bias: bool = True):
        super().__init__(in_channels, out_channels, num_types, is_sorted=False, bias=bias)

    def forward(self, x: Tensor, type_vec: Tensor | None = None) -> Tensor:
        if type_vec is not None:
            if type_vec.shape != x.shape[:1]:
                raise ValueError(f"node_type must have one entry per node ({x.size(0)}), got {tuple(type_vec.shape)}")
            if type_vec.numel() and (int(type_vec.min()) < 0 or int(type_vec.max()) >= self.num_types):
                raise ValueError(f"node_type values must lie in [0, {self.num_types}), got "
                                 f"[{int(type_vec.min())}, {int(type_vec.max())}]")
            return super().forward(x, type_vec)
        n = self.num_types
        if x.size(0) % n:
            raise ValueError(f"without node_type the nodes must be whole field graphs of {n} fields; got "
                             f"{x.size(0)} nodes (pass node_type for other graphs)")
        dense = x.view(-1, n, x.size(-1))
        # (n, B, d) @ (n, d, d') -> (n, B, d'): one batched matmul; faster than einsum's generic route.
        out = torch.bmm(dense.transpose(0, 1), self.weight).transpose(0, 1)
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(x.size(0), self.out_channels)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, num_types={self.num_types}, "
                f"bias={self.bias is not None})")
