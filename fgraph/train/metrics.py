"""Evaluation metrics (scikit-learn underneath)."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import log_loss, mean_squared_error, roc_auc_score

#: name -> whether larger is better
GREATER_IS_BETTER = {"auc": True, "logloss": False, "rmse": False, "loss": False}


def binary_metrics(y_true: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    """AUC and logloss of probabilities ``prob`` for 0/1 labels. AUC is NaN when only one class is present."""
    y_true = np.asarray(y_true, dtype=np.float64)
    prob = np.clip(np.asarray(prob, dtype=np.float64), 1e-7, 1 - 1e-7)
    auc = float(roc_auc_score(y_true, prob)) if len(np.unique(y_true)) > 1 else float("nan")
    return {"auc": auc, "logloss": float(log_loss(y_true, prob, labels=[0, 1]))}


def regression_metrics(y_true: np.ndarray, pred: np.ndarray, clip: tuple[float, float] | None = None) -> dict:
    """RMSE with predictions clipped to ``clip`` (the label range, as the AFM/NFM protocol does)."""
    pred = np.asarray(pred, dtype=np.float64)
    if clip is not None:
        pred = np.clip(pred, clip[0], clip[1])
    return {"rmse": float(np.sqrt(mean_squared_error(np.asarray(y_true, dtype=np.float64), pred)))}


def is_better(metric: str, new: float, best: float | None) -> bool:
    if best is None or np.isnan(best):
        return not np.isnan(new)
    if np.isnan(new):
        return False
    return new > best if GREATER_IS_BETTER[metric] else new < best
