"""The scale of the graph heads' node states at the bars protocol's initialisation, before and after the shared
state norms (``state_norm``), for several variance floors (``state_norm_eps``).

One Frappe training batch of 4096 rows, embedding 10, dense layers Xavier-normal and embeddings N(0, 1e-4) as
``--protocol bars`` sets them, evaluation mode. Prints, per head and floor, the standard deviation of every
norm's input and output.

    python benchmarks/state_scale.py [--eps 1e-5 1e-12 1e-20] [--data-dir DIR]
"""
from __future__ import annotations

import argparse

import torch

from fgraph.data.datasets import load_dataset
from fgraph.data.encoder import FieldEncoder
from fgraph.data.loader import FieldLoader
from fgraph.models import build_model
from fgraph.nn.init import init_dense, init_embeddings

HEADS = {"graphfm": {"readout": "attention"}, "fives": {}}   # GraphFM as its Frappe zoo file has it


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--eps", type=float, nargs="+", default=[1e-5, 1e-12, 1e-20])
    p.add_argument("--data-dir", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    splits = load_dataset("frappe", data_dir=args.data_dir)
    encoder = FieldEncoder(splits.schema).fit(splits.train)
    batch = next(iter(FieldLoader(encoder.transform(splits.train), 4096)))
    print("| head | state_norm_eps | std in / out, per norm |")
    print("|---|---|---|")
    for name, options in HEADS.items():
        for eps in args.eps:
            torch.manual_seed(0)
            model = build_model(name, encoder.space_, embed_dim=10, state_norm_eps=eps, **options).eval()
            init_dense(model)
            init_embeddings(model, "normal", 1e-4)
            seen = []
            for norm in model.state_norms:
                norm.register_forward_hook(lambda m, i, o: seen.append((float(i[0].std()), float(o.std()))))
            with torch.no_grad():
                model(batch)
            print(f"| {name} | {eps:g} | " + ", ".join(f"{a:.1e} / {b:.1e}" for a, b in seen) + " |")


if __name__ == "__main__":
    main()
