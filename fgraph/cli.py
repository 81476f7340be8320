"""The ``fgraph`` command: ``train``, ``evaluate`` and ``datasets``."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# Options of `fgraph train`: name -> (type, help). Defaults come from fgraph.api.train / TrainConfig.
TRAIN_FLAGS = {
    "model": (str, "model name (default: fm); see `fgraph train --list-models`"),
    "dataset": (str, "data set name (default: synthetic); see `fgraph datasets`"),
    "data_dir": (str, "directory holding the data sets (default: ../shared/datasets or $FGRAPH_DATA_DIR)"),
    "epochs": (int, "maximum epochs (default: 20)"),
    "batch_size": (int, "training batch size (default: 4096)"),
    "lr": (float, "learning rate (default: 1e-3)"),
    "embed_dim": (int, "embedding size, for models that take one"),
    "seed": (int, "random seed; a CPU run with the same seed repeats exactly (default: 0)"),
    "out": (str, "run directory (default: runs/<model>-<dataset>-<time>)"),
    "optimizer": (str, "any torch.optim optimiser, e.g. adam, adagrad (default: adam)"),
    "weight_decay": (float, "L2 on non-embedding weights (default: 0)"),
    "embedding_weight_decay": (float, "L2 on the embedding tables (default: 0)"),
    "patience": (int, "early-stopping patience in epochs (default: 2)"),
    "monitor": (str, "validation metric for early stopping: auc, logloss or rmse"),
    "task": (str, "binary (default) or regression (±1 labels, squared loss, RMSE)"),
    "min_count": (int, "values seen fewer times share the rare id (default: 1)"),
    "device": (str, "torch device (default: cpu)"),
    "threads": (int, "torch threads"),
}
API_KEYS = {"model", "dataset", "data_dir", "out", "embed_dim", "min_count"}


def _key_values(items: list[str] | None, flag: str) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"fgraph: {flag} takes KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key.replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            out[key.replace("-", "_")] = value
    return out


def _read_config_file(path: str) -> dict:
    p = Path(path)
    if not p.is_file():
        raise SystemExit(f"fgraph: config file {path} does not exist")
    text = p.read_text()
    if p.suffix.lower() in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text) or {}
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise SystemExit(f"fgraph: config file {path} must hold a mapping of options")
    data = {k.replace("-", "_"): v for k, v in data.items()}
    known = set(TRAIN_FLAGS) | {"resume", "model_options", "dataset_options", "progress"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SystemExit(f"fgraph: config file {path} has unknown option(s) {unknown}; known: {sorted(known)}")
    return data


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fgraph", description="Feature-interaction models on field graphs: train, evaluate, list data sets.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    tr = sub.add_parser("train", help="train a model (default: FM on the built-in synthetic set)",
                        description="Train a model, print its test metrics and write a run directory.")
    for name, (typ, help_) in TRAIN_FLAGS.items():
        tr.add_argument("--" + name.replace("_", "-"), type=typ, default=None, help=help_)
    tr.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    tr.add_argument("--config", metavar="FILE", help="YAML or JSON file of the same options (flags win)")
    tr.add_argument("--model-option", action="append", metavar="KEY=VALUE",
                    help="model hyperparameter (repeatable), e.g. --model-option num_layers=3")
    tr.add_argument("--dataset-option", action="append", metavar="KEY=VALUE",
                    help="data-set builder option (repeatable), e.g. --dataset-option labels=pm1")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")
    tr.add_argument("--list-models", action="store_true", help="list the model names and exit")

    ev = sub.add_parser("evaluate", help="score a saved run on a split",
                        description="Score the best weights of a run directory on a split of its data set.")
    ev.add_argument("run_dir", help="a directory written by `fgraph train`")
    ev.add_argument("--split", default="test", choices=["train", "valid", "test"])
    ev.add_argument("--data-dir", default=None, help="where the data sets are, if not where training found them")

    ds = sub.add_parser("datasets", help="list the data-set builders and whether their files are found")
    ds.add_argument("--data-dir", default=None)
    return parser


def _train(args) -> int:
    from . import api
    from .models import MODELS

    if args.list_models:
        print("\n".join(sorted(MODELS)))
        return 0
    options = _read_config_file(args.config) if args.config else {}
    for name in TRAIN_FLAGS:
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    if args.resume:
        options["resume"] = True
        if "out" not in options:
            raise SystemExit("fgraph: --resume needs --out RUN_DIR (the run to continue)")
    if args.no_progress:
        options["progress"] = False
    options["model_options"] = {**options.get("model_options", {}), **_key_values(args.model_option, "--model-option")}
    options["dataset_options"] = {**options.get("dataset_options", {}),
                                  **_key_values(args.dataset_option, "--dataset-option")}
    run = api.train(**options)
    test = run.metrics["test"]
    print(f"run directory: {run.run_dir}")
    print("test " + "  ".join(f"{k} {v:.4f}" for k, v in test.items()))
    return 0


def _evaluate(args) -> int:
    from . import api

    metrics = api.evaluate(args.run_dir, split=args.split, data_dir=args.data_dir)
    print(f"{args.split} " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    return 0


def _datasets(args) -> int:
    from .data.datasets import dataset_status

    rows = dataset_status(args.data_dir)
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        mark = "found  " if r["found"] else "missing"
        print(f"{r['name']:<{width}}  {mark}  {r['location']}  {r.get('description', '')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    handler = {"train": _train, "evaluate": _evaluate, "datasets": _datasets}[args.command]
    try:
        return handler(args)
    except (ValueError, KeyError, FileNotFoundError) as e:
        # Errors about the user's input get one clear line, not a traceback (FGRAPH_DEBUG=1 shows it).
        if os.environ.get("FGRAPH_DEBUG"):
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"fgraph: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
