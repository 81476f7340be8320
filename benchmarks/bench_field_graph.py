"""Field-graph message passing: general PyG path vs fgraph's dense fast path vs plain dense PyTorch.

The operator is the core of GraphFM-style layers: attention over element-wise interactions,
    m_i = sum_j softmax_j(a^T (x_i * x_j)) W (x_i * x_j),
timed as a training step (forward + backward) at B = 4096, d = 16, n in {10, 39}, 2 threads.

    python benchmarks/bench_field_graph.py [--repeats 7]
"""
from __future__ import annotations

import torch
from torch import nn

from common import parse_args, time_interleaved, train_step
from fgraph.graph import DenseAdj
from fgraph.nn import FieldMessagePassing, edge_softmax


class InteractionAttention(FieldMessagePassing):
    def __init__(self, dim: int):
        super().__init__(aggr="sum")
        self.att = nn.Linear(dim, 1, bias=False)
        self.lin = nn.Linear(dim, dim, bias=False)

    def forward(self, x, edge_index):
        return self.propagate(edge_index, x=x)

    def message(self, x_i, x_j, index, ptr, size_i):
        inter = x_i * x_j
        return edge_softmax(self.att(inter), index, ptr, size_i) * self.lin(inter)


def dense_reference(layer: InteractionAttention, x: torch.Tensor) -> torch.Tensor:
    """What a dense CTR library computes: broadcasting on (B, n, n, d)."""
    inter = x.unsqueeze(2) * x.unsqueeze(1)
    alpha = torch.softmax(layer.att(inter), dim=2)
    return (alpha * layer.lin(inter)).sum(2)


def main():
    args = parse_args(__doc__, repeats=7)
    print(f"B={args.batch} d={args.dim} threads={args.threads}, median of {args.repeats} training steps")
    print(f"{'n':>4} {'dense ms':>9} {'fast ms':>9} {'general ms':>11} {'fast/dense speed':>17} {'general/dense speed':>20}")
    for n in args.fields:
        layer = InteractionAttention(args.dim)
        x_dense = torch.randn(args.batch, n, args.dim, requires_grad=True)
        x = x_dense.view(args.batch * n, args.dim)
        adj = DenseAdj.complete(args.batch, n)
        edge_index = adj.edge_index
        t = time_interleaved({
            "dense": train_step(layer, lambda: dense_reference(layer, x_dense)),
            "fast": train_step(layer, lambda: layer(x, adj)),
            "general": train_step(layer, lambda: layer(x, edge_index)),
        }, repeats=args.repeats)
        print(f"{n:>4} {t['dense'] * 1e3:>9.1f} {t['fast'] * 1e3:>9.1f} {t['general'] * 1e3:>11.1f} "
              f"{t['dense'] / t['fast']:>16.2f}x {t['dense'] / t['general']:>19.2f}x")


if __name__ == "__main__":
    main()
