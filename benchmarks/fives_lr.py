"""FIVES+LR against LR, as the FIVES paper's Table 3 reports it (relative test-AUC improvement over LR).

LR: scikit-learn's LogisticRegression on the one-hot original fields. FIVES+LR: the same plus the ``top_n``
crossed fields that FIVES finds (``FIVESCrossFeatures``), FIVES searched on the data set's training split with
its validation split for the adjacency steps. Numeric fields are cut into equal-width buckets first (the paper
discretises numeric features), so both models and FIVES see the same categorical columns. The inverse
regularisation C of each LR is picked on the validation split.

    python benchmarks/fives_lr.py --dataset synthetic --dataset-option n_samples=20000 --epochs 10
    python benchmarks/fives_lr.py --dataset frappe --top-n 5 --epochs 10 --lr 5e-3
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from fgraph.data.datasets import load_dataset
from fgraph.explain.fives_features import FIVESCrossFeatures


def key_values(items: list[str] | None) -> dict:
    out = {}
    for item in items or []:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def categorical_frames(splits, buckets: int) -> tuple[list[str], dict[str, pd.DataFrame]]:
    """Every field as strings; numeric fields cut into ``buckets`` equal-width bins of the training range."""
    fields = splits.schema.names
    frames = {k: getattr(splits, k)[fields].copy() for k in ("train", "valid", "test")}
    for f in splits.schema.fields:
        if f.kind == "numeric":
            lo, hi = float(frames["train"][f.name].min()), float(frames["train"][f.name].max())
            edges = np.linspace(lo, hi, buckets + 1)[1:-1]
            for frame in frames.values():
                col = pd.to_numeric(frame[f.name], errors="coerce")
                frame[f.name] = np.where(col.isna(), "<missing>", np.digitize(col.fillna(lo), edges).astype(str))
        for frame in frames.values():
            frame[f.name] = frame[f.name].astype(str)
    return fields, frames


def fit_lr(X_train, y_train, X_valid, y_valid, Cs, cross=None):
    """One-hot + LogisticRegression, C chosen by validation AUC; ``cross`` (fitted) adds crossed columns."""
    if cross is not None:
        X_train, X_valid = cross.transform(X_train), cross.transform(X_valid)
    best = None
    for C in Cs:
        pipe = make_pipeline(OneHotEncoder(handle_unknown="ignore"), LogisticRegression(C=C, max_iter=2000))
        pipe.fit(X_train, y_train)
        auc = roc_auc_score(y_valid, pipe.predict_proba(X_valid)[:, 1])
        if best is None or auc > best[0]:
            best = (auc, C, pipe)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--dataset-option", action="append", metavar="KEY=VALUE")
    parser.add_argument("--top-n", type=int, default=5, help="crossed fields added for FIVES+LR")
    parser.add_argument("--buckets", type=int, default=10, help="equal-width buckets of numeric fields")
    parser.add_argument("--Cs", type=float, nargs="+", default=[0.1, 1.0, 10.0])
    parser.add_argument("--embed-dim", type=int, default=16)
    parser.add_argument("--orders", type=int, default=3)
    parser.add_argument("--model-option", action="append", metavar="KEY=VALUE", help="more FIVES options")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--lr", type=float, default=5e-3, help="alpha1, the step on the FIVES weights")
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    splits = load_dataset(args.dataset, args.data_dir, **key_values(args.dataset_option))
    fields, X = categorical_frames(splits, args.buckets)
    label = splits.schema.label
    y = {k: getattr(splits, k)[label].to_numpy() for k in X}

    started = time.perf_counter()
    lr_valid, lr_C, lr = fit_lr(X["train"], y["train"], X["valid"], y["valid"], args.Cs)
    lr_auc = roc_auc_score(y["test"], lr.predict_proba(X["test"])[:, 1])
    lr_seconds = time.perf_counter() - started

    started = time.perf_counter()
    model_options = {"embed_dim": args.embed_dim, "orders": args.orders, **key_values(args.model_option)}
    train_options = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                     "patience": args.patience}
    cross = FIVESCrossFeatures(top_n=args.top_n, model_options=model_options, train_options=train_options,
                               random_state=args.seed)
    cross.fit(X["train"], y["train"], validation_data=(X["valid"], y["valid"]))
    search_seconds = time.perf_counter() - started
    fl_valid, fl_C, fives_lr = fit_lr(X["train"], y["train"], X["valid"], y["valid"], args.Cs, cross)
    fl_auc = roc_auc_score(y["test"], fives_lr.predict_proba(cross.transform(X["test"]))[:, 1])

    result = {
        "dataset": args.dataset, "rows": {k: len(v) for k, v in X.items()}, "fields": fields,
        "lr": {"test_auc": lr_auc, "valid_auc": lr_valid, "C": lr_C, "seconds": lr_seconds},
        "fives_lr": {"test_auc": fl_auc, "valid_auc": fl_valid, "C": fl_C, "search_seconds": search_seconds,
                     "features": [[list(f), s] for f, s in cross.features_]},
        "relative_improvement": (fl_auc - lr_auc) / lr_auc,
        "settings": {"model_options": model_options, "train_options": train_options, "top_n": args.top_n,
                     "buckets": args.buckets, "seed": args.seed},
    }
    print(f"{args.dataset}: {result['rows']['train']} / {result['rows']['valid']} / {result['rows']['test']} rows")
    print(f"crossed fields ({len(cross.features_)}): " + ", ".join(
        f"{'×'.join(f)} ({s:.3f})" for f, s in cross.features_))
    print(f"LR        test AUC {lr_auc:.4f}  (C={lr_C:g})")
    print(f"FIVES+LR  test AUC {fl_auc:.4f}  (C={fl_C:g}; FIVES search {search_seconds:.0f} s)")
    print(f"relative improvement {100 * result['relative_improvement']:+.2f}%")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    return result


if __name__ == "__main__":
    main()
