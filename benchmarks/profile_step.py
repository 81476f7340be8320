"""One model's training step against its dense reference, side by side, with the torch profiler's heaviest
operators by input shape: where a ratio on docs/speed.md comes from.

    python -m benchmarks.profile_step inn 39            # model, n; B = 4096, d = 16, 2 threads as in speed.py
    python -m benchmarks.profile_step fives+ 10 --rounds 5 --top 10

Prints each round's seconds per training step (model, then reference), then the operators that took the most
self CPU time in one profiled step of each side. The set-up (synthetic ids, the model's defaults, Adam) is
``benchmarks.speed``'s.
"""
from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import profile

from benchmarks import speed


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(speed.REFERENCES))
    parser.add_argument("n", type=int, help="number of fields")
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--vocab", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds, after two untimed calls per side")
    parser.add_argument("--top", type=int, default=14, help="operators listed per side")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    space = speed.make_space(args.n, args.vocab)
    model = speed.build(args.model, space, args.dim)
    speed.check_covered(args.model, model)
    batch = speed.make_batch(space, args.batch, args.vocab, torch.Generator().manual_seed(args.n))
    opt = speed.adam(model)
    reference = speed.REFERENCES[args.model][0]
    model.train()
    steps = {"model": speed.train_step(model, model, batch, opt),
             "reference": speed.train_step(model, lambda b: reference(model, b), batch, opt)}
    for step in steps.values():
        step(), step()
    for r in range(args.rounds):
        times = []
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times.append(f"{name} {time.perf_counter() - start:.3f} s")
        print(f"round {r + 1}: " + ", ".join(times))
    for name, step in steps.items():
        with profile(record_shapes=True) as prof:
            step()
        print(f"\n{name}: heaviest operators (self CPU ms, calls, input shapes)")
        events = sorted(prof.key_averages(group_by_input_shape=True), key=lambda e: -e.self_cpu_time_total)
        for ev in events[:args.top]:
            print(f"  {ev.key:40s} {ev.self_cpu_time_total / 1e3:8.1f} x{ev.count:<3d} {str(ev.input_shapes)[:90]}")


if __name__ == "__main__":
    main()
