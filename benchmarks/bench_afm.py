"""AFM training throughput: fgraph against DeepCTR-Torch's AFM, and fgraph's pooling against a dense einsum form.

Training steps (forward + backward; no optimiser step) on identical batches: B = 4096 rows of n = 10
categorical fields (100 values each), embedding d = 16, attention factor 8 (DeepCTR-Torch's default), 2
threads, median of interleaved repeats. Rows:

* whole model: fgraph's ``AFM`` (one embedding table, first-order term, ``AttentiveEdgePooling``) against
  ``deepctr_torch.models.AFM`` (its per-field tables, linear part and ``AFMLayer``) on the same ids;
* pooling layer: ``AttentiveEdgePooling`` against DeepCTR-Torch's ``AFMLayer`` and against a dense einsum
  implementation of AFM Eq. 4-5, all from the same ``(B, n, d)`` embeddings.

DeepCTR-Torch is optional (``pip install deepctr-torch``, in the ``bench`` extra); without it only the einsum
comparison runs.

    python benchmarks/bench_afm.py [--repeats 7] [--threads 2] [--fields 10 39]
"""
from __future__ import annotations

import torch

from common import parse_args, time_interleaved, train_step
from fgraph.data.loader import TabularBatch
from fgraph.data.space import FeatureSpace
from fgraph.models import AFM
from fgraph.nn import AttentiveEdgePooling


def dense_afm_pooling(pool: AttentiveEdgePooling, x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor):
    """AFM Eq. 4-5 in plain dense PyTorch: all n x n products, the i < j ones kept, einsum attention."""
    inter = (x.unsqueeze(2) * x.unsqueeze(1))[:, rows, cols]                   # (B, P, d)
    hidden = torch.relu(torch.einsum("bpd,td->bpt", inter, pool.lin.weight) + pool.lin.bias)
    alpha = torch.softmax(torch.einsum("bpt,t->bp", hidden, pool.att.weight[0]), dim=1)
    return torch.einsum("bp,bpd->bd", alpha, inter)


def deepctr_models(n: int, card: int, d: int, att: int):
    """DeepCTR-Torch's AFM and AFMLayer, or None when it is not installed."""
    try:
        from deepctr_torch.inputs import SparseFeat
        from deepctr_torch.layers import AFMLayer
        from deepctr_torch.models import AFM as DeepCTRAFM
    except ImportError:
        return None, None
    columns = [SparseFeat(f"f{k}", card, embedding_dim=d) for k in range(n)]
    model = DeepCTRAFM(columns, columns, attention_factor=att, afm_dropout=0.0, task="binary")
    return model, AFMLayer(d, att)


def options(parser) -> None:
    parser.set_defaults(fields=[10], repeats=7)
    parser.add_argument("--attention", type=int, default=8, help="attention factor")
    parser.add_argument("--cardinality", type=int, default=100, help="values per field")


def main():
    args = parse_args(__doc__, extra=options)
    B, d, card = args.batch, args.dim, args.cardinality
    print(f"B={B} d={d} attention={args.attention} threads={args.threads}; forward + backward, "
          f"median of {args.repeats}")
    print(f"{'n':>3} {'what':<30} {'samples/s':>12} {'vs fgraph':>10}")
    for n in args.fields:
        names = [f"f{k}" for k in range(n)]
        space = FeatureSpace(names, ["id"] * n, [card] * n, names)
        ids = torch.randint(0, card, (B, n))
        batch = TabularBatch(ids, None, None, torch.randint(0, 2, (B,)).float(), space)
        ours = AFM(space, embed_dim=d, attention_dim=args.attention)
        theirs, their_layer = deepctr_models(n, card, d, args.attention)
        x = torch.randn(B, n, d, requires_grad=True)
        rows, cols = torch.triu_indices(n, n, 1)

        def report(title, fns, modules):
            steps = {name: train_step(modules[name], fn) for name, fn in fns.items()}
            t = time_interleaved(steps, repeats=args.repeats)
            for name in fns:
                print(f"{n:>3} {title + ': ' + name:<30} {B / t[name]:>12,.0f} {t['fgraph'] / t[name]:>9.2f}x")
            print("    fgraph speed-up: " + ", ".join(f"{t[k] / t['fgraph']:.2f}x over {k}" for k in fns
                                                    if k != "fgraph"), flush=True)

        if theirs is not None:
            X = ids.float()
            report("AFM model", {"fgraph": lambda: ours(batch), "deepctr-torch": lambda: theirs(X)},
                   {"fgraph": ours, "deepctr-torch": theirs})
        else:
            print("    (deepctr-torch is not installed: pip install deepctr-torch to compare with it)")
        pool = ours.pooling
        fns = {"fgraph": lambda: pool(x), "dense einsum": lambda: dense_afm_pooling(pool, x, rows, cols)}
        modules = {"fgraph": pool, "dense einsum": pool}
        if their_layer is not None:
            fns["deepctr-torch"] = lambda: their_layer(list(x.split(1, dim=1)))
            modules["deepctr-torch"] = their_layer
        report("pooling", fns, modules)


if __name__ == "__main__":
    main()
