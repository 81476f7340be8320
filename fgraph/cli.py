"""The ``fgraph`` command: ``train``, ``evaluate`` and ``datasets``."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ._validate import as_mapping
from .errors import ConfigError, FgraphError, InputFileError, InputFileNotFoundError

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
#: Options a config file may hold besides the flags above.
CONFIG_ONLY = {"resume", "overwrite", "model_options", "dataset_options", "progress", "grad_clip",
               "optimizer_options", "eval_batch_size"}


def _key_values(items: list[str] | None, flag: str) -> dict:
    """``KEY=VALUE`` pairs; a value is read as JSON when it parses (``3``, ``[8, 4]``, ``true``), else as text."""
    out = {}
    for item in items or []:
        if "=" not in item or not item.split("=", 1)[0].strip():
            raise ConfigError(f"{flag} takes KEY=VALUE (e.g. {flag} heads=2), got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key.strip().replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip().replace("-", "_")] = value
    return out


def _unique_json_object(pairs: list) -> dict:
    """A JSON object whose keys are all different (``json`` would keep the last of two silently)."""
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ConfigError(f"option {key!r} is given twice ({seen[key]!r} and {value!r}); keep one")
        seen[key] = value
    return seen


def _yaml_loader():
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        """PyYAML's safe loader, refusing a key given twice in one mapping (it would keep the last)."""

        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"option {key!r} is given twice; keep one", key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def _read_config_file(path: str) -> dict:
    """The options of a YAML or JSON config file, with a clear error for every way the file can be wrong."""
    p = Path(path)
    if p.is_dir():
        raise InputFileError(f"config file {path} is a directory; give a .yaml, .yml or .json file")
    if not p.is_file():
        raise InputFileNotFoundError(f"config file {path} does not exist")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise InputFileError(f"config file {path} is not UTF-8 text (byte {raw[e.start]:#04x} at line {line}); "
                             f"save it as UTF-8") from None
    if p.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.load(text, Loader=_yaml_loader())
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise InputFileError(f"config file {path} is not valid YAML{where}: {problem}") from None
    elif p.suffix.lower() == ".json":
        try:
            data = json.loads(text, object_pairs_hook=_unique_json_object)
        except ConfigError as e:
            raise ConfigError(f"config file {path}: {e}") from None
        except json.JSONDecodeError as e:
            raise InputFileError(f"config file {path} is not valid JSON at line {e.lineno}, column {e.colno}: "
                                 f"{e.msg}") from None
    else:
        raise InputFileError(f"config file {path}: unknown format {p.suffix or '(no suffix)'!r}; "
                             f"use a .yaml, .yml or .json file")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option names to values, "
                          f"not a {type(data).__name__}")
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        raise ConfigError(f"config file {path}: option names must be text, got {bad_keys}")
    data = {k.replace("-", "_"): v for k, v in data.items()}
    known = set(TRAIN_FLAGS) | CONFIG_ONLY
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"config file {path} has unknown option(s) {unknown}; known: {sorted(known)}")
    for key in ("model_options", "dataset_options"):
        if key in data:
            data[key] = as_mapping(key, data[key], where=f"config file {path}:")
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
    tr.add_argument("--overwrite", action="store_true",
                    help="replace the run already in --out (its files are removed first)")
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
    if args.overwrite:
        options["overwrite"] = True
    if options.get("resume") and "out" not in options:
        raise ConfigError("--resume needs --out RUN_DIR (the run to continue)")
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
    except FgraphError as e:
        # Errors about the user's input get one clear line each, not a traceback (FGRAPH_DEBUG=1 shows it).
        # Anything else is a bug in fgraph and keeps its traceback.
        if os.environ.get("FGRAPH_DEBUG"):
            raise
        for line in str(e).splitlines() or [type(e).__name__]:
            print(f"fgraph: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fgraph: interrupted (a training run keeps its last completed epoch: continue with --resume --out RUN_DIR)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
