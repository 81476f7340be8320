"""A generated categorical table with planted feature interactions and a known true click probability."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from ..._validate import as_float, as_int
from ...errors import ConfigError
from ..schema import Schema, categorical
from ._common import DatasetSplits, split_indices

LABEL = "label"


def _check_fields(group: Sequence[int], size: int, n_fields: int, what: str) -> tuple[int, ...]:
    try:
        out = tuple(as_int(what, i, minimum=0, maximum=n_fields - 1, where="synthetic") for i in group)
    except (ConfigError, TypeError):
        out = ()
    if len(out) != size or len(set(out)) != size:
        raise ConfigError(f"synthetic option {what!r} must be {size} distinct field positions in "
                          f"0..{n_fields - 1}, got {tuple(group) if isinstance(group, list) else group!r}")
    return out


def _centred_pair_table(rng: np.random.Generator, card: int) -> np.ndarray:
    """A random ``card x card`` table with zero row and column means and unit standard deviation."""
    w = rng.normal(size=(card, card))
    w -= w.mean(axis=0, keepdims=True)
    w -= w.mean(axis=1, keepdims=True)
    sd = w.std()
    return w / sd if sd > 0 else w


def _balanced_signs(rng: np.random.Generator, card: int) -> np.ndarray:
    """Random signs with mean zero and unit mean square: half +1, half -1 (centred when ``card`` is odd)."""
    s = rng.permutation(np.resize(np.array([1.0, -1.0]), card))
    s -= s.mean()
    rms = np.sqrt(np.mean(s ** 2))
    return s / rms if rms > 0 else s


def synthetic(n_samples: int = 50_000, n_fields: int = 10, cardinality: int = 10, *, seed: int = 0,
              pairs: Sequence[Sequence[int]] = ((0, 1), (2, 3), (4, 5)), triple: Sequence[int] | None = (6, 7, 8),
              strength: float = 1.0, triple_strength: float = 1.0, bias: float = -0.5,
              noise: float = 0.0) -> DatasetSplits:
    """A categorical table whose label comes from planted pairwise and three-way interactions only.

    Fields ``f0 .. f{n_fields-1}`` take ``cardinality`` values each (``"v0"``, ``"v1"``, ...), independently and
    uniformly. The logit of a row is

    ``bias + strength * sum over (a, b) in pairs of W_ab[x_a, x_b] + triple_strength * s_i[x_i] s_j[x_j] s_k[x_k]``

    where each ``W_ab`` is a random normal table with zero row and column means (so a planted pair has no
    main effect: each of its fields alone carries no signal, only the pair does) scaled to unit standard
    deviation, and ``s_i, s_j, s_k`` for ``triple = (i, j, k)`` are random balanced sign tables (half +1,
    half -1), so the three-way term has no main effect and no pairwise effect either. The label is drawn
    from ``Bernoulli(sigmoid(logit + e))`` with ``e ~ Normal(0, noise)`` per row (``noise=0`` by default).
    Fields in no planted interaction carry no signal at all.

    With the defaults (10 fields of 10 values, three pairs, one triple) the positive rate is about 43% and the
    Bayes AUC about 0.86; a pairwise model (FM) can reach the pairs' share of it, a first-order model (LR)
    stays near 0.5.

    The planted tables depend only on ``seed`` and the sizes, not on ``n_samples``. Rows are split 80/10/10
    at random.

    Args:
        n_samples: number of rows.
        n_fields: number of fields.
        cardinality: values per field.
        seed: seeds the tables, the rows, the labels and the split.
        pairs: field positions of the planted pairs.
        triple: field positions of the planted three-way interaction, or ``None`` for none.
        strength: scale of each pair's term (its standard deviation over uniform inputs).
        triple_strength: size of the three-way term (``+-triple_strength``).
        bias: the constant of the logit; sets the positive rate.
        noise: standard deviation of per-row Gaussian noise added to the logit before the label is drawn.

    Returns:
        :class:`DatasetSplits`; ``meta`` holds ``pairs`` and ``triples`` (tuples of field names),
        ``signal_fields`` / ``noise_fields``, ``probability`` (``{split: array}``, ``sigmoid(logit)``
        without the noise, aligned with that split's rows), ``bayes_auc`` (``{split: AUC of probability}``;
        no model of the fields ranks better, with or without noise), the positive rates and the settings.
    """
    # Counts are integers (600.5 rows is refused, not truncated); the seed is >= 0, as numpy wants it.
    n_samples = as_int("n_samples", n_samples, minimum=10, where="synthetic")
    n_fields = as_int("n_fields", n_fields, minimum=1, where="synthetic")
    cardinality = as_int("cardinality", cardinality, minimum=2, where="synthetic")
    seed = as_int("seed", seed, minimum=0, where="synthetic")
    strength = as_float("strength", strength, where="synthetic")
    triple_strength = as_float("triple_strength", triple_strength, where="synthetic")
    bias = as_float("bias", bias, where="synthetic")
    noise = as_float("noise", noise, minimum=0, where="synthetic")
    pair_list = [_check_fields(p, 2, n_fields, "pairs") for p in pairs]
    triple_t = _check_fields(triple, 3, n_fields, "triple") if triple is not None else None

    table_ss, row_ss, label_ss, split_ss = np.random.SeedSequence(seed).spawn(4)
    table_rng = np.random.default_rng(table_ss)
    pair_tables = [_centred_pair_table(table_rng, cardinality) for _ in pair_list]
    sign_tables = [_balanced_signs(table_rng, cardinality) for _ in range(3)] if triple_t else []

    x = np.random.default_rng(row_ss).integers(0, cardinality, size=(n_samples, n_fields))
    logit = np.full(n_samples, float(bias))
    for (a, b), w in zip(pair_list, pair_tables):
        logit += strength * w[x[:, a], x[:, b]]
    if triple_t:
        i, j, k = triple_t
        logit += triple_strength * sign_tables[0][x[:, i]] * sign_tables[1][x[:, j]] * sign_tables[2][x[:, k]]
    p_true = 1.0 / (1.0 + np.exp(-logit))

    label_rng = np.random.default_rng(label_ss)
    noisy = logit + label_rng.normal(0.0, noise, size=n_samples) if noise > 0 else logit
    y = (label_rng.random(n_samples) < 1.0 / (1.0 + np.exp(-noisy))).astype(np.int64)

    names = [f"f{i}" for i in range(n_fields)]
    tokens = np.array([f"v{v}" for v in range(cardinality)], dtype=object)
    frame = pd.DataFrame({n: pd.array(tokens[x[:, i]], dtype="str") for i, n in enumerate(names)})
    frame[LABEL] = y

    parts = dict(zip(("train", "valid", "test"), split_indices(n_samples, seed=np.random.default_rng(split_ss))))
    splits = {k: frame.iloc[idx].reset_index(drop=True) for k, idx in parts.items()}
    probability = {k: p_true[idx] for k, idx in parts.items()}

    signal = sorted({i for p in pair_list for i in p} | set(triple_t or ()))
    meta = {
        "pairs": tuple((names[a], names[b]) for a, b in pair_list),
        "triples": ((tuple(names[i] for i in triple_t),) if triple_t else ()),
        "signal_fields": tuple(names[i] for i in signal),
        "noise_fields": tuple(n for i, n in enumerate(names) if i not in signal),
        "probability": probability,
        "bayes_auc": {k: float(roc_auc_score(splits[k][LABEL].to_numpy(), probability[k])) for k in parts},
        "positive_rate": {k: float(splits[k][LABEL].mean()) for k in parts},
        "settings": {"n_samples": n_samples, "n_fields": n_fields, "cardinality": cardinality, "seed": seed,
                     "strength": strength, "triple_strength": triple_strength, "bias": bias, "noise": noise},
    }
    for k, s in splits.items():
        meta[f"{k}_rows"] = int(len(s))
        meta[f"{k}_positives"] = int(s[LABEL].sum())
    schema = Schema(tuple(categorical(n) for n in names), label=LABEL)
    return DatasetSplits(splits["train"], splits["valid"], splits["test"], schema, name="synthetic", meta=meta)
