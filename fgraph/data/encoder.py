"""From a pandas DataFrame to integer field ids, following scikit-learn's fit/transform conventions."""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._validate import as_int, as_str
from ..errors import CheckpointError, ConfigError, DataError, FgraphError, InputFileError, InputFileNotFoundError
from .schema import Field, Schema, row_text
from .space import MISSING, NUM_RESERVED, PAD, RARE, SCALED_MISSING, SCALED_PRESENT, UNKNOWN, EncodedData, FeatureSpace

FORMAT_VERSION = 1

#: A transform warns (:class:`UnknownValuesWarning`) when more than this share of a column's non-missing
#: values are unknown, and the column has at least ``UNKNOWN_WARN_MIN`` of them.
UNKNOWN_WARN_SHARE, UNKNOWN_WARN_MIN = 0.5, 20


class UnknownValuesWarning(UserWarning):
    """A transform found that most of a column's values were never seen by ``fit`` (they all get the
    unknown id): often the column holds another type than at fit (integer codes instead of labels, say)."""


# ----------------------------------------------------------------------------------------------------------
# Canonical values. The encoder compares values as strings, so that the same value read as 3, 3.0 or "3"
# (pandas turns an int column with a gap into floats; a CSV gives strings) maps to the same id at fit and at
# transform time. The rules (docs/data.md, "Canonical values"):
#
# * an integer (any numpy or pandas integer dtype, or a Python int) is its exact decimal: 2**63 + 1 stays
#   "9223372036854775809" -- never a round trip through float64, where ids above 2**53 merge;
# * a float that is a whole number below 2**53 in magnitude (where floats are exact) is that integer
#   ("3.0" -> "3"); any other float keeps its shortest repr ("2.5", "1e+20", "inf"); NaN is missing;
# * a string is stripped ("" is missing); a plain decimal with a point ("1.0", "2.50", "-.5") is read as
#   the float it spells, so "1.0" is 1; other strings, digit-only ones included ("01234"), stay as they are;
# * True and False are "True" and "False" (not 1 and 0);
# * a list, tuple, set, dict or array is refused in a categorical column (declare it ``multi_valued``).
# ----------------------------------------------------------------------------------------------------------

#: Floats are exact integers below this magnitude; above it a float stands for a range of integers.
_EXACT = 2 ** 53
_DECIMAL = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+)")
_CONTAINERS = (list, tuple, set, frozenset, dict, np.ndarray, pd.Series, pd.Index)


def _float_text(x) -> str:
    """The canonical string of a finite or infinite float (``np.float32`` keeps its own shortest repr)."""
    if math.isfinite(x) and float(x).is_integer() and abs(x) < _EXACT:
        return str(int(x))
    return str(x)


def _text(s: str) -> str | None:
    """The canonical string of a string value (None when it is blank)."""
    s = s.strip()
    if not s:
        return None
    if _DECIMAL.fullmatch(s):
        f = float(s)
        return _float_text(f) if math.isfinite(f) else s  # 400 digits overflow to inf: keep the text
    return s


def _canonical_scalar(v) -> str | None:
    """The canonical string of one value (None when it is missing); a container raises ``TypeError``."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return None if math.isnan(v) else _float_text(v)
    if isinstance(v, _CONTAINERS):
        raise TypeError(type(v).__name__)
    return _text(v if isinstance(v, str) else str(v))


def _float_texts(vals: np.ndarray) -> np.ndarray:
    """:func:`_float_text` of every value of a float array (NaN gives "nan"; mask it), vectorised."""
    out = vals.astype(str).astype(object)  # numpy's shortest repr at the array's own precision, as str(x)
    with np.errstate(invalid="ignore"):
        integral = np.isfinite(vals) & (np.mod(vals, 1.0) == 0.0) & (np.abs(vals) < _EXACT)
    out[integral] = vals[integral].astype(np.int64).astype(str)
    return out


def _container_error(name: str, col: pd.Series, pos: int, kind: str) -> DataError:
    return DataError(f"categorical column {name!r} holds a {kind} at {row_text(col.index, pos)} "
                     f"({col.iloc[pos]!r:.60}); a column of lists of tokens must be declared "
                     f"multi_valued({name!r}) in the schema")


def _canonical_strings(col: pd.Series, name: str = "?") -> tuple[np.ndarray, np.ndarray]:
    """Return ``(strings, missing)`` for a categorical column: object array of str, bool mask."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        # The categories' canonical strings, spread over the rows through the codes (unused categories
        # never reach the rows, so they are not counted).
        cats_str, cats_missing = _canonical_strings(pd.Series(col.cat.categories), name)
        codes = col.cat.codes.to_numpy()
        missing = codes < 0
        safe = np.where(missing, 0, codes)
        if len(cats_str) == 0:
            return np.full(len(col), "", dtype=object), np.ones(len(col), dtype=bool)
        return cats_str[safe], missing | cats_missing[safe]
    if pd.api.types.is_bool_dtype(col.dtype):
        missing = col.isna().to_numpy()
        return col.astype(object).astype(str).to_numpy(dtype=object), missing
    if pd.api.types.is_integer_dtype(col.dtype):
        # Exact: the integers' own dtype (int64, uint64, nullable Int64 ...), never float64.
        missing = col.isna().to_numpy()
        np_dtype = getattr(col.dtype, "numpy_dtype", col.dtype)
        vals = col.to_numpy(dtype=np_dtype, na_value=0) if missing.any() else col.to_numpy(dtype=np_dtype)
        return vals.astype(str).astype(object), missing
    if pd.api.types.is_float_dtype(col.dtype):
        np_dtype = getattr(col.dtype, "numpy_dtype", col.dtype)
        vals = col.to_numpy(dtype=np_dtype, na_value=np.nan)
        missing = np.isnan(vals)
        return np.where(missing, "", _float_texts(vals)).astype(object), missing
    # Strings, mixed and object columns: value by value (a string-only column: once per distinct string).
    values = col.to_numpy(dtype=object)
    missing = col.isna().to_numpy()
    if pd.api.types.infer_dtype(values, skipna=True) == "string":
        codes, uniques = pd.factorize(values)
        canon = np.array([_text(u) for u in uniques] + [None], dtype=object)
        out = canon[codes]  # code -1 (missing) picks the trailing None
    else:
        out = np.empty(len(values), dtype=object)
        for pos, v in enumerate(values):
            try:
                out[pos] = None if missing[pos] else _canonical_scalar(v)
            except TypeError as e:
                raise _container_error(name, col, pos, str(e)) from None
    missing = missing | np.array([o is None for o in out], dtype=bool)
    return np.where(missing, "", out).astype(object), missing


def _numeric_values(col: pd.Series, name: str, what: str = "numeric column") -> tuple[np.ndarray, np.ndarray]:
    """Return ``(values, missing)`` of a numeric column, or raise naming the first non-numeric cell.

    Infinite values are refused (:func:`_refuse_infinite`): they would turn a scaler's mean into inf, put
    every row into one bucket, or merge +inf and -inf into one Criteo-log token.
    """
    if pd.api.types.is_bool_dtype(col.dtype):
        col = col.astype(float)
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_complex_dtype(col.dtype):
        vals = col.to_numpy(dtype=float, na_value=np.nan)
    else:
        as_obj = col.astype(object)
        blank = as_obj.isna() | as_obj.map(lambda v: isinstance(v, str) and v.strip() == "")
        parsed = pd.to_numeric(as_obj.where(~blank, np.nan), errors="coerce")
        bad = parsed.isna() & ~blank
        if bad.any():
            pos = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{what} {name!r} has a non-numeric value {as_obj.iloc[pos]!r} at "
                            f"{row_text(col.index, pos)} ({int(bad.sum())} such value(s) in all)")
        vals = parsed.to_numpy(dtype=float, na_value=np.nan)
    _refuse_infinite(vals, col.index, name, what)
    return vals, np.isnan(vals)


def _refuse_infinite(vals: np.ndarray, index: pd.Index, name: str, what: str) -> None:
    bad = np.isinf(vals)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        fix = "fix or drop those rows" if what.startswith("label") else \
            "replace them by NaN to treat them as missing, or clip them to a finite range"
        raise DataError(f"{what} {name!r} holds {float(vals[pos])} at {row_text(index, pos)} "
                        f"({int(bad.sum())} infinite value(s) in all); {fix}")


def _refuse_float32_overflow(scaled: np.ndarray, vals: np.ndarray, index: pd.Index, name: str) -> None:
    """Refuse finite values whose scaled value does not fit float32 (it would become +-inf)."""
    bad = np.abs(np.nan_to_num(scaled)) > np.finfo(np.float32).max
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise DataError(f"numeric column {name!r}: the value {float(vals[pos])!r} at {row_text(index, pos)} scales to "
                        f"{scaled[pos]:.3g}, beyond float32 ({int(bad.sum())} such value(s) in all); rescale "
                        f"the column, or use treatment='log' or 'bucket'")


def criteo_log(values: np.ndarray) -> np.ndarray:
    """The Criteo integer transform: ``floor(log(x) ** 2)`` for ``x > 2``, ``floor(x)`` otherwise."""
    out = np.floor(values)
    big = values > 2
    out[big] = np.floor(np.log(values[big]) ** 2)
    return out


def _row_tokens(v, field: Field, col: pd.Series, pos: int) -> list[str]:
    """The canonical tokens of one cell of a multi-valued column, the first ``max_tokens`` of them."""
    if isinstance(v, str):
        out = [t for t in map(_text, v.split(field.sep)) if t is not None]
    elif isinstance(v, (list, tuple, np.ndarray, pd.Series, set, frozenset)):
        try:
            out = [t for t in map(_canonical_scalar, v) if t is not None]
        except TypeError as e:
            raise DataError(f"multi-valued column {field.name!r} holds a {e} inside the list at "
                            f"{row_text(col.index, pos)}; each token must be a single value") from None
        if isinstance(v, (set, frozenset)):
            out.sort()  # a set has no order: sorted, so that max_tokens keeps the same ones every time
    elif isinstance(v, dict):
        raise DataError(f"multi-valued column {field.name!r} holds a dict at {row_text(col.index, pos)}; "
                        f"give a list of tokens or a {field.sep!r}-separated string")
    else:
        t = None if pd.isna(v) else _canonical_scalar(v)
        out = [] if t is None else [t]
    return out[: field.max_tokens]


def _split_tokens(col: pd.Series, field: Field) -> pd.Series:
    """One entry per (row position, token) in row order, with each row's first ``max_tokens`` kept."""
    rows, tokens = [], []
    for pos, v in enumerate(col.to_numpy(dtype=object)):
        for t in _row_tokens(v, field, col, pos):
            rows.append(pos)
            tokens.append(t)
    return pd.Series(tokens, index=np.asarray(rows, dtype=np.int64), dtype=object)


_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


def _unknown_hint(vocabulary: list, unknown: np.ndarray) -> str:
    """Why a column might be mostly unknown, guessed from what fit saw and what transform got."""
    if not vocabulary:
        return "fit learned no value for this column (was it all missing, or all rare, in the training frame?)"
    share = lambda vals: np.mean([bool(_NUMBER.fullmatch(str(v))) for v in vals[:1000]])  # noqa: E731
    fitted, given = share(list(vocabulary)), share(list(unknown))
    if fitted < 0.5 <= given:
        return "fitted on strings, given numbers (integer codes instead of the labels?)"
    if given < 0.5 <= fitted:
        return "fitted on numbers, given strings (labels instead of the integer codes?)"
    return ("expected for a long-tailed column (hashed ids, many values seen once) on a small training frame; "
            "otherwise, is this the column fit saw, prepared the same way?")


def _good_turing_unseen(values: np.ndarray) -> float:
    """The share of a new frame's values that fit will not have seen, estimated from the training values
    (Good-Turing): the share of training values that occur exactly once."""
    if len(values) == 0:
        return 0.0
    counts = pd.Series(values, dtype=object).value_counts(sort=False).to_numpy()
    return float((counts == 1).sum()) / float(len(values))


def _user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning point at the user's line: the first frame outside this
    module and scikit-learn (which wraps ``transform``)."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and (frame.f_code.co_filename == __file__ or "sklearn" in frame.f_code.co_filename):
        frame, level = frame.f_back, level + 1
    return level


def _space_of(schema: Schema, vocabularies: dict) -> FeatureSpace:
    """The nodes that ``schema`` gives with these vocabularies (one per field; one per granularity of a
    bucketised field)."""
    names, kinds, cards, sources, max_tokens = [], [], [], [], {}
    for f in schema.fields:
        if f.kind == "numeric" and f.treatment == "scale":
            nodes = [(f.name, "scaled", 2)]
        elif f.kind == "numeric" and f.treatment == "bucket":
            nodes = [(f"{f.name}_b{b}", "id", NUM_RESERVED + b) for b in f.buckets]
        else:
            nodes = [(f.name, "bag" if f.kind == "multi" else "id", NUM_RESERVED + len(vocabularies[f.name]))]
            if f.kind == "multi":
                max_tokens[f.name] = f.max_tokens
        for node, kind, card in nodes:
            names.append(node), kinds.append(kind), cards.append(card), sources.append(f.name)
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"bucketised fields produce node names that clash with other fields: {dup}; "
                          f"rename the fields")
    return FeatureSpace(names, kinds, cards, sources, max_tokens)


# ----------------------------------------------------------------------------------------------------------

class _ExactMoments:
    """Exact sums of ``x`` and ``x**2`` over finite float64 values, added array by array.

    Each value is ``m * 2**e`` with an integer ``|m| < 2**53``; ``m`` (and, for the squares, ``m**2``) is
    cut into pieces small enough that numpy sums them exactly per exponent (in blocks), and the block sums
    are added as Python integers. So the mean ``S1 / n`` and the variance ``S2 / n - (S1 / n)**2`` are exact
    rationals, rounded once to float: the scaler is the same however the rows are chunked (numpy's pairwise
    ``mean``/``std`` are not: their rounding depends on the array's length and order).
    """

    _BLOCK = 1 << 15   # 2**15 values x terms < 2**38: block sums < 2**53, exact in float64 bincount

    def __init__(self):
        self.n = 0
        self.s1: dict[int, int] = {}   # exponent -> integer sum of mantissas at that exponent
        self.s2: dict[int, int] = {}
        self.max_abs = 0.0

    def add(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64).ravel()
        if not x.size:
            return
        self.n += int(x.size)
        self.max_abs = max(self.max_abs, float(np.abs(x).max()))
        frac, exp = np.frexp(x)
        mant = np.ldexp(frac, 53).astype(np.int64)          # exact: |mant| < 2**53
        exp = exp.astype(np.int64) - 53
        for lo in range(0, x.size, self._BLOCK):
            m, e = mant[lo:lo + self._BLOCK], exp[lo:lo + self._BLOCK]
            uniq, inv = np.unique(e, return_inverse=True)
            k = len(uniq)
            hi27, lo27 = m >> 27, m & ((1 << 27) - 1)
            s_hi = np.bincount(inv, weights=hi27.astype(np.float64), minlength=k)
            s_lo = np.bincount(inv, weights=lo27.astype(np.float64), minlength=k)
            a = np.abs(m)
            p, q, r = a >> 36, (a >> 18) & ((1 << 18) - 1), a & ((1 << 18) - 1)
            terms = [(72, p * p), (54, 2 * p * q), (36, 2 * p * r + q * q), (18, 2 * q * r), (0, r * r)]
            sums = [(shift, np.bincount(inv, weights=t.astype(np.float64), minlength=k)) for shift, t in terms]
            for g, ex in enumerate(uniq.tolist()):
                self.s1[ex] = self.s1.get(ex, 0) + (int(s_hi[g]) << 27) + int(s_lo[g])
                self.s2[2 * ex] = self.s2.get(2 * ex, 0) + sum(int(s[g]) << shift for shift, s in sums)

    @staticmethod
    def _total(acc: dict[int, int]):
        from fractions import Fraction
        out = Fraction(0)
        for ex, v in acc.items():
            out += Fraction(v << ex) if ex >= 0 else Fraction(v, 1 << -ex)
        return out

    def scaler(self, name: str) -> tuple[float, float]:
        """``(mean, std)`` (population std; 1.0 when it is 0), each rounded once from the exact value."""
        if self.n == 0:
            return 0.0, 1.0
        mean_q = self._total(self.s1) / self.n
        var_q = self._total(self.s2) / self.n - mean_q * mean_q
        try:
            mean, var = float(mean_q), float(var_q)
        except OverflowError:
            mean = var = math.inf
        if not (math.isfinite(mean) and math.isfinite(var)):
            raise DataError(f"numeric column {name!r}: its values are too large to scale (the "
                            f"mean or standard deviation overflows; largest |x| is "
                            f"{self.max_abs:.3g}); rescale the column, or use "
                            f"treatment='log' or 'bucket'")
        std = math.sqrt(var)
        return mean, std if std > 0 else 1.0


class _FitState:
    """What :meth:`FieldEncoder.fit_chunks` accumulates, chunk by chunk: value counts per vocabulary field,
    exact moments per scaled field, the range per bucketised field."""

    def __init__(self, schema: Schema):
        self.schema = schema
        self.counts = {f.name: pd.Series([], dtype=np.int64, index=pd.Index([], dtype=object))
                       for f in schema.fields if not (f.kind == "numeric" and f.treatment in ("scale", "bucket"))}
        self.moments = {f.name: _ExactMoments() for f in schema.fields
                        if f.kind == "numeric" and f.treatment == "scale"}
        self.ranges = {f.name: (None, None) for f in schema.fields if f.kind == "numeric" and f.treatment == "bucket"}

    def add(self, X: pd.DataFrame) -> None:
        for f in self.schema.fields:
            col = X[f.name]
            if f.kind == "categorical":
                strings, missing = _canonical_strings(col, f.name)
                strings = strings[~missing]
            elif f.kind == "multi":
                strings = _split_tokens(col, f).to_numpy(dtype=object)
            else:
                vals, missing = _numeric_values(col, f.name)
                present = vals[~missing]
                if f.treatment == "scale":
                    self.moments[f.name].add(present)
                    continue
                if f.treatment == "bucket":
                    if present.size:
                        lo, hi = self.ranges[f.name]
                        a, b = float(present.min()), float(present.max())
                        self.ranges[f.name] = (a if lo is None else min(lo, a), b if hi is None else max(hi, b))
                    continue
                strings = _float_texts(criteo_log(present))  # log
            if len(strings):
                c = pd.Series(strings, dtype=object).value_counts(sort=False)
                old = self.counts[f.name]
                self.counts[f.name] = c.astype(np.int64) if old.empty else \
                    old.add(c, fill_value=0).astype(np.int64)


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
        as_int("min_count", self.min_count, minimum=1, where="FieldEncoder")
        as_str("handle_unknown", self.handle_unknown, choices=("unknown", "rare"), where="FieldEncoder")

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
        return self.fit_chunks([X])

    def fit_chunks(self, chunks) -> "FieldEncoder":
        """:meth:`fit` on the concatenation of ``chunks`` (an iterable of DataFrames with the schema's
        columns), reading each chunk once: the result (:meth:`fingerprint`, :meth:`transform`) is exactly that
        of ``fit(pd.concat(chunks))``. Counts are added chunk by chunk; a scaler's mean and standard deviation
        come from exact sums of ``x`` and ``x**2`` (:class:`_ExactMoments`), so they do not depend on how the
        rows are cut (one pass, no approximation)."""
        self._check_params()
        state = _FitState(self.schema)
        first = empty = None
        for chunk in chunks:
            if isinstance(chunk, pd.DataFrame) and len(chunk) == 0:
                empty = chunk   # a chunk without training rows
                continue
            self.schema.check_frame(chunk, require_label=False)
            first = chunk
            state.add(chunk)
        if first is None:
            if empty is not None:
                self.schema.check_frame(empty, require_label=False)   # the "no rows" error
            raise DataError("fit_chunks got no chunks: give an iterable of DataFrames")
        self._finish_fit(state)
        return self

    def partial_fit(self, X: pd.DataFrame, y=None) -> "FieldEncoder":
        """Add the rows of ``X`` to what earlier ``partial_fit`` calls saw (scikit-learn style): after each
        call the encoder is fitted on all rows so far, exactly as :meth:`fit` on their concatenation."""
        self._check_params()
        self.schema.check_frame(X, require_label=False)
        state = getattr(self, "_fit_state", None)
        if state is None:
            state = self._fit_state = _FitState(self.schema)
        state.add(X)
        self._finish_fit(state)
        return self

    def _finish_fit(self, state: "_FitState") -> None:
        self.vocabularies_, self.rare_values_ = {}, {}
        self.scalers_, self.bucket_ranges_ = {}, {}
        self.unseen_share_ = {}
        for f in self.schema.fields:
            if f.kind == "numeric" and f.treatment == "scale":
                self.scalers_[f.name] = state.moments[f.name].scaler(f.name)
                continue
            if f.kind == "numeric" and f.treatment == "bucket":
                lo, hi = state.ranges[f.name]
                lo, hi = (0.0, 0.0) if lo is None else (lo, hi)
                if not math.isfinite(hi - lo):
                    raise DataError(f"numeric column {f.name!r}: its range [{lo:.3g}, {hi:.3g}] is too wide "
                                    f"for equal-width buckets (the width overflows); rescale the column")
                self.bucket_ranges_[f.name] = (lo, hi)
                continue
            counts = state.counts[f.name]
            self.vocabularies_[f.name], self.rare_values_[f.name] = self._vocabulary_of_counts(counts, f)
            total = int(counts.sum())
            self.unseen_share_[f.name] = float((counts.to_numpy() == 1).sum()) / total if total else 0.0
        self.space_ = _space_of(self.schema, self.vocabularies_)
        self._build_lookups()

    def _vocabulary_of_counts(self, counts: pd.Series, field: Field) -> tuple[list, list]:
        # Most frequent first; ties by value, so the id order does not depend on row order.
        order = sorted(zip(counts.index, counts.to_numpy()), key=lambda kv: (-kv[1], kv[0]))
        mc = self._min_count(field)
        known = [v for v, c in order if c >= mc]
        rare = [v for v, c in order if c < mc]
        return known, rare

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
            unknown = unseen & ~missing
            unknown[unseen] &= ~is_rare
            self._warn_unknowns(node, strings[unknown], int((~missing).sum()))
        ids[missing] = MISSING
        return ids

    def _warn_unknowns(self, node: str, unknown: np.ndarray, present: int) -> None:
        # A long-tailed column (hashed ids) has many unseen values in any new frame; the share fit expects
        # (Good-Turing: the share of training values seen once) raises the bar, so that only a share far
        # beyond it -- integer codes given for labels, say -- warns. Measured on the Criteo sample, column C3:
        # 51% unseen in the validation split, against an expected 52%: no warning.
        expected = getattr(self, "unseen_share_", {}).get(node, 0.0)
        threshold = max(UNKNOWN_WARN_SHARE, min(0.95, 2 * expected + 0.1))
        if present < UNKNOWN_WARN_MIN or len(unknown) <= threshold * present:
            return
        examples = ", ".join(repr(v) for v in pd.unique(unknown)[:3])
        warnings.warn(f"column {node!r}: {len(unknown)} of {present} non-missing values "
                      f"({len(unknown) / present:.0%}) were never seen by fit and get the unknown id (e.g. "
                      f"{examples}); {_unknown_hint(self.vocabularies_[node], pd.unique(unknown))}",
                      UnknownValuesWarning, stacklevel=_user_stacklevel())

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
                strings, missing = _canonical_strings(col, f.name)
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
                    with np.errstate(over="ignore"):
                        scaled = np.where(missing, 1.0, (np.nan_to_num(vals) - mean) / std)
                    _refuse_float32_overflow(scaled, vals, col.index, f.name)
                    ids[:, node] = np.where(missing, SCALED_MISSING, SCALED_PRESENT)
                    values[:, node] = scaled
                    node += 1
                elif f.treatment == "bucket":
                    lo, hi = self.bucket_ranges_[f.name]
                    for b in f.buckets:
                        width = (hi - lo) / b if hi > lo else 1.0
                        with np.errstate(over="ignore"):  # far outside the range: +-inf, clipped below
                            idx = np.clip(np.floor((np.nan_to_num(vals, nan=lo) - lo) / width), 0, b - 1)
                        ids[:, node] = np.where(missing, MISSING, idx.astype(np.int64) + NUM_RESERVED)
                        node += 1
                else:
                    filled = np.where(missing, 3.0, vals)
                    strings = _float_texts(criteo_log(filled))
                    ids[:, node] = self._ids(f.name, strings, missing)
                    node += 1
        y = self._labels(X) if has_label else None
        return EncodedData(
            ids=torch.from_numpy(ids),
            values=None if values is None else torch.from_numpy(values),
            bags=None if bags is None else torch.from_numpy(bags),
            y=y,
            space=self.space_,
            label_name=self.schema.label,
        )

    def _labels(self, X: pd.DataFrame) -> torch.Tensor:
        """The label column as float32: numbers, numeric strings (``"0"``, ``" 1 "``) and booleans (1/0).
        Text, a missing label, an infinite one or one beyond float32 is a :class:`DataError`."""
        name = self.schema.label
        col = X[name]
        vals, missing = _numeric_values(col, name, what="label column")
        if missing.any():
            raise DataError(f"label column {name!r} has a missing value at "
                            f"{row_text(col.index, int(np.flatnonzero(missing)[0]))} ({int(missing.sum())} "
                            f"missing label(s) in all); drop those rows or fill them in")
        with np.errstate(over="ignore"):
            y = vals.astype(np.float32)
        big = np.isinf(y)
        if big.any():
            pos = int(np.flatnonzero(big)[0])
            raise DataError(f"label column {name!r} holds {float(vals[pos])!r} at {row_text(col.index, pos)}, beyond "
                            f"float32; labels are 0/1 (or -1/1) for classification")
        return torch.from_numpy(y)

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
            # Optional (older files lack it): only tunes the unknown-values warning, not the ids.
            "unseen_share": {k: float(v) for k, v in getattr(self, "unseen_share_", {}).items()},
        }

    def fingerprint(self) -> str:
        """A SHA-256 hex digest of what gives the ids their meaning: the schema, the vocabularies (in id
        order), the rare values, the scalers and the bucket ranges.

        Two encoders whose vocabularies have the same sizes but hold other values, or the same values in
        another order, have different fingerprints; a checkpoint stores it to refuse such a mismatch.
        """
        check_is_fitted(self, "space_")
        state = self.state_dict()
        meaning = {k: state[k] for k in ("schema", "space", "vocabularies", "rare_values", "scalers",
                                         "bucket_ranges")}
        text = json.dumps(meaning, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(text.encode("ascii")).hexdigest()

    @classmethod
    def from_state_dict(cls, state: dict) -> "FieldEncoder":
        """The encoder that :meth:`state_dict` describes.

        A state that is not one (not a dict, another format, a missing key, vocabularies that do not fit
        the stored feature space ...) raises :class:`~fgraph.errors.CheckpointError` saying what is wrong.
        """
        if not isinstance(state, dict):
            raise CheckpointError(f"encoder state must be a dict, got {type(state).__name__}")
        if state.get("format") != FORMAT_VERSION:
            raise CheckpointError(f"unsupported encoder format {state.get('format')!r} (expected "
                                  f"{FORMAT_VERSION}); it was not written by this version of fgraph's "
                                  f"FieldEncoder.save")
        missing = [k for k in _STATE_KEYS if k not in state]
        if missing:
            raise CheckpointError(f"encoder state lacks the key(s) {missing}; it is truncated or not an "
                                  f"encoder's state")
        try:
            params = state["params"]
            enc = cls(Schema.from_dict(state["schema"]), min_count=params.get("min_count", 1),
                      handle_unknown=params.get("handle_unknown", "unknown"))
            enc._check_params()
            enc.space_ = FeatureSpace.from_dict(state["space"])
            enc.vocabularies_ = _str_lists(state["vocabularies"], "vocabularies")
            enc.rare_values_ = _str_lists(state["rare_values"], "rare_values")
            enc.scalers_ = _number_pairs(state["scalers"], "scalers")
            enc.bucket_ranges_ = _number_pairs(state["bucket_ranges"], "bucket_ranges")
            enc.unseen_share_ = {str(k): float(v) for k, v in dict(state.get("unseen_share", {})).items()}
        except CheckpointError:
            raise
        except (FgraphError, KeyError, TypeError, ValueError, AttributeError) as e:
            raise CheckpointError(f"encoder state is malformed ({type(e).__name__}: {e})") from None
        for f in enc.schema.fields:
            kind = f.treatment if f.kind == "numeric" else "vocabulary"
            stores = {"scale": ("scalers",), "bucket": ("bucket_ranges",)}.get(kind, ("vocabularies", "rare_values"))
            for key in stores:
                if f.name not in getattr(enc, key + "_"):
                    raise CheckpointError(f"encoder state has no {key} entry for field {f.name!r}")
        if any(std <= 0 for _, std in enc.scalers_.values()):
            raise CheckpointError("encoder state: a scaler has a standard deviation <= 0")
        try:
            expected = _space_of(enc.schema, enc.vocabularies_)
        except ConfigError as e:
            raise CheckpointError(f"encoder state is malformed ({e})") from None
        diff = expected.describe_difference(enc.space_) or (
            None if expected.to_dict() == enc.space_.to_dict() else "sources or bag lengths differ")
        if diff:
            raise CheckpointError(f"encoder state is inconsistent: its stored feature space does not match its "
                                  f"schema and vocabularies ({diff})")
        enc._build_lookups()
        return enc

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted encoder as JSON (atomically: a temporary file, then a rename)."""
        path = Path(path)
        if not path.parent.is_dir():
            raise InputFileNotFoundError(f"cannot save the encoder to {path}: the directory {path.parent} does "
                                         f"not exist")
        tmp = path.with_name(path.name + ".tmp")
        # Not ASCII escapes: JSON would write two lone surrogates as a pair that reads back as one character.
        tmp.write_bytes(json.dumps(self.state_dict(), ensure_ascii=False).encode("utf-8", "surrogatepass"))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FieldEncoder":
        """Read an encoder written by :meth:`save`.

        A missing file raises :class:`~fgraph.errors.InputFileNotFoundError`; an empty, truncated or
        corrupt file, or one that is not an encoder's, :class:`~fgraph.errors.InputFileError` naming it.
        """
        path = Path(path)
        try:
            text = path.read_bytes().decode("utf-8", "surrogatepass")
        except FileNotFoundError:
            raise InputFileNotFoundError(f"encoder file {path} does not exist") from None
        except UnicodeDecodeError as e:
            raise InputFileError(f"encoder file {path} is not UTF-8 text (byte {e.object[e.start:e.end]!r} at "
                                 f"offset {e.start}); it is corrupt, or not a file written by "
                                 f"FieldEncoder.save") from None
        except OSError as e:
            raise InputFileError(f"cannot read encoder file {path}: {e.strerror or e}") from None
        if not text.strip():
            raise InputFileError(f"encoder file {path} is empty; save the encoder again")
        try:
            state = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputFileError(f"encoder file {path} is not valid JSON ({e.msg} at line {e.lineno}, column "
                                 f"{e.colno}); it is truncated or corrupt: save the encoder again") from None
        try:
            return cls.from_state_dict(state)
        except CheckpointError as e:
            raise InputFileError(f"encoder file {path}: {e}") from None

    def value_of(self, node: str, index: int):
        """The value behind id ``index`` of ``node`` (reserved ids give ``"<missing>"`` etc.)."""
        k = self.space_.index(node)
        if not 0 <= index < self.space_.cardinalities[k]:
            raise DataError(f"id {index} is outside the vocabulary of field {node!r} (0.."
                            f"{self.space_.cardinalities[k] - 1})")
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


_STATE_KEYS = ("schema", "params", "space", "vocabularies", "rare_values", "scalers", "bucket_ranges")


def _str_lists(d, key: str) -> dict[str, list[str]]:
    if not isinstance(d, dict) or not all(isinstance(v, list) and all(isinstance(t, str) for t in v)
                                          for v in d.values()):
        raise CheckpointError(f"encoder state: {key!r} must map field names to lists of strings")
    return {k: list(v) for k, v in d.items()}


def _number_pairs(d, key: str) -> dict[str, tuple[float, float]]:
    ok = isinstance(d, dict) and all(
        isinstance(v, (list, tuple)) and len(v) == 2
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)
        for v in d.values())
    if not ok:
        raise CheckpointError(f"encoder state: {key!r} must map field names to pairs of finite numbers")
    return {k: (float(v[0]), float(v[1])) for k, v in d.items()}
