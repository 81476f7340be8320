"""What subnormal weights cost a training step, and what ``TrainConfig(flush_denormal=True)`` buys back.

IFM under the regression protocol's optimiser (Adagrad, lr 0.1, ``attention_l2`` on the attention network's
W): embedding 256, attention 8, 26 field factors, dropout 0.1, batch 128, one thread, 10 synthetic fields of
500 values. Each round builds the model from one seed, takes ``--warmup`` steps (the attention weights that
no pair activates decay towards zero meanwhile) and then times ``--steps`` steps, forward, backward and
optimiser step apart. Rounds alternate between flushing off and on; the table gives medians over the rounds
and how many attention weights were subnormal (off) or exactly zero (on) at the end.

    python -m benchmarks.denormals [--rounds 3] [--warmup 200] [--steps 40]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from fgraph.data import FieldEncoder, FieldLoader
from fgraph.data.datasets import synthetic
from fgraph.models import IFM
from fgraph.train.numerics import flush_denormals
from fgraph.train.optim import OptimConfig, build_optimizers

TINY = torch.finfo(torch.float32).tiny


def one_round(space, batches, warmup: int, steps: int, flush: bool) -> dict:
    torch.manual_seed(0)
    model = IFM(space, embed_dim=256, attention_dim=8, dropout=0.1, attention_l2=0.0156, field_factors=26)
    opt = build_optimizers(model, OptimConfig(optimizer="adagrad", lr=0.1))[0].optimizer
    times = {"forward": 0.0, "backward": 0.0, "step": 0.0}
    with flush_denormals(flush):
        for i in range(warmup + steps):
            batch = batches[i % len(batches)]
            opt.zero_grad()
            t0 = time.perf_counter()
            loss = (model(batch) - batch.y.float()).pow(2).mean()
            t1 = time.perf_counter()
            loss.backward()
            t2 = time.perf_counter()
            opt.step()
            t3 = time.perf_counter()
            if i >= warmup:
                times["forward"] += t1 - t0
                times["backward"] += t2 - t1
                times["step"] += t3 - t2
    w = model.pooling.lin.weight.detach()
    return {**{k: 1e3 * v / steps for k, v in times.items()},
            "subnormal": int(((w != 0) & (w.abs() < TINY)).sum()), "zero": int((w == 0).sum()), "size": w.numel()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    data = synthetic(n_samples=40_000, n_fields=10, cardinality=500)
    encoder = FieldEncoder(data.schema).fit(data.train)
    batches = list(FieldLoader(encoder.transform(data.train), 128, shuffle=True, seed=0))
    runs = {False: [], True: []}
    for _ in range(args.rounds):
        for flush in (False, True):
            runs[flush].append(one_round(encoder.space_, batches, args.warmup, args.steps, flush))
    med = {f: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for f, rs in runs.items()}
    print(f"{args.rounds} rounds, {args.warmup} steps of warm-up, {args.steps} timed; torch {torch.__version__}, "
          f"1 thread")
    print("| flush_denormal | forward ms | backward ms | step ms | total ms | attention W subnormal / zero |")
    print("|---|---|---|---|---|---|")
    for flush in (False, True):
        m = med[flush]
        total = m["forward"] + m["backward"] + m["step"]
        print(f"| {flush} | {m['forward']:.2f} | {m['backward']:.2f} | {m['step']:.2f} | {total:.2f} | "
              f"{m['subnormal']:.0f} / {m['zero']:.0f} of {m['size']} |")
    off, on = (sum(med[f][k] for k in ("forward", "backward", "step")) for f in (False, True))
    print(f"step time off / on: {off / on:.2f}")


if __name__ == "__main__":
    main()
