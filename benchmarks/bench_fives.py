"""FIVES throughput: fgraph's layers and model against a dense einsum implementation of the same equations.

Training steps (forward + backward) at B = 4096, d = 16, n in {10, 39}, 2 threads; median of interleaved
repeats. Reports samples/s and the ratio fgraph / dense for the propagation layer (Eq. 2) with the global
adjacency, for the same layer fed per-edge weights (the general dense message path, for reference), and for a
whole FIVES with K = 3 (adjacency tensor Eq. 7-8, two propagation layers, per-order flatten readout; the
embedding lookup excluded: both sides start from the same (B, n, d) tensor).

    python benchmarks/bench_fives.py [--repeats 5]
"""
from __future__ import annotations

import torch
from torch import nn

from common import compare, header, parse_args
from fgraph.data.space import FeatureSpace
from fgraph.graph import DenseAdj
from fgraph.models import FIVES
from fgraph.nn import AdjacencyPropagation


def dense_propagation(conv: AdjacencyPropagation, x0, h, a):
    """Eq. 2 with the global (n, n) adjacency ``a``: p = A (W_j x0_j) / max(1, rowsum A); n = p * h."""
    m = torch.einsum("bni,nio->bno", x0, conv.lin.weight)
    return torch.einsum("ij,bjd->bid", a / a.sum(1, keepdim=True).clamp(min=1), m) * h


def dense_adjacency(model: FIVES) -> list[torch.Tensor]:
    """Eq. 7 (straight-through binarisation, zero diagonal) and Eq. 8."""
    t = model.adjacency
    probs, prev, out = torch.sigmoid(t.weight), None, []
    for k in range(t.num_layers):
        a = probs[k] if prev is None else (prev @ probs[k]) / prev.sum(1, keepdim=True).clamp(min=1)
        a = a * t.mask
        hard = (a > t.thresholds[k]).float()
        prev = a + (hard - a).detach()
        out.append(torch.where(a > 0, torch.sigmoid(torch.logit(a, eps=1e-6) / t.tau), torch.zeros_like(a)))
    return out


def dense_fives(model: FIVES, x):
    B = x.size(0)
    m = torch.einsum("bni,nio->bno", x, model.conv.lin.weight)
    h, states = x, [x]
    for a in dense_adjacency(model):
        h = torch.einsum("ij,bjd->bid", a / a.sum(1, keepdim=True).clamp(min=1), m) * h
        states.append(h)
    logits = [head.proj(s.reshape(B, -1)).squeeze(-1) for head, s in zip(model.readout.heads, states)]
    return torch.stack(logits, 1).mean(1)


class Given(nn.Module):
    """Stands in for the embedding: returns the benchmark's (B, n, d) input."""

    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self, _batch):
        return self.x


def main():
    args = parse_args(__doc__, extra=lambda p: p.add_argument("--orders", type=int, default=3))
    B, d = args.batch, args.dim
    print(f"B={B} d={d} threads={args.threads}; training steps, median of {args.repeats}")
    header("dense")
    for n in args.fields:
        x = torch.randn(B, n, d, requires_grad=True)
        h = torch.randn(B, n, d)
        a = torch.rand(n, n)
        adj = DenseAdj.complete(B, n)
        conv = AdjacencyPropagation(d, n)
        pair = (x.view(B * n, d), h.view(B * n, d))
        flat_a = adj.flatten_edges(a.unsqueeze(0))
        names = [f"f{i}" for i in range(n)]
        model = FIVES(FeatureSpace(names, ["id"] * n, [4] * n, names), embed_dim=d, orders=args.orders)
        model.adjacency.set_temperature(0.5)          # Eq. 8 active, as during the search
        model.embedding = Given(x)
        cases = {
            "propagation, global adjacency": (lambda: dense_propagation(conv, x, h, a),
                                              lambda: conv(pair, adj, a), conv),
            "propagation, (E,) edge weights": (lambda: dense_propagation(conv, x, h, a),
                                               lambda: conv(pair, adj, flat_a), conv),
            f"FIVES K={args.orders}": (lambda: dense_fives(model, x), lambda: model(None), model),
        }
        compare(cases, B, args.repeats, n)


if __name__ == "__main__":
    main()
