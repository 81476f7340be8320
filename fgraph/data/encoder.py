"""From a pandas DataFrame to integer field ids, following scikit-learn's fit/transform conventions."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .schema import Field, Schema
from .space import MISSING, NUM_RESERVED, PAD, RARE, SCALED_MISSING, SCALED_PRESENT, UNKNOWN, EncodedData, FeatureSpace

FORMAT_VERSION = 1


# ----------------------------------------------------------------------------------------------------------
# Canonical values. The encoder compares values as strings so that the same value read as 3, 3.0 or "3"
# (pandas turns an int column with a gap into floats) maps to the same id at fit and at transform time.
# ----------------------------------------------------------------------------------------------------------

def _canonical_strings(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(strings, missing)`` for a categorical column: object array of str, bool mask."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats_str, cats_missing = _canonical_strings(pd.Series(col.cat.categories))
        codes = col.cat.codes.to_numpy()
        missing = codes < 0
        safe = np.where(missing, 0, codes)
        if len(cats_str) == 0:
            return np.full(len(col), "", dtype=object), np.ones(len(col), dtype=bool)
        return cats_str[safe], missing | cats_missing[safe]
    if pd.api.types.is_bool_dtype(col.dtype):
        missing = col.isna().to_numpy()
        return col.astype(object).astype(str).to_numpy(dtype=object), missing
    if pd.api.types.is_numeric_dtype(col.dtype):
        vals = col.to_numpy(dtype=float, na_value=np.nan)
        missing = np.isnan(vals)
        filled = np.where(missing, 0.0, vals)
        # Decide per value, so that 3.0 is "3" even when another row holds 2.5.
        integral = (np.mod(filled, 1.0) == 0.0) & (np.abs(filled) < 2 ** 62)
        out = filled.astype(str).astype(object)
        out[integral] = filled[integral].astype(np.int64).astype(str)
        return out, missing
    # Mixed / object columns: the same per-value rule as multi-valued tokens (3.0 -> "3", " a " -> "a").
    missing = col.isna().to_numpy()
    canon = col.astype(object).map(_canonical_scalar).to_numpy(dtype=object)
    missing = missing | pd.isna(canon)
    return np.where(missing, "", canon).astype(object), missing


def _numeric_values(col: pd.Series, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(values, missing)`` of a numeric column, or raise naming the first non-numeric cell."""
    if pd.api.types.is_bool_dtype(col.dtype):
        col = col.astype(float)
    if pd.api.types.is_numeric_dtype(col.dtype):
        vals = col.to_numpy(dtype=float, na_value=np.nan)
        return vals, np.isnan(vals)
    as_obj = col.astype(object)
    blank = as_obj.isna() | as_obj.map(lambda v: isinstance(v, str) and v.strip() == "")
    parsed = pd.to_numeric(as_obj.where(~blank, np.nan), errors="coerce")
    bad = parsed.isna() & ~blank
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"numeric field {name!r} has a non-numeric value {as_obj.iloc[pos]!r} "
                         f"at row {col.index[pos]!r} ({int(bad.sum())} such value(s) in all)")
    vals = parsed.to_numpy(dtype=float, na_value=np.nan)
    return vals, np.isnan(vals)


def criteo_log(values: np.ndarray) -> np.ndarray:
    """The Criteo integer transform: ``floor(log(x) ** 2)`` for ``x > 2``, ``floor(x)`` otherwise."""
    out = np.floor(values)
    big = values > 2
    out[big] = np.floor(np.log(values[big]) ** 2)
    return out


def _canonical_scalar(v) -> str | None:
    """The canonical string of one token (None when it is missing), matching :func:`_canonical_strings`."""
    if v is None or v is pd.NA:
        return None
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return None
        return str(int(v)) if float(v).is_integer() else str(float(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    s = str(v).strip()
    return s or None


def _split_tokens(col: pd.Series, field: Field) -> pd.Series:
    """One entry per (row position, token) in row order, with each row's first ``max_tokens`` kept."""
    def tokens(v):
        if isinstance(v, str):
            parts = v.split(field.sep)
        elif isinstance(v, (list, tuple, np.ndarray, pd.Series)):
            parts = list(v)
        else:
            parts = [v]
        out = [t for t in map(_canonical_scalar, parts) if t is not None]
        return out[: field.max_tokens]

    lists = col.reset_index(drop=True).map(tokens, na_action="ignore")
    return lists.explode().dropna()


# ----------------------------------------------------------------------------------------------------------

class FieldEncoder(TransformerMixin, BaseEstimator):
    """Encode a DataFrame into per-field integer ids, the input of every fgraph model.

    ``fit`` learns, per field, a vocabulary (categorical and multi-valued fields, Criteo-log values), a
    scaler (scaled numeric fields) or bucket edges (bucketised numeric fields). ``transform`` turns any
    frame with the same columns into an :class:`~fgraph.data.EncodedData`.

    Reserved ids, the same in every vocabulary: ``0`` missing (NaN, None or an empty string), ``1``
    unknown (a value never seen by ``fit``), ``2`` rare (seen fewer than ``min_count`` times). Known
    values follow, most frequent first.

    Args:
        schema: the :class:`~fgraph.data.Schema` of the table.
        min_count: values seen fewer times than this in the training frame share the rare id. A field's
            own ``min_count`` overrides it.
        handle_unknown: ``"unknown"`` (default) maps unseen values to the unknown id; ``"rare"`` maps them
            to the rare id, whose embedding is trained on the rare training values.

    Attributes:
        space_: the :class:`~fgraph.data.FeatureSpace` (node names, kinds, vocabulary sizes).
        vocabularies_: ``{node: [value, ...]}`` known values of each id/bag node, in id order from 3.
        rare_values_: ``{node: [value, ...]}`` values mapped to the rare id.
        scalers_: ``{node: (mean, std)}`` of scaled numeric nodes.
        bucket_ranges_: ``{column: (min, max)}`` of bucketised numeric columns.
    """

    def __init__(self, schema: Schema, min_count: int = 1, handle_unknown: str = "unknown"):
        self.schema = schema
        self.min_count = min_count
        self.handle_unknown = handle_unknown

    # -- fitting --------------------------------------------------------------------------------------
    def _check_params(self):
        if not isinstance(self.schema, Schema):
            raise TypeError(f"schema must be a fgraph Schema, got {type(self.schema).__name__}")
        if not isinstance(self.min_count, (int, np.integer)) or isinstance(self.min_count, bool) \
                or self.min_count < 1:
            raise ValueError(f"min_count must be an integer >= 1, got {self.min_count!r}")
        if self.handle_unknown not in ("unknown", "rare"):
            raise ValueError(f"handle_unknown must be 'unknown' or 'rare', got {self.handle_unknown!r}")

    def _min_count(self, field: Field) -> int:
        return int(field.min_count if field.min_count is not None else self.min_count)

    def _fit_vocabulary(self, strings: np.ndarray, field: Field) -> tuple[list, list]:
        counts = pd.Series(strings, dtype=object).value_counts(sort=False)
        # Most frequent first; ties by value, so the id order does not depend on row order.
        order = sorted(zip(counts.index, counts.to_numpy()), key=lambda kv: (-kv[1], kv[0]))
        mc = self._min_count(field)
        known = [v for v, c in order if c >= mc]
        rare = [v for v, c in order if c < mc]
        return known, rare

    def fit(self, X: pd.DataFrame, y=None) -> "FieldEncoder":
        """Learn vocabularies, scalers and bucket edges from the training frame ``X``."""
        self._check_params()
        self.schema.check_frame(X, require_label=False)
        names, kinds, cards, sources, max_tokens = [], [], [], [], {}
        self.vocabularies_, self.rare_values_ = {}, {}
        self.scalers_, self.bucket_ranges_ = {}, {}
        for f in self.schema.fields:
            col = X[f.name]
            if f.kind == "categorical":
                strings, missing = _canonical_strings(col)
                known, rare = self._fit_vocabulary(strings[~missing], f)
                self.vocabularies_[f.name], self.rare_values_[f.name] = known, rare
                names.append(f.name), kinds.append("id"), cards.append(NUM_RESERVED + len(known))
                sources.append(f.name)
            elif f.kind == "multi":
                tokens = _split_tokens(col, f)
                known, rare = self._fit_vocabulary(tokens.to_numpy(dtype=object), f)
                self.vocabularies_[f.name], self.rare_values_[f.name] = known, rare
                names.append(f.name), kinds.append("bag"), cards.append(NUM_RESERVED + len(known))
                sources.append(f.name)
                max_tokens[f.name] = f.max_tokens
            else:
                vals, missing = _numeric_values(col, f.name)
                present = vals[~missing]
                if f.treatment == "scale":
                    mean = float(present.mean()) if present.size else 0.0
                    std = float(present.std()) if present.size else 1.0
                    self.scalers_[f.name] = (mean, std if std > 0 else 1.0)
                    names.append(f.name), kinds.append("scaled"), cards.append(2), sources.append(f.name)
                elif f.treatment == "bucket":
                    lo = float(present.min()) if present.size else 0.0
                    hi = float(present.max()) if present.size else 0.0
                    self.bucket_ranges_[f.name] = (lo, hi)
                    for b in f.buckets:
                        names.append(f"{f.name}_b{b}"), kinds.append("id")
                        cards.append(NUM_RESERVED + b), sources.append(f.name)
                else:  # log
                    strings = criteo_log(present).astype(np.int64).astype(str).astype(object)
                    known, rare = self._fit_vocabulary(strings, f)
                    self.vocabularies_[f.name], self.rare_values_[f.name] = known, rare
                    names.append(f.name), kinds.append("id"), cards.append(NUM_RESERVED + len(known))
                    sources.append(f.name)
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"bucketised fields produce node names that clash with other fields: {dup}")
        self.space_ = FeatureSpace(names, kinds, cards, sources, max_tokens)
        self._build_lookups()
        return self

    def _build_lookups(self):
        self._lookup = {n: pd.Index(v, dtype=object) for n, v in self.vocabularies_.items()}
        self._rare_lookup = {n: pd.Index(v, dtype=object) for n, v in self.rare_values_.items()}

    def _ids(self, node: str, strings: np.ndarray, missing: np.ndarray) -> np.ndarray:
        pos = self._lookup[node].get_indexer(strings)
        ids = np.where(pos >= 0, pos + NUM_RESERVED, -1)
        unseen = ids < 0
        if unseen.any():
            is_rare = self._rare_lookup[node].get_indexer(strings[unseen]) >= 0
            fallback = RARE if self.handle_unknown == "rare" else UNKNOWN
            ids[unseen] = np.where(is_rare, RARE, fallback)
        ids[missing] = MISSING
        return ids

    # -- transforming ---------------------------------------------------------------------------------
    def transform(self, X: pd.DataFrame) -> EncodedData:
        """Encode ``X``. The label column is read when present (as float), otherwise ``y`` is None."""
        check_is_fitted(self, "space_")
        self.schema.check_frame(X, require_label=False)
        has_label = self.schema.label in X.columns
        n_rows = len(X)
        ids = np.zeros((n_rows, self.space_.num_fields), dtype=np.int32)
        values = np.ones((n_rows, self.space_.num_fields), dtype=np.float32) if self.space_.scaled_positions \
            else None
        bag_len = self.space_.bag_length
        bags = np.full((n_rows, len(self.space_.bag_positions), bag_len), PAD, dtype=np.int32) \
            if bag_len else None
        node, bag_slot = 0, 0
        for f in self.schema.fields:
            col = X[f.name]
            if f.kind == "categorical":
                strings, missing = _canonical_strings(col)
                ids[:, node] = self._ids(f.name, strings, missing)
                node += 1
            elif f.kind == "multi":
                tokens = _split_tokens(col, f)
                rows = tokens.index.to_numpy()
                slot = tokens.groupby(level=0).cumcount().to_numpy()
                tok = tokens.to_numpy(dtype=object)
                bag = bags[:, bag_slot]
                bag[rows, slot] = self._ids(f.name, tok, np.zeros(len(tok), dtype=bool))
                bag[:, 0] = np.where(bag[:, 0] == PAD, MISSING, bag[:, 0])  # an empty bag is "missing"
                ids[:, node] = bag[:, 0]
                node, bag_slot = node + 1, bag_slot + 1
            else:
                vals, missing = _numeric_values(col, f.name)
                if f.treatment == "scale":
                    mean, std = self.scalers_[f.name]
                    ids[:, node] = np.where(missing, SCALED_MISSING, SCALED_PRESENT)
                    values[:, node] = np.where(missing, 1.0, (np.nan_to_num(vals) - mean) / std)
                    node += 1
                elif f.treatment == "bucket":
                    lo, hi = self.bucket_ranges_[f.name]
                    for b in f.buckets:
                        width = (hi - lo) / b if hi > lo else 1.0
                        idx = np.clip(np.floor((np.nan_to_num(vals, nan=lo) - lo) / width), 0, b - 1)
                        ids[:, node] = np.where(missing, MISSING, idx.astype(np.int64) + NUM_RESERVED)
                        node += 1
                else:
                    filled = np.where(missing, 3.0, vals)
                    strings = criteo_log(filled).astype(np.int64).astype(str).astype(object)
                    ids[:, node] = self._ids(f.name, strings, missing)
                    node += 1
        y = None
        if has_label:
            try:
                y_np = pd.to_numeric(X[self.schema.label], errors="raise").to_numpy(dtype=np.float32, copy=True)
            except (ValueError, TypeError) as e:
                raise ValueError(f"label column {self.schema.label!r} must be numeric: {e}") from None
            if np.isnan(y_np).any():
                row = X.index[int(np.flatnonzero(np.isnan(y_np))[0])]
                raise ValueError(f"label column {self.schema.label!r} has a missing value at row {row!r}")
            y = torch.from_numpy(y_np)
        return EncodedData(
            ids=torch.from_numpy(ids),
            values=None if values is None else torch.from_numpy(values),
            bags=None if bags is None else torch.from_numpy(bags),
            y=y,
            space=self.space_,
            label_name=self.schema.label,
        )

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "space_")
        return np.asarray(self.space_.names, dtype=object)

    # -- persistence ----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The fitted encoder as plain Python types (safe for ``torch.load(weights_only=True)`` and JSON)."""
        check_is_fitted(self, "space_")
        return {
            "format": FORMAT_VERSION,
            "schema": self.schema.to_dict(),
            "params": {"min_count": int(self.min_count), "handle_unknown": self.handle_unknown},
            "space": self.space_.to_dict(),
            "vocabularies": {k: list(v) for k, v in self.vocabularies_.items()},
            "rare_values": {k: list(v) for k, v in self.rare_values_.items()},
            "scalers": {k: [float(a), float(b)] for k, (a, b) in self.scalers_.items()},
            "bucket_ranges": {k: [float(a), float(b)] for k, (a, b) in self.bucket_ranges_.items()},
        }

    @classmethod
    def from_state_dict(cls, state: dict) -> "FieldEncoder":
        if state.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported encoder format {state.get('format')!r} (expected {FORMAT_VERSION})")
        enc = cls(Schema.from_dict(state["schema"]), **state["params"])
        enc.space_ = FeatureSpace.from_dict(state["space"])
        enc.vocabularies_ = {k: list(v) for k, v in state["vocabularies"].items()}
        enc.rare_values_ = {k: list(v) for k, v in state["rare_values"].items()}
        enc.scalers_ = {k: tuple(v) for k, v in state["scalers"].items()}
        enc.bucket_ranges_ = {k: tuple(v) for k, v in state["bucket_ranges"].items()}
        enc._build_lookups()
        return enc

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted encoder as JSON (atomically: a temporary file, then a rename)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.state_dict()))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FieldEncoder":
        return cls.from_state_dict(json.loads(Path(path).read_text()))

    def value_of(self, node: str, index: int):
        """The value behind id ``index`` of ``node`` (reserved ids give ``"<missing>"`` etc.)."""
        k = self.space_.index(node)
        if self.space_.kinds[k] == "scaled":
            return "<missing>" if index == SCALED_MISSING else "<value>"
        if index < NUM_RESERVED:
            return ("<missing>", "<unknown>", "<rare>")[index]
        if node in self.vocabularies_:
            return self.vocabularies_[node][index - NUM_RESERVED]
        src = self.space_.sources[k]
        lo, hi = self.bucket_ranges_[src]
        b = int(node.rsplit("_b", 1)[1])
        width = (hi - lo) / b if hi > lo else 1.0
        i = index - NUM_RESERVED
        return f"[{lo + i * width:.6g}, {lo + (i + 1) * width:.6g})"
