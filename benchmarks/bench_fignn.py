"""Fi-GNN throughput: fgraph's layers (field-graph fast path and general edge_index path) against a dense
implementation of the same equations, and against RecBole's FiGNN when it is installed.

Training steps (forward + backward) at B = 4096, d = 16, n in {10, 39}, 2 threads; median of interleaved
repeats. Both sides start from the same (B, n, d) embeddings (the lookup is excluded).

    python benchmarks/bench_fignn.py [--repeats 5] [--steps 3]

The RecBole comparison needs `pip install --no-deps recbole` (its own requirements, such as ray, are not
needed for this: the benchmark loads only the model file, with RecBole's framework classes stubbed out).
Its FiGNN always starts with multi-head self-attention and scores with weights computed from the flattened
states, so it is compared with fgraph's FiGNN(self_attention=True) of the same width and steps.
"""
from __future__ import annotations

import importlib.util
import sys
import types

import torch
import torch.nn.functional as F
from torch import nn

from common import compare, header, parse_args
from fgraph.graph import DenseAdj
from fgraph.nn import EdgeAttention, FieldReadout, FieldSelfAttention, GatedFieldConv


def dense_edge_attention(att: EdgeAttention, h: torch.Tensor) -> torch.Tensor:
    n = h.size(1)
    w = att.att.weight.view(2, -1)
    logits = F.leaky_relu((h @ w[0]).unsqueeze(2) + (h @ w[1]).unsqueeze(1), att.negative_slope)
    return torch.softmax(logits.masked_fill(torch.eye(n, dtype=torch.bool), float("-inf")), -1)  # (B, n, n)


def dense_step(conv: GatedFieldConv, h: torch.Tensor, A: torch.Tensor, e0: torch.Tensor) -> torch.Tensor:
    """m = W_in^(i) sum_j A_ij W_out^(j) h_j + b_i; GRU; residual — as batched products over (n, d, d)."""
    B, n, d = h.shape
    sent = torch.bmm(h.transpose(0, 1), conv.lin_out.weight).transpose(0, 1)
    m = torch.bmm(torch.bmm(A, sent).transpose(0, 1), conv.lin_in.weight).transpose(0, 1) + conv.lin_in.bias
    return conv.gru(m.reshape(B * n, d), h.reshape(B * n, d)).view(B, n, d) + e0


class FiGNNStack(nn.Module):
    """Edge attention once, ``steps`` shared gated steps, attentional readout."""

    def __init__(self, n: int, d: int, steps: int):
        super().__init__()
        self.steps = steps
        self.att, self.conv = EdgeAttention(d), GatedFieldConv(d, n)
        self.readout = FieldReadout(n, [d], pooling="attention")

    def fgraph(self, x, general=False):
        B, n, d = x.shape
        adj = DenseAdj.complete(B, n, self_loops=False)
        edges = adj.edge_index if general else adj
        h = e0 = x.reshape(B * n, d)
        a = self.att(h, edges)
        for _ in range(self.steps):
            h = self.conv(h, edges, a, residual=e0)
        return self.readout([h.view(B, n, d)])

    def dense(self, x):
        A = dense_edge_attention(self.att, x)
        h = x
        for _ in range(self.steps):
            h = dense_step(self.conv, h, A, x)
        return self.readout([h])


class _ContextRecommenderStub(nn.Module):
    """What RecBole's FiGNN takes from its base class: the embedding size, field count and device."""

    def __init__(self, config, dataset):
        super().__init__()
        self.embedding_size, self.num_feature_field = config["embedding_size"], config["num_fields"]
        self.device = torch.device("cpu")


def load_recbole_fignn():
    """RecBole's FiGNN class, or None. Only its model file is loaded; the framework it imports is stubbed."""
    spec = importlib.util.find_spec("recbole")
    if spec is None:
        return None
    path = f"{spec.submodule_search_locations[0]}/model/context_aware_recommender/fignn.py"
    stubs = {"recbole.utils": types.ModuleType("recbole.utils"),
             "recbole.model.abstract_recommender": types.ModuleType("recbole.model.abstract_recommender")}
    stubs["recbole.utils"].InputType = types.SimpleNamespace(POINTWISE="pointwise")
    stubs["recbole.model.abstract_recommender"].ContextRecommender = _ContextRecommenderStub
    saved = {k: sys.modules.get(k) for k in stubs}
    sys.modules.update(stubs)
    try:
        module_spec = importlib.util.spec_from_file_location("recbole_fignn", path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return module.FiGNN


def build_recbole(cls, n: int, d: int, steps: int, heads: int = 2):
    return cls({"attention_size": d, "n_layers": steps + 1, "num_heads": heads, "hidden_dropout_prob": 0.0,
                "attn_dropout_prob": 0.0, "embedding_size": d, "num_fields": n}, None)


class FgraphWithSelfAttention(nn.Module):
    def __init__(self, n: int, d: int, steps: int, heads: int = 2):
        super().__init__()
        self.attn = FieldSelfAttention(d, d // heads, heads)
        self.stack = FiGNNStack(n, d, steps)

    def forward(self, x):
        B, n, d = x.shape
        h = self.attn(x.reshape(B * n, d), DenseAdj.complete(B, n)).view(B, n, d)
        return self.stack.fgraph(h)


def main():
    args = parse_args(__doc__, extra=lambda p: p.add_argument("--steps", type=int, default=3))
    B, d = args.batch, args.dim
    recbole_cls = load_recbole_fignn()
    print(f"B={B} d={d} steps={args.steps} threads={args.threads}; training steps, median of {args.repeats}")
    header()
    for n in args.fields:
        x = torch.randn(B, n, d, requires_grad=True)
        flat = x.view(B * n, d)
        adj = DenseAdj.complete(B, n, self_loops=False)
        att, conv = EdgeAttention(d), GatedFieldConv(d, n)
        A = dense_edge_attention(att, x).detach()
        a = adj.flatten_edges(torch.gather(A, 2, adj.local_index().expand(B, n, n - 1)))
        stack = FiGNNStack(n, d, args.steps)
        cases = {
            "edge attention": (lambda: dense_edge_attention(att, x), lambda: att(flat, adj), att),
            "gated step": (lambda: dense_step(conv, x, A, x), lambda: conv(flat, adj, a, residual=flat), conv),
            f"Fi-GNN T={args.steps}": (lambda: stack.dense(x), lambda: stack.fgraph(x), stack),
            f"Fi-GNN T={args.steps} edge_index": (lambda: stack.dense(x), lambda: stack.fgraph(x, True), stack),
        }
        if recbole_cls is not None:
            peer = build_recbole(recbole_cls, n, d, args.steps)
            ours = FgraphWithSelfAttention(n, d, args.steps)
            both = nn.ModuleList([peer, ours])
            cases[f"vs RecBole FiGNN T={args.steps}"] = (lambda: peer.fignn_layer(x), lambda: ours(x), both)
        compare(cases, B, args.repeats, n)


if __name__ == "__main__":
    main()
