"""Evaluation metrics (scikit-learn underneath)."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import log_loss, mean_squared_error, roc_auc_score

from ..errors import DataError

#: name -> whether larger is better
GREATER_IS_BETTER = {"auc": True, "logloss": False, "rmse": False, "loss": False}


def _check_finite(values: np.ndarray, what: str, name: str) -> None:
    """Refuse NaN or infinite ``values``, naming the first row positions (sklearn would only say 'Input
    contains NaN', naming neither the data nor the rows)."""
    bad = ~np.isfinite(values)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DataError(f"the {what} of {name} are not finite (NaN or inf) in {len(rows)} of {len(values)} rows, "
                        f"first at row positions {rows[:10].tolist()} (0-based); metrics need finite numbers")


def binary_metrics(y_true: np.ndarray, prob: np.ndarray, name: str = "the data") -> dict[str, float]:
    """AUC and logloss of probabilities ``prob`` for 0/1 labels. AUC is NaN when only one class is present.

    Raises:
        DataError: a label or a probability is NaN or infinite (``name`` says whose).
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    prob = np.asarray(prob, dtype=np.float64)
    _check_finite(y_true, "labels", name)
    _check_finite(prob, "predicted probabilities", name)
    prob = np.clip(prob, 1e-7, 1 - 1e-7)
    auc = float(roc_auc_score(y_true, prob)) if len(np.unique(y_true)) > 1 else float("nan")
    return {"auc": auc, "logloss": float(log_loss(y_true, prob, labels=[0, 1]))}


def regression_metrics(y_true: np.ndarray, pred: np.ndarray, clip: tuple[float, float] | None = None,
                       name: str = "the data") -> dict:
    """RMSE with predictions clipped to ``clip`` (the label range, as the AFM/NFM protocol does).

    Raises:
        DataError: a label or a prediction is NaN or infinite (checked before clipping, which would hide inf).
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    _check_finite(y_true, "labels", name)
    _check_finite(pred, "predictions", name)
    if clip is not None:
        pred = np.clip(pred, clip[0], clip[1])
    return {"rmse": float(np.sqrt(mean_squared_error(y_true, pred)))}


def is_better(metric: str, new: float, best: float | None) -> bool:
    if best is None or np.isnan(best):
        return not np.isnan(new)
    if np.isnan(new):
        return False
    return new > best if GREATER_IS_BETTER[metric] else new < best
