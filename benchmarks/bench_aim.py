"""AIM's retrained model against the unpruned base: training throughput, side by side in one run.

Training steps (forward + backward; no optimiser step) on identical batches of B rows of n categorical fields
(100 values each), embedding d, 2 threads, median of interleaved repeats. For each base (FM, DeepFM, IPNN; MLP
400-400-400) the rows are:

* ``base``: the plain registered model (``fm``, ``deepfm``, ``ipnn``);
* ``AIM, unpruned``: AIM holding every pair with all four interaction functions and every dimension (what the
  order-2 search trains, without its optimiser);
* ``AIM, retrained``: AIM holding only a kept set. With ``--found RUN`` the kept set of that AIM run
  (its ``search.json``, for its number of fields); otherwise a set of the size the AIM paper reports: 20% of
  the pairs, each with one function (drawn at random, seeded), 2% of the triples grown from them, and half of
  every field's dimensions.

    python benchmarks/bench_aim.py [--fields 10 39] [--found RUN] [--repeats 7] [--threads 2]
"""
from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import torch

from common import parse_args, time_interleaved, train_step
from fgraph.data.loader import TabularBatch
from fgraph.data.space import FeatureSpace
from fgraph.models import build_model
from fgraph.nn.hyperedge_interaction import FUNCTIONS


def paper_sized_set(names: list[str], d: int, seed: int = 0) -> dict:
    """A kept set of the size the AIM paper reports (Table 3): 20% of the pairs, 2% of the triples."""
    rng = random.Random(seed)
    pairs = list(itertools.combinations(range(len(names)), 2))
    kept_pairs = rng.sample(pairs, max(1, round(0.2 * len(pairs))))
    triples = sorted({tuple(sorted({*p, f})) for p in kept_pairs for f in range(len(names)) if f not in p})
    kept_triples = rng.sample(triples, max(1, round(0.02 * len(list(itertools.combinations(names, 3))))))
    interactions = [{"fields": [names[i] for i in q], "function": rng.choice(FUNCTIONS)}
                    for q in kept_pairs + kept_triples]
    dims = {name: sorted(rng.sample(range(d), d // 2)) for name in names}
    return {"interactions": interactions, "dims": dims}


def options(parser) -> None:
    parser.set_defaults(fields=[10, 39], repeats=7)
    parser.add_argument("--cardinality", type=int, default=100, help="values per field")
    parser.add_argument("--found", type=Path, help="an AIM run directory whose kept set to time")


def main():
    args = parse_args(__doc__, extra=options)
    B, d, card = args.batch, args.dim, args.cardinality
    print(f"B={B} d={d} threads={args.threads}; forward + backward, median of {args.repeats}")
    print(f"{'n':>3} {'base':<7} {'what':<18} {'params':>10} {'samples/s':>12} {'vs base':>8} {'vs unpruned':>12}")
    for n in args.fields:
        names = [f"f{k}" for k in range(n)]
        space = FeatureSpace(names, ["id"] * n, [card] * n, names)
        batch = TabularBatch(torch.randint(0, card, (B, n)), None, None, torch.randint(0, 2, (B,)).float(), space)
        if args.found is not None:
            found = json.loads((args.found / "search.json").read_text())["found"]
            if len({f for e in found["interactions"] for f in e["fields"]} - set(names)) or \
                    len(found.get("dims") or names) != n:
                print(f"{n:>3} (the found set of {args.found} is for other fields: skipped)")
                continue
            found = {"interactions": found["interactions"],
                     "dims": {f"f{k}": c for k, c in enumerate((found.get("dims") or {}).values())} or None}
        else:
            found = paper_sized_set(names, d)
        every_pair = [{"fields": [names[i], names[j]], "function": f}
                      for i, j in itertools.combinations(range(n), 2) for f in FUNCTIONS]
        for base in ("fm", "deepfm", "ipnn"):
            mlp = {} if base == "fm" else {"mlp_dims": [400, 400, 400]}
            models = {
                "base": build_model(base, space, embed_dim=d, **mlp),
                "AIM, unpruned": build_model("aim", space, base=base, embed_dim=d, interactions=every_pair,
                                             candidates=None, **mlp),
                "AIM, retrained": build_model("aim", space, base=base, embed_dim=d, found=found, **mlp),
            }
            steps = {name: train_step(m, lambda m=m: m(batch)) for name, m in models.items()}
            t = time_interleaved(steps, repeats=args.repeats)
            for name, m in models.items():
                params = sum(p.numel() for p in m.parameters())
                print(f"{n:>3} {base:<7} {name:<18} {params:>10,} {B / t[name]:>12,.0f} "
                      f"{t['base'] / t[name]:>7.2f}x {t['AIM, unpruned'] / t[name]:>11.2f}x", flush=True)


if __name__ == "__main__":
    main()
