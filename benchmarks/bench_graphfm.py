"""GraphFM throughput: fgraph's layers (fast path) against a dense einsum implementation of the same equations.

Training steps (forward + backward) at B = 4096, d = 16, n in {10, 39}, 2 threads; median of interleaved
repeats. Reports samples/s and the ratio fgraph / dense for the edge scorer, for top-k + attention, and for
a whole 3-layer GraphFM (embedding lookup excluded: both sides start from the same (B, n, d) tensor).

A second table times the attention layer on a top-k graph two ways inside fgraph: all n x n pair logits with
the dropped pairs masked (what a top-k ``DenseAdj``, whose sources are distinct, gets) against gathering each
node's k sources (what an adjacency without that promise gets), at d = 16 and at GraphFM's inner width 2d.

    python benchmarks/bench_graphfm.py [--repeats 5]
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from common import compare, header, parse_args
from fgraph.graph import DenseAdj
from fgraph.nn import EdgeScorer, FieldReadout, InteractionAttention, TopKEdges


def dense_scores(scorer: EdgeScorer, x: torch.Tensor) -> torch.Tensor:
    inter = x.unsqueeze(2) * x.unsqueeze(1)                                   # (B, n, n, d)
    h = torch.relu(torch.einsum("bijd,hd->bijh", inter, scorer.lin1.weight) + scorer.lin1.bias)
    return torch.sigmoid(torch.einsum("bijh,oh->bijo", h, scorer.lin2.weight) + scorer.lin2.bias).squeeze(-1)


def dense_layer(scorer, conv: InteractionAttention, x: torch.Tensor, m: int) -> torch.Tensor:
    """One GraphFM layer in plain dense PyTorch: Eq. 7-13 on (B, n, n, d) / (B, n, m, d) tensors."""
    B, n, d = x.shape
    p = dense_scores(scorer, x)
    p_kept, idx = torch.topk(p, m, dim=-1)
    xj = torch.gather(x.unsqueeze(1).expand(B, n, n, d), 2, idx.unsqueeze(-1).expand(B, n, m, d))
    inter = x.unsqueeze(2) * xj                                               # (B, n, m, d)
    c = F.leaky_relu(torch.einsum("bimd,hd->bimh", inter, conv.att.weight), conv.negative_slope)
    alpha = torch.softmax(c, dim=2) * p_kept.unsqueeze(-1)
    v = torch.einsum("bimd,od->bimo", inter, conv.lin.weight).view(B, n, m, conv.heads, conv.out_channels)
    out = torch.einsum("bimh,bimhc->bihc", alpha, v).reshape(B, n, -1)
    return torch.relu(out)


class Stack(nn.Module):
    def __init__(self, n: int, d: int, neighbours: list[int]):
        super().__init__()
        self.neighbours = neighbours
        self.scorers, self.convs, dims, width = nn.ModuleList(), nn.ModuleList(), [], d
        for _ in neighbours:
            self.scorers.append(EdgeScorer(width))
            self.convs.append(InteractionAttention(width, d, heads=2))
            width = 2 * d
            dims.append(width)
        self.readout = FieldReadout(n, dims)

    def fgraph(self, x):
        B, n, d = x.shape
        adj = DenseAdj.complete(B, n, device=x.device)
        h, states = x.reshape(B * n, d), []
        for scorer, conv, m in zip(self.scorers, self.convs, self.neighbours):
            kept, w = TopKEdges(m)(scorer(h, adj), adj)
            h = conv(h, kept, w)
            states.append(h.view(B, n, -1))
        return self.readout(states)

    def dense(self, x):
        h, states = x, []
        for scorer, conv, m in zip(self.scorers, self.convs, self.neighbours):
            h = dense_layer(scorer, conv, h, m)
            states.append(h)
        return self.readout(states)


def main():
    args = parse_args(__doc__)
    B, d = args.batch, args.dim
    print(f"B={B} d={d} threads={args.threads}; training steps, median of {args.repeats}")
    header("dense")
    for n in args.fields:
        m = [n, math.ceil(n / 2), math.ceil(n / 4)]
        x = torch.randn(B, n, d, requires_grad=True)
        flat = x.view(B * n, d)
        adj = DenseAdj.complete(B, n)
        scorer, conv = EdgeScorer(d), InteractionAttention(d, d, heads=2)
        model = Stack(n, d, m)
        kept_adj, kept_w = TopKEdges(m[1])(scorer(flat, adj).detach(), adj)
        cases = {
            "edge scorer": (lambda: dense_scores(scorer, x), lambda: scorer(flat, adj), scorer),
            f"attention (k={m[1]})": (
                lambda: dense_layer_from_kept(conv, x, kept_adj, kept_w),
                lambda: conv(flat, kept_adj, kept_w), conv),
            f"GraphFM {m}": (lambda: model.dense(x), lambda: model.fgraph(x), model),
        }
        compare(cases, B, args.repeats, n)
    header("gathered")
    for n in args.fields:
        for width in (d, 2 * d):
            x = torch.randn(B * n, width, requires_grad=True)
            adj = DenseAdj.complete(B, n)
            kept, w = TopKEdges(math.ceil(n / 2))(EdgeScorer(width)(x, adj).detach(), adj)
            gathered = DenseAdj(B, n, kept.index)                # same edges, no promise of distinct sources
            conv = InteractionAttention(width, d, heads=2)
            compare({f"attention d={width} k={kept.k}, masked": (
                lambda: conv(x, gathered, w), lambda: conv(x, kept, w), conv)}, B, args.repeats, n)


def dense_layer_from_kept(conv: InteractionAttention, x: torch.Tensor, adj: DenseAdj, w: torch.Tensor):
    """Attention alone on given kept neighbours, in dense einsum form."""
    B, n, d = x.shape
    idx = adj.index
    m = idx.size(-1)
    xj = torch.gather(x.unsqueeze(1).expand(B, n, n, d), 2, idx.unsqueeze(-1).expand(B, n, m, d))
    inter = x.unsqueeze(2) * xj
    c = F.leaky_relu(torch.einsum("bimd,hd->bimh", inter, conv.att.weight), conv.negative_slope)
    alpha = torch.softmax(c, dim=2) * adj.edges(w).unsqueeze(-1)
    v = torch.einsum("bimd,od->bimo", inter, conv.lin.weight).view(B, n, m, conv.heads, conv.out_channels)
    return torch.relu(torch.einsum("bimh,bimhc->bihc", alpha, v).reshape(B, n, -1))


if __name__ == "__main__":
    main()
