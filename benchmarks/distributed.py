"""Data-parallel throughput: training samples/s of 1 process against N (default 2) gloo processes, side by side.

FM and GraphFM on the synthetic set (``--rows`` rows, 80% of them trained on), batch size 4096 (global: N
processes take 4096/N rows each per step), 1 thread per process, no validation; each configuration trains
``--epochs`` epochs in fresh processes and reports the median of the per-epoch throughputs after the first
(``samples_per_s`` of the Trainer's history: global rows per second of the epoch).

    python benchmarks/distributed.py [--rows 40000] [--epochs 4] [--world 2] [--models fm graphfm]

On a machine with fewer free cores than processes this measures contention, not scaling.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, model: str, rows: int, epochs: int, batch: int, out: str) -> None:
    torch.set_num_threads(1)
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                          LOCAL_RANK=str(rank))
        torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    from fgraph.api import encode_dataset
    from fgraph.models import build_model
    from fgraph.train import Trainer, TrainConfig, distributed, seed_everything

    enc, data = encode_dataset("synthetic", None, n_samples=rows)
    seed_everything(0)
    net = build_model(model, enc.space_, embed_dim=16)
    trainer = Trainer(net, TrainConfig(epochs=epochs, batch_size=batch, progress=False, threads=1))
    trainer.fit(data["train"])
    if rank == 0:
        with open(out, "w") as fh:
            json.dump([r["samples_per_s"] for r in trainer.history], fh)
    distributed.teardown()


def measure(model: str, world: int, rows: int, epochs: int, batch: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "speeds.json")
        torch.multiprocessing.spawn(_worker, args=(world, _free_port(), model, rows, epochs, batch, out),
                                    nprocs=world, join=True)
        with open(out) as fh:
            return json.load(fh)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--world", type=int, default=2)
    parser.add_argument("--models", nargs="+", default=["fm", "graphfm"])
    args = parser.parse_args()
    print(f"synthetic, {int(args.rows * 0.8):,} training rows, B={args.batch_size} (global), 1 thread per process, "
          f"{os.cpu_count()} CPUs; median samples/s of epochs 2..{args.epochs}")
    print(f"{'model':<8} {'1 process':>12} {f'{args.world} processes':>13} {'ratio':>6}")
    for model in args.models:
        one = statistics.median(measure(model, 1, args.rows, args.epochs, args.batch_size)[1:])
        many = statistics.median(measure(model, args.world, args.rows, args.epochs, args.batch_size)[1:])
        print(f"{model:<8} {one:>12,.0f} {many:>13,.0f} {many / one:>6.2f}", flush=True)


if __name__ == "__main__":
    main()
