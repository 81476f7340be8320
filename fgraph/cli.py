"""The ``fgraph`` command: ``train``, ``evaluate``, ``predict``, ``explain``, ``tune`` and ``datasets``."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .configfile import apply_variants, key_values, read_config_file
from .errors import ConfigError, FgraphError

# Options of `fgraph train` that set an argument of fgraph.api.train or a TrainConfig field: name -> (type, help).
# Each help gets a "(default: ...)" naming where the value comes from when the flag is not given (_default_text).
TRAIN_FLAGS = {
    "model": (str, "model name; see `fgraph train --list-models`"),
    "dataset": (str, "data set name; see `fgraph datasets` (or --data FILE: your own file)"),
    "data_dir": (str, "directory holding the data sets"),
    "epochs": (int, "maximum epochs"),
    "batch_size": (int, "training batch size"),
    "lr": (float, "learning rate"),
    "embed_dim": (int, "embedding size, for models that take one"),
    "seed": (int, "random seed; a CPU run with the same seed repeats exactly"),
    "out": (str, "run directory"),
    "optimizer": (str, "any torch.optim optimiser, e.g. adam, adagrad"),
    "weight_decay": (float, "L2 on non-embedding weights"),
    "embedding_weight_decay": (float, "L2 on the embedding tables"),
    "patience": (int, "early-stopping patience in epochs"),
    "monitor": (str, "validation metric for early stopping: auc, logloss or rmse"),
    "task": (str, "binary or regression (±1 labels, squared loss, RMSE)"),
    "min_count": (int, "values seen fewer times share the rare id"),
    "device": (str, "torch device"),
    "threads": (int, "torch threads"),
    "grad_clip": (float, "clip the gradient norm to this value"),
    "lr_schedule": (str, "plateau: lr x lr_factor after lr_patience + 1 epochs in a row without improvement"),
    "lr_factor": (float, "the plateau schedule's factor"),
    "lr_patience": (int, "epochs in a row without improvement the plateau schedule lets pass before reducing"),
    "min_lr": (float, "the plateau schedule's floor"),
    "embedding_regularizer": (float, "lambda of lambda/2 ||W||^2 on the embedding tables, in the loss"),
    "net_regularizer": (float, "the same on every other weight"),
    "regularizer_form": (str, "table (the whole tables) or rows (the rows a batch looks up)"),
    "embedding_init": (str, "normal, xavier_uniform or xavier_normal"),
    "embedding_init_std": (float, "std of embedding_init=normal"),
    "dense_init": (str, "xavier_normal or xavier_uniform for the dense layers"),
    "divergence_factor": (float, "stop when an epoch's loss exceeds this x the first batch's"),
}

#: Flags that set one model option (the same as --model-option KEY=VALUE), for the models that take it.
MODEL_OPTION_FLAGS = {
    "base": (str, "AIM: the base model it searches on and retrains, fm, deepfm or ipnn (default: fm)"),
    "max_order": (int, "AIM: the highest interaction order searched, 2 or more (default: 2)"),
}

#: What a ``None`` default of a TrainConfig field means, for the help text.
_NONE_MEANS = {
    "monitor": "auc for --task binary, rmse for regression",
    "threads": "torch's own",
    "grad_clip": "none",
    "lr_schedule": "none (a constant learning rate)",
    "embedding_init": "the model's own",
    "dense_init": "the model's own",
    "divergence_factor": "none",
}

_DEFAULTS_EPILOG = (
    "Where a default comes from: an option not given as a flag is read from --config FILE (YAML or JSON, keys "
    "spelled as the flags, e.g. embed-dim or embed_dim); else from fgraph's shipped configuration for the model "
    "and data set (fgraph/zoo/MODEL-DATASET.yaml, printed when used; --no-zoo drops it); else from the protocol "
    "(--protocol, or the one the shipped configuration names); else from the data set's own defaults; else "
    "from fgraph's. Each flag's \"default:\" lists the layers that can set it, in that order. With --resume, a "
    "training option not given is the run's own.")


def _value_text(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _default_text(name: str) -> str:
    """Where option ``name`` of ``fgraph train`` takes its value from when the flag is not given, as the help's
    ``(default: ...)``, read from the layers themselves (the protocols, the data sets' TRAIN_DEFAULTS, the
    models' signatures, TrainConfig) so that it stays true; tests/test_cli.py checks it against a run."""
    import dataclasses
    import inspect

    from .data.datasets import TRAIN_DEFAULTS
    from .train.protocols import PROTOCOLS
    from .train.trainer import TrainConfig

    fixed = {"data_dir": "$FGRAPH_DATA_DIR, else shared/datasets beside the repository, else ../shared/datasets",
             "out": "runs/<model>-<dataset>-<time>"}
    if name in fixed:
        return f"(default: {fixed[name]})"
    if name in ("model", "dataset"):   # fgraph.api.train's defaults (tests/test_cli.py checks them)
        return f"(default: {dict(model='fm', dataset='synthetic')[name]})"
    shipped = "the shipped configuration's"
    if name == "embed_dim":
        from .models import MODELS

        by_default: dict = {}
        for key, cls in sorted(MODELS.items()):
            param = inspect.signature(cls.__init__).parameters.get("embed_dim")
            if param is not None:
                by_default.setdefault(param.default, []).append(key)
        own = "; ".join(f"{_value_text(v)}: {', '.join(models)}" for v, models in sorted(by_default.items()))
        return f"(default: {shipped}, else the model's own [{own}])"
    if name == "min_count":
        return f"(default: {shipped}, else 1)"
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    field = fields[name]
    chain = [shipped]
    protocols = [f"{p}: {_value_text(values[name])}" for p, values in sorted(PROTOCOLS.items()) if name in values]
    if protocols:
        chain.append(f"the protocol's [{'; '.join(protocols)}]")
    datasets = [f"{d}: {_value_text(values[name])}" for d, values in sorted(TRAIN_DEFAULTS.items()) if name in values]
    if datasets:
        chain.append(f"the data set's [{'; '.join(datasets)}]")
    final = field.default
    chain.append(_NONE_MEANS.get(name, "none") if final is None else _value_text(final))
    text = f"(default: {', else '.join(chain)})"
    if name == "batch_size":   # fgraph.api._file_batch_size: a run on --data FILE gets one fitted to the table
        from .api import FILE_BATCH_RANGE

        low, high = FILE_BATCH_RANGE
        text = (f"{text[:-1]}; with --data FILE: the largest power of two at most the training rows / 100, "
                f"from {low} to {high})")
    return text


def _key_values(items: list[str] | None, flag: str) -> dict:
    """``KEY=VALUE`` pairs; a value is read as JSON when it parses (``3``, ``[8, 4]``, ``true``), else as text."""
    return key_values(items, flag)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fgraph", description="Feature-interaction models on field graphs: train (on a built-in data set or your own "
                                   "CSV / Parquet file), evaluate, predict, explain, tune, list data sets.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    tr = sub.add_parser("train", help="train a model (default: FM on the built-in synthetic set)",
                        description="Train a model, print its test metrics and write a run directory.",
                        epilog=_DEFAULTS_EPILOG)
    for name, (typ, help_) in TRAIN_FLAGS.items():
        tr.add_argument("--" + name.replace("_", "-"), type=typ, default=None, help=f"{help_} {_default_text(name)}")
    tr.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    tr.add_argument("--protocol", default=None, metavar="NAME",
                    help="a named training protocol, e.g. bars (the public benchmark's: lr decay on plateau, "
                         "clipping, initialisation); it fills the options not given (default: the shipped "
                         "configuration's, else none)")
    tr.add_argument("--no-zoo", action="store_true",
                    help="do not use fgraph's shipped configuration for this model and data set (in a config "
                         "file: no-zoo: true, or zoo: false)")
    tr.add_argument("--overwrite", action="store_true",
                    help="replace the run already in --out (its files are removed first)")
    tr.add_argument("--config", metavar="FILE",
                    help="YAML or JSON file of the same options, keys spelled as the flags (embed-dim or embed_dim; "
                         "model_options and dataset_options as mappings); flags given here win")
    tr.add_argument("--model-option", action="append", metavar="KEY=VALUE",
                    help="model hyperparameter (repeatable), e.g. --model-option heads=2")
    tr.add_argument("--dataset-option", action="append", metavar="KEY=VALUE",
                    help="data-set builder option (repeatable), e.g. --dataset-option labels=pm1")
    for name, (typ, help_) in MODEL_OPTION_FLAGS.items():
        tr.add_argument("--" + name.replace("_", "-"), type=typ, default=None, help=help_)
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")
    tr.add_argument("--list-models", action="store_true", help="list the model names and exit")
    _add_data_flags(tr)

    ev = sub.add_parser("evaluate", help="score a saved run on a split, or on a labelled file",
                        description="Score the best weights of a run directory on a split of its data set (a run "
                                    "on files reads them again and cuts the same split), or on a labelled file "
                                    "(--data). A run written from Python by a Trainer knows no data: give --data.")
    ev.add_argument("run_dir", help="a directory written by `fgraph train` (or by a Trainer with run_dir=)")
    ev.add_argument("--split", default=None, choices=["train", "valid", "test"], help="the split (default: test)")
    ev.add_argument("--data", default=None, metavar="FILE",
                    help="score this CSV or Parquet file instead (the run's field columns and its label)")
    ev.add_argument("--data-dir", default=None, help="where the data sets are, if not where training found them")

    ds = sub.add_parser("datasets", help="list the data-set builders and whether their files are found")
    ds.add_argument("--data-dir", default=None)

    dt = sub.add_parser("demo-table", help="write a generated click log (categorical, numeric and multi-valued "
                                           "columns, label 'click') to try `fgraph train --data` on",
                        description="Write a generated click log: user, item, device (categorical), hour, price "
                                    "(numeric), tags ('|'-separated, multi-valued) and the 0/1 label click, "
                                    "with planted pairwise effects. CSV, TSV or Parquet by the file's suffix.")
    dt.add_argument("out", help="the file to write (e.g. clicks.csv); an existing file is refused")
    dt.add_argument("--rows", type=int, default=10000, help="number of rows (default: 10000)")
    dt.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    dt.add_argument("--overwrite", action="store_true", help="replace an existing file")
    _add_tune_parser(sub)
    _add_predict_parser(sub)
    _add_explain_parser(sub)
    return parser


def _train(args) -> int:
    """`fgraph train`, in one process or, under torchrun, in each of its processes (docs/distributed.md)."""
    from .train import distributed

    if not distributed.init_from_env():
        return _train_run(args)
    distributed.quiet_followers()   # the run's messages once, from rank 0
    ok = False
    try:
        code = _train_run(args)
        ok = True
        return code
    finally:
        # After a failure the other ranks may be inside a collective: no barrier then (torchrun stops them).
        distributed.teardown(wait=ok)


def _train_run(args) -> int:
    from . import api
    from .models import MODELS

    # The config file's keys are the flags' names, read as the options they set (fgraph.configfile).
    options = read_config_file(args.config) if args.config else {}
    if "variants" in options:   # the file's variant for the model options given as flags
        flagged = {**_key_values(args.model_option, "--model-option"),
                   **{name: getattr(args, name) for name in MODEL_OPTION_FLAGS if getattr(args, name) is not None}}
        options = apply_variants(options, flagged)
    if options.pop("list_models", False) or args.list_models:
        print("\n".join(sorted(MODELS)))
        return 0
    for name in TRAIN_FLAGS:
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    _data_options(args, options)
    if args.resume:
        options["resume"] = True
    if args.overwrite:
        options["overwrite"] = True
    if options.get("resume") and options.get("out") is None:
        raise ConfigError("--resume needs --out RUN_DIR (the run to continue; in a config file, resume: true "
                          "needs out: RUN_DIR)")
    if args.no_progress:
        options["progress"] = False
    options["model_options"] = {**options.get("model_options", {}), **_key_values(args.model_option, "--model-option")}
    for name in MODEL_OPTION_FLAGS:
        value = options.pop(name, None) if getattr(args, name) is None else getattr(args, name)
        if value is not None:
            options["model_options"][name] = value
    options["dataset_options"] = {**options.get("dataset_options", {}),
                                  **_key_values(args.dataset_option, "--dataset-option")}
    options.pop("source", None)   # how a config file was made: for the record only
    if args.protocol is not None:
        options["protocol"] = args.protocol
    if args.no_zoo:
        options["zoo"] = False
    shipped = api.zoo_config_path(options.get("model", "fm"), options.get("dataset", "synthetic")) \
        if options.get("zoo", True) and options.get("data") is None else None
    if shipped is not None:
        print(f"configuration: {shipped} (fgraph's shipped configuration; flags override it, --no-zoo drops it)")
    run = api.train(**options)
    test = run.metrics["test"]
    _print_search(run.run_dir)
    print(f"run directory: {run.run_dir}")
    print("test " + "  ".join(f"{k} {v:.4f}" for k, v in test.items()))
    return 0


def _print_search(run_dir) -> None:
    """A staged (AIM) run's kept ratio per order, as the AIM paper's Table 3 gives it."""
    from .train.run_dir import RunDirectory

    run = RunDirectory(run_dir)
    if not run.search_path.is_file():
        return
    search = run.read_search()
    for order, row in sorted(search.get("kept_ratio", {}).items()):
        ratio = "-" if row["ratio"] is None else f"{100 * row['ratio']:.1f}%"
        print(f"order {order}: kept {row['kept']} of {row['searched']} interaction-function pairs searched ({ratio})")
    if search.get("dims_ratio") is not None:
        print(f"embedding dimensions kept: {100 * search['dims_ratio']:.1f}% "
              f"({', '.join(f'{f} {n}' for f, n in search['dims_kept'].items())})")
    print(f"search record: {run.search_path}")


def _evaluate(args) -> int:
    from . import api

    metrics = api.evaluate(args.run_dir, split=args.split, data_dir=args.data_dir, data=args.data)
    what = args.data if args.data is not None else (args.split or "test")
    print(f"{what} " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    return 0


def _demo_table(args) -> int:
    from . import api

    path = api.write_demo_table(args.out, rows=args.rows, seed=args.seed, overwrite=args.overwrite)
    print(f"wrote {path} ({args.rows} rows; label column: click)")
    return 0


def _datasets(args) -> int:
    from .data.datasets import dataset_status

    rows = dataset_status(args.data_dir)
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        mark = "found  " if r["found"] else "missing"
        print(f"{r['name']:<{width}}  {mark}  {r['location']}  {r.get('description', '')}")
    return 0


# Options of `fgraph tune` that every trial takes as given (not searched): name -> (type, help).
TUNE_FIXED_FLAGS = {
    "data_dir": (str, "directory holding the data sets"),
    "embed_dim": (int, "a fixed embedding size (then not searched)"),
    "epochs": (int, "maximum epochs of every trial"),
    "batch_size": (int, "training batch size of every trial"),
    "patience": (int, "early-stopping patience of every trial"),
    "monitor": (str, "the validation metric to optimise: auc, logloss (or rmse for --task regression)"),
    "task": (str, "binary (default) or regression"),
    "min_count": (int, "the encoder's min_count"),
    "threads": (int, "torch threads of every trial"),
}


def _add_tune_parser(sub) -> None:
    tu = sub.add_parser(
        "tune", help="search a model's hyperparameters with Optuna (pip install 'fgraph[tune]')",
        description="Search a model's hyperparameters on the validation split (the test split is not read), "
                    "pruning bad trials per epoch; write the best configuration as OUT/best.yaml for "
                    "`fgraph train --config` and every trial as OUT/trials.csv.")
    tu.add_argument("--model", default="fm", help="model name (default: fm)")
    tu.add_argument("--dataset", default="synthetic", help="data set name (default: synthetic)")
    tu.add_argument("--trials", type=int, default=20, help="the most trials (default: 20)")
    tu.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                    help="no trial starts after this, and one still training stops after its epoch")
    tu.add_argument("--out", default=None, help="tuning directory, new or empty (default: runs/tune-<model>-"
                                                "<dataset>-<time>)")
    tu.add_argument("--seed", type=int, default=0, help="seeds the sampler and every trial (default: 0)")
    tu.add_argument("--protocol", default=None, metavar="NAME", help="a named training protocol for every trial")
    for name, (typ, help_) in TUNE_FIXED_FLAGS.items():
        tu.add_argument("--" + name.replace("_", "-"), type=typ, default=None, help=help_)
    tu.add_argument("--model-option", action="append", metavar="KEY=VALUE",
                    help="a fixed model option (repeatable; then not searched)")
    tu.add_argument("--dataset-option", action="append", metavar="KEY=VALUE", help="data-set builder option")
    tu.add_argument("--train-option", action="append", metavar="KEY=VALUE",
                    help="a fixed training option (repeatable; then not searched), e.g. --train-option lr=1e-3")
    tu.add_argument("--pruner", default="median", help="median (default), hyperband or none")
    tu.add_argument("--prune-warmup", type=int, default=2, metavar="EPOCHS",
                    help="epochs before a trial may be pruned (default: 2)")
    tu.add_argument("--study-name", default=None, help="Optuna study name")
    tu.add_argument("--storage", default=None, metavar="URL",
                    help="Optuna storage (e.g. sqlite:///tune.db) to keep the study and continue it")
    tu.add_argument("--verbose", action="store_true", help="show every trial's epoch lines")


def _tune(args) -> int:
    from .tune import tune

    options = _key_values(args.train_option, "--train-option")
    for name in TUNE_FIXED_FLAGS:
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    try:
        tune(args.model, args.dataset, trials=args.trials, timeout=args.timeout, out=args.out, seed=args.seed,
             protocol=args.protocol, pruner=args.pruner, prune_warmup=args.prune_warmup,
             study_name=args.study_name, storage=args.storage, verbose=args.verbose,
             model_options=_key_values(args.model_option, "--model-option"),
             dataset_options=_key_values(args.dataset_option, "--dataset-option"), **options)
    except KeyboardInterrupt:
        print("fgraph: interrupted (trials.csv holds the trials so far, and best.yaml the best completed one)",
              file=sys.stderr)
        return 130
    return 0


# -- a user's own files: `fgraph train --data`, `fgraph predict`, `fgraph evaluate --data`, `fgraph explain` --------

#: Flags of `fgraph train` for a run on the user's own files: name -> (metavar, help).
DATA_FLAGS = {
    "data": ("FILE", "train on your own CSV or Parquet file instead of a built-in data set (not with --dataset); "
                     "the schema is inferred (printed, and saved as schema.yaml in the run directory) unless "
                     "--schema gives it. fgraph's shipped configurations (fgraph/zoo) are for the built-in data "
                     "sets and do not apply to files: options not given come from --config, the protocol, else "
                     "the model's and fgraph's defaults"),
    "valid": ("FILE", "validation file, with the training file's columns (default: a seeded random split of "
                      "--data, printed with its fractions and seed)"),
    "test": ("FILE", "test file (default: a seeded random split of --data)"),
    "label": ("COLUMN", "the label column of --data (or named by the schema file)"),
    "schema": ("FILE", "schema file (YAML), full or partial, for --data: the fields' kinds and treatments "
                       "(default: inferred); a run's schema.yaml is one"),
    "positive": ("VALUE", "the label value that is the positive class, for text or two-number labels (default: "
                          "1 for 0/1 labels, True, else the later value in sorted order)"),
    "fractions": ("TRAIN,VALID,TEST", "fractions of the random split of --data (default: 0.8,0.1,0.1; seeded by "
                                      "--seed)"),
}


def _add_data_flags(tr) -> None:
    for name, (metavar, help_) in DATA_FLAGS.items():
        tr.add_argument("--" + name, default=None, metavar=metavar, help=help_)


def _data_options(args, options: dict) -> None:
    """The file flags of `fgraph train` given, into ``options`` (fgraph.api.train's arguments)."""
    for name in DATA_FLAGS:
        value = getattr(args, name, None)
        if value is not None:
            options[name] = value


def _add_predict_parser(sub) -> None:
    pr = sub.add_parser(
        "predict", help="predict every row of a CSV or Parquet file with a trained run",
        description="Write one prediction per row of INPUT, in the rows' order: the probability of the positive "
                    "class (column 'probability') for a binary run, the predicted value (column 'prediction', "
                    "clipped to the training labels' range as in evaluation) for a regression run. INPUT needs the "
                    "run's field columns; its label column may be absent; values not seen in training get the "
                    "encoder's unknown id, as in training.")
    pr.add_argument("run_dir", help="a run directory (of `fgraph train`, or of a Trainer with run_dir= in Python)")
    pr.add_argument("input", metavar="INPUT", help="the rows to predict: a CSV or Parquet file")
    pr.add_argument("--out", required=True, metavar="FILE",
                    help="the predictions file: .csv, .tsv, .parquet or .pq (an existing file is refused unless "
                         "--overwrite)")
    pr.add_argument("--keep", default=None, metavar="COLUMNS",
                    help="comma-separated columns of INPUT copied into the output, before the prediction, e.g. "
                         "--keep id,user")
    pr.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    pr.add_argument("--batch-size", type=int, default=None, help="rows per batch (default: the run's)")


def _predict(args) -> int:
    from . import api

    result = api.predict_file(args.run_dir, args.input, args.out, keep=args.keep, overwrite=args.overwrite,
                              batch_size=args.batch_size)
    print(f"wrote {result['rows']:,} predictions ({result['column']}) to {result['out']}")
    return 0


def _add_explain_parser(sub) -> None:
    ex = sub.add_parser(
        "explain", help="write what a trained run learned: interaction graphs, pair weights",
        description="Explain a trained run: per-row interaction graphs (--level instance, the rows of --rows) or "
                    "a summary over a data set (--level dataset), written into --out. Without --data, the rows "
                    "are the run's validation split (of its built-in data set, or of its files).")
    ex.add_argument("run_dir", help="a run directory (of `fgraph train`, or of a Trainer with run_dir= in Python)")
    ex.add_argument("--rows", default=None, metavar="I,J",
                    help="row positions (0-based, comma-separated) to explain one by one, e.g. --rows 0,5")
    ex.add_argument("--data", default=None, metavar="FILE",
                    help="a CSV or Parquet file of rows with the run's field columns (default: the run's "
                         "validation split)")
    ex.add_argument("--level", default=None, choices=["instance", "dataset"],
                    help="instance: one graph per row of --rows; dataset: a summary over the rows")
    ex.add_argument("--out", required=True, metavar="DIR",
                    help="the folder to write the explanations into: new or empty, or a previous explanation with "
                         "--overwrite")
    ex.add_argument("--layer", type=int, default=None, help="one layer only (default: all)")
    ex.add_argument("--attr", default=None, metavar="NAME",
                    help="the edge attribute the heat maps show (default: each layer's first)")
    ex.add_argument("--formats", default="graphml,json", metavar="LIST",
                    help="graph file formats, comma-separated: graphml, json (default: graphml,json)")
    ex.add_argument("--no-heatmaps", action="store_true", help="write no heat maps (they need matplotlib)")
    ex.add_argument("--overwrite", action="store_true", help="replace a previous explanation in --out")


def _explain(args) -> int:
    from . import api

    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    result = api.explain(args.run_dir, args.out, rows=args.rows, data=args.data, level=args.level,
                         layer=args.layer, attr=args.attr, formats=formats, heatmaps=not args.no_heatmaps,
                         overwrite=args.overwrite)
    print(f"explanations of {args.run_dir} written to {args.out}")
    for key, value in (result or {}).items():
        if isinstance(value, (list, tuple)):
            if not value:
                continue
            shown = ", ".join(str(v) for v in value[:6]) + (f" ... ({len(value)} files)" if len(value) > 6 else "")
            print(f"  {key}: {shown}")
        else:
            print(f"  {key}: {value}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    handler = {"train": _train, "evaluate": _evaluate, "datasets": _datasets, "tune": _tune, "predict": _predict,
               "explain": _explain, "demo-table": _demo_table}[args.command]
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
