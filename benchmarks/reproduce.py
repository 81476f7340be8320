"""Reproduce fgraph's accuracy table: models × data sets × seeds under their shipped configurations.

    python -m benchmarks.reproduce                      # every model with a shipped configuration, 3 seeds
    python -m benchmarks.reproduce --quick              # a small subset, minutes
    python -m benchmarks.reproduce --models fm fignn --datasets frappe --seeds 0 1 2
    python -m benchmarks.reproduce --table-only         # rewrite docs/results.md from the runs done so far
    python -m benchmarks.reproduce --models aim --datasets frappe --model-option base=deepfm max_order=3 \
        --label "aim(deepfm) order 3"                   # a variant: model options on top, its own row

Each run is ``fgraph.api.train(model, dataset, seed=s)``, so it uses the shipped configuration
(``fgraph/zoo/<model>-<dataset>.yaml``) when there is one and the defaults otherwise, exactly as
``fgraph train --model M --dataset D --seed S`` does. Every finished run leaves a JSON record in
``benchmarks/results/`` (``--results``); a later call skips runs already recorded, so a long campaign can be
run in parts, in the background. The table in ``docs/results.md`` is always rebuilt from all the records:
test AUC and logloss (RMSE for the regression protocol) as mean ± std over seeds, the epochs run, the wall
time and the training samples/s, with the published figure beside it and its source.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import fgraph  # noqa: E402
from fgraph import api  # noqa: E402
from fgraph.zoo import available  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
TABLE = ROOT / "docs" / "results.md"

#: Published test figures: (data set, model) -> (value, metric, source).
BARS = "BARS Frappe_x1 leaderboard (FuxiCTR runs; embedding 10, batch 4096)"
PUBLISHED = {
    ("frappe", "fm"): (0.9671, "auc", BARS),
    ("frappe", "afm"): (0.9697, "auc", BARS),
    ("frappe", "deepfm"): (0.9842, "auc", BARS),
    ("frappe", "ipnn"): (0.9841, "auc", BARS),
    ("frappe", "fignn"): (0.9761, "auc", BARS),
    ("frappe", "graphfm"): (None, "auc", "GraphFM paper: above Fi-GNN (no Frappe figure)"),
    ("frappe", "fives"): (None, "auc", "FIVES paper: no Frappe figure (issue 11's target: Fi-GNN's 0.9761)"),
    ("frappe", "fignn+"): (0.9848, "auc", BARS + ", AutoInt+ (the '+' target)"),
    ("frappe", "graphfm+"): (0.9848, "auc", BARS + ", AutoInt+ (the '+' target)"),
    ("frappe", "fives+"): (0.9848, "auc", BARS + ", AutoInt+ (the '+' target)"),
    ("frappe-regression", "fm"): (0.3321, "rmse", "IFM paper (Hong et al. 2019), Table 2, embedding 256"),
    ("frappe-regression", "afm"): (0.3102, "rmse", "AFM paper (Xiao et al. 2017), Table 2, embedding 256"),
    ("frappe-regression", "ifm"): (0.3080, "rmse", "IFM paper (Hong et al. 2019), Table 2"),
    ("frappe-regression", "inn"): (0.3071, "rmse", "IFM paper (Hong et al. 2019), Table 2"),
}
QUICK = [("fm", "synthetic"), ("fignn", "synthetic"), ("fm", "movielens100k")]


def record_path(results: Path, model: str, dataset: str, seed: int) -> Path:
    safe = "".join(c if c.isalnum() or c in "+-_." else "_" for c in model)
    return results / f"{safe}-{dataset}-seed{seed}.json"


def _search_summary(run_dir: Path) -> dict | None:
    """A staged (AIM) run's kept ratio per order and embedding dimensions kept, from its search.json."""
    path = run_dir / "search.json"
    if not path.is_file():
        return None
    search = json.loads(path.read_text())
    return {"kept_ratio": search.get("kept_ratio"), "dims_ratio": search.get("dims_ratio")}


def run_one(model: str, dataset: str, seed: int, threads: int, results: Path, command: str = "",
            model_options: dict | None = None, label: str | None = None, train_options: dict | None = None) -> dict:
    """Train once (in a throw-away run directory) and record the figures. ``model_options`` and
    ``train_options`` go on top of the shipped configuration's; ``label`` names the row (default: the model's
    name)."""
    out = Path(tempfile.mkdtemp(prefix=f"reproduce-{model}-{dataset}-"))
    started = time.perf_counter()
    try:
        run = api.train(model, dataset, seed=seed, threads=threads, progress=False, out=out / "run",
                        **({"model_options": model_options} if model_options else {}), **(train_options or {}))
    finally:
        wall = time.perf_counter() - started
    history = run.trainer.history
    rec = {
        "model": label or model, "name": model, "dataset": dataset, "seed": seed, "wall_s": round(wall, 1),
        "search": _search_summary(out / "run"),
        "epochs_run": run.metrics["epochs_run"], "best_epoch": run.metrics["best_epoch"],
        "test": run.metrics["test"], "valid": run.metrics["valid"],
        "samples_per_s": statistics.median(h["samples_per_s"] for h in history) if history else None,
        "zoo": None if run.zoo_config is None else run.zoo_config.name,
        "train": run.trainer.config.to_dict(), "model_options": run.model.hparams,
        "fgraph": fgraph.__version__, "date": time.strftime("%Y-%m-%d"), "command": command, "machine": platform.processor() or
        platform.machine(), "threads": threads,
    }
    results.mkdir(parents=True, exist_ok=True)
    path = record_path(results, label or model, dataset, seed)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rec, indent=1, default=str))
    tmp.replace(path)
    shutil.rmtree(out, ignore_errors=True)
    return rec


def _mean_std(values: list[float], digits: int = 4) -> str:
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def _kept_text(rs: list[dict]) -> str:
    """The kept ratio per order (and of embedding dimensions) of staged runs, mean over the seeds."""
    searches = [r["search"] for r in rs if r.get("search")]
    if not searches:
        return ""
    orders = sorted({p for s in searches for p in (s.get("kept_ratio") or {})})
    parts = []
    for p in orders:
        ratios = [s["kept_ratio"][p]["ratio"] for s in searches if p in s["kept_ratio"]]
        parts.append(f"order {p}: {100 * statistics.mean(ratios):.1f}%")
    dims = [s["dims_ratio"] for s in searches if s.get("dims_ratio") is not None]
    if dims:
        parts.append(f"dims: {100 * statistics.mean(dims):.0f}%")
    return "; ".join(parts)


def write_table(results: Path, table: Path, command: str) -> str:
    records = [json.loads(p.read_text()) for p in sorted(results.glob("*.json"))]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        groups.setdefault((r["dataset"], r["model"]), []).append(r)
    made_by = sorted({r.get("command") or "(not recorded)" for r in records})
    lines = ["# Results", "",
             f"Written by `{command}` (fgraph {fgraph.__version__}, {time.strftime('%Y-%m-%d')}); every row is "
             "rebuilt from the run records in `benchmarks/results/`. Each run is `fgraph train --model M "
             "--dataset D --seed S` with no other flag: the shipped configuration (`zoo`) when there is one. "
             "Test split; mean ± std over the seeds run. Published figures are the sources' own test figures.",
             "", "The records were made by:", "", *[f"- `{c}`" for c in made_by], "",
             "AIM rows: `kept` is the share of the searched interaction-function pairs its search kept, per order "
             "(the AIM paper's FI ratio, Table 3), mean over the seeds; `dims` the share of embedding dimensions kept.",
             "", "| data set | model | config | seeds | test AUC | test logloss | test RMSE | epochs | wall s | "
             "samples/s | kept | published | source |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (dataset, model), rs in sorted(groups.items()):
        rs.sort(key=lambda r: r["seed"])
        test = [r["test"] for r in rs]
        key = (dataset + ("-regression" if "rmse" in test[0] else ""), model)
        # A variant (``--label``) is compared with its model's published figure: the record names the model.
        pub, _, source = PUBLISHED.get(key) or PUBLISHED.get((key[0], rs[0].get("name", model)), (None, None, ""))
        lines.append(
            f"| {dataset} | {model} | {rs[0]['zoo'] or 'defaults'} | {', '.join(str(r['seed']) for r in rs)} | "
            f"{_mean_std([t['auc'] for t in test if 'auc' in t])} | "
            f"{_mean_std([t['logloss'] for t in test if 'logloss' in t])} | "
            f"{_mean_std([t['rmse'] for t in test if 'rmse' in t])} | "
            f"{_mean_std([r['epochs_run'] for r in rs], 1)} | {_mean_std([r['wall_s'] for r in rs], 0)} | "
            f"{_mean_std([r['samples_per_s'] for r in rs if r['samples_per_s']], 0)} | {_kept_text(rs)} | "
            f"{'' if pub is None else pub} | {source} |")
    text = "\n".join(lines) + "\n"
    table.parent.mkdir(parents=True, exist_ok=True)
    table.write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # action="extend" everywhere: a repeated flag (--model-option a=1 --model-option b=2) adds to the first
    # instead of silently replacing it, as the repeatable options of `fgraph train` and `fgraph tune` do.
    parser.add_argument("--models", nargs="+", action="extend",
                        help="models (default: every model with a shipped configuration)")
    parser.add_argument("--datasets", nargs="+", action="extend",
                        help="data sets (default: those of the shipped configurations)")
    parser.add_argument("--seeds", nargs="+", type=int, action="extend", help="seeds (default: 0 1 2)")
    parser.add_argument("--quick", action="store_true", help=f"a small subset in minutes: {QUICK}, seed 0")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where run records go")
    parser.add_argument("--table", type=Path, default=TABLE, help="the Markdown table to write")
    parser.add_argument("--rerun", action="store_true", help="run again what is already recorded")
    parser.add_argument("--table-only", action="store_true", help="only rebuild the table from the records")
    parser.add_argument("--model-option", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="model options on top of the shipped configuration's (values read as JSON when they "
                             "parse), for a variant; give --label with them")
    parser.add_argument("--train-option", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="training options on top of the shipped configuration's, for a variant (with --label)")
    parser.add_argument("--label", help="the row's name for a variant (default: the model's name)")
    args = parser.parse_args(argv)
    args.seeds = args.seeds or [0, 1, 2]
    from fgraph.configfile import key_values

    options = key_values(args.model_option, "--model-option") if args.model_option else {}
    train_options = key_values(args.train_option, "--train-option") if args.train_option else {}
    if (options or train_options) and not args.label:
        parser.error("--model-option and --train-option make a variant: name its row with --label")
    if args.label and not (args.models and len(args.models) == 1):
        parser.error("--label names one model's variant: give exactly one --models")
    command = "python -m benchmarks.reproduce " + " ".join(argv if argv is not None else sys.argv[1:])
    if not args.table_only:
        if args.quick:
            pairs, seeds = QUICK, [0]
        else:
            pairs = [(m, d) for m, d in available()
                     if (not args.models or m in args.models) and (not args.datasets or d in args.datasets)]
            if args.models and args.datasets:   # pairs asked for explicitly run even without a configuration
                pairs = sorted({*pairs, *((m, d) for m in args.models for d in args.datasets)})
            seeds = args.seeds
        for model, dataset in pairs:
            for seed in seeds:
                if record_path(args.results, args.label or model, dataset, seed).exists() and not args.rerun:
                    print(f"{args.label or model} {dataset} seed {seed}: recorded already", flush=True)
                    continue
                rec = run_one(model, dataset, seed, args.threads, args.results, command, options, args.label,
                              train_options)
                print(f"{model} {dataset} seed {seed}: test {rec['test']} in {rec['wall_s']} s, "
                      f"{rec['epochs_run']} epochs", flush=True)
    print(write_table(args.results, args.table, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
