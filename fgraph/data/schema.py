"""Declaring what the columns of a table are.

A :class:`Schema` names the label column and, for each input column, a :class:`Field` that says how the
column becomes one or more nodes of the field graph:

* ``categorical`` -- one value per row, looked up in a per-field vocabulary;
* ``numeric`` -- a number, handled by one of three treatments (see :class:`Field`);
* ``multi`` -- a list of tokens per row (movie genres, tags), embedded as the mean of its tokens.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .._validate import as_int
from ..errors import ColumnNotFoundError, ConfigError, DataError

KINDS = ("categorical", "numeric", "multi")


class NotAFrameError(DataError, TypeError):
    """The table given to the encoder is not a pandas DataFrame (a ``TypeError`` too, as it always was)."""


NUMERIC_TREATMENTS = ("scale", "bucket", "log")


@dataclass(frozen=True)
class Field:
    """One input column and how it is encoded.

    Args:
        name: the column name in the DataFrame.
        kind: ``"categorical"``, ``"numeric"`` or ``"multi"`` (multi-valued categorical).
        treatment: for numeric fields only.

            * ``"scale"`` (default): one embedding vector per field, multiplied by the value after a
              fitted standard scaler, ``e = v * x``. A missing value gets its own vector.
            * ``"bucket"``: equal-width buckets fitted on the training range, at every granularity of
              ``buckets`` at once; each granularity is a categorical field of its own (FIVES).
            * ``"log"``: the Criteo transform ``int(log(x) ** 2)`` for ``x > 2`` (values up to 2 are kept
              as they are), then treated as a categorical value.
        buckets: bucket counts for ``treatment="bucket"``.
        max_tokens: for multi-valued fields, how many tokens of a row are kept (the first ones).
        sep: for multi-valued fields given as strings, the token separator.
        min_count: per-field override of the encoder's ``min_count``.
    """

    name: str
    kind: str = "categorical"
    treatment: str = "scale"
    buckets: tuple[int, ...] = (10, 100, 1000)
    max_tokens: int = 10
    sep: str = "|"
    min_count: int | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"field name must be a non-empty string, got {self.name!r}")
        where = f"field {self.name!r}"
        if self.kind not in KINDS:
            raise ConfigError(f"{where}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "numeric" and self.treatment not in NUMERIC_TREATMENTS:
            raise ConfigError(f"{where}: treatment must be one of {NUMERIC_TREATMENTS}, got {self.treatment!r}")
        # Counts are integers >= 1: 1.5 is refused, never truncated (as_int also refuses True).
        buckets = (self.buckets,) if isinstance(self.buckets, (int, float, str)) else self.buckets
        try:
            buckets = tuple(buckets)
        except TypeError:
            raise ConfigError(f"{where} option 'buckets' must be a list of bucket counts, got {self.buckets!r}") \
                from None
        object.__setattr__(self, "buckets", tuple(as_int("buckets", b, minimum=1, where=where) for b in buckets))
        if self.kind == "numeric" and self.treatment == "bucket" and not self.buckets:
            raise ConfigError(f"{where}: buckets must be positive counts, got {self.buckets}")
        object.__setattr__(self, "max_tokens", as_int("max_tokens", self.max_tokens, minimum=1, where=where))
        object.__setattr__(self, "min_count", as_int("min_count", self.min_count, minimum=1, allow_none=True,
                                                     where=where))
        if not isinstance(self.sep, str) or not self.sep:
            raise ConfigError(f"{where} option 'sep' must be a non-empty string, got {self.sep!r}")


def categorical(name: str, **kwargs) -> Field:
    """A categorical field."""
    return Field(name, "categorical", **kwargs)


def numeric(name: str, treatment: str = "scale", **kwargs) -> Field:
    """A numeric field with the given treatment (``"scale"``, ``"bucket"`` or ``"log"``)."""
    return Field(name, "numeric", treatment=treatment, **kwargs)


def multi_valued(name: str, max_tokens: int = 10, sep: str = "|", **kwargs) -> Field:
    """A multi-valued categorical field (a list of tokens, or a ``sep``-separated string)."""
    return Field(name, "multi", max_tokens=max_tokens, sep=sep, **kwargs)


@dataclass(frozen=True)
class Schema:
    """The fields of a table and its label column.

    Args:
        fields: the input fields, in the order they become nodes of the field graph.
        label: the name of the label column.

    Example::

        schema = Schema([categorical("user"), multi_valued("genres"), numeric("age", "bucket")],
                        label="click")
    """

    fields: tuple[Field, ...]
    label: str = "label"

    def __post_init__(self):
        fields = tuple(self.fields)
        for f in fields:
            if not isinstance(f, Field):
                raise TypeError(f"Schema fields must be Field objects, got {f!r}")
        if not fields:
            raise ConfigError("a Schema needs at least one field")
        if not isinstance(self.label, str) or not self.label:
            raise ConfigError(f"the schema's label must be a column name (a non-empty string), got {self.label!r}")
        names = [f.name for f in fields]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"duplicate field names in schema: {dup}")
        if self.label in names:
            raise ConfigError(f"the label column {self.label!r} is also declared as a field")
        object.__setattr__(self, "fields", fields)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def __getitem__(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise ColumnNotFoundError(f"no field named {name!r} in schema (fields: {self.names})")

    def __len__(self) -> int:
        return len(self.fields)

    def __iter__(self):
        return iter(self.fields)

    def check_frame(self, frame: pd.DataFrame, require_label: bool = True) -> None:
        """Raise a clear error if ``frame`` is not a DataFrame (:class:`NotAFrameError`, a ``TypeError``),
        lacks a declared column (:class:`~fgraph.errors.ColumnNotFoundError`, a ``KeyError``), holds a
        column that the schema reads twice under one name, or has no rows (:class:`~fgraph.errors.DataError`).

        Columns the schema does not name are ignored, duplicated or not.
        """
        if not isinstance(frame, pd.DataFrame):
            raise NotAFrameError(f"expected a pandas DataFrame, got {type(frame).__name__}; build one with "
                                 f"pd.DataFrame(...) or read one with pd.read_csv(...)")
        missing = [n for n in self.names if n not in frame.columns]
        if missing:
            raise ColumnNotFoundError(f"field column(s) {missing} declared in the schema are missing from the "
                                      f"frame (it has columns {list(frame.columns)})")
        if require_label and self.label not in frame.columns:
            raise ColumnNotFoundError(f"label column {self.label!r} is missing from the frame "
                                      f"(it has columns {list(frame.columns)})")
        counts = pd.Series(frame.columns).value_counts()
        dup = [n for n in self.names + [self.label] if counts.get(n, 0) > 1]
        if dup:
            raise DataError(f"the frame has several columns named {dup}; pandas allows it, but the encoder "
                            f"would not know which to read: rename or drop the copies")
        if len(frame) == 0:
            raise DataError("the frame is empty: there are no rows to encode")

    def to_dict(self) -> dict:
        return {"label": self.label, "fields": [asdict(f) for f in self.fields]}

    @classmethod
    def from_dict(cls, d: dict) -> "Schema":
        """The schema of :meth:`to_dict` (a field's missing options take their defaults)."""
        fields = [Field(**{**f, "buckets": tuple(f.get("buckets", (10, 100, 1000)))}) for f in d["fields"]]
        return cls(tuple(fields), label=d["label"])

    @classmethod
    def from_columns(cls, label: str, categorical: Iterable[str] = (), numeric: Iterable[str] = (),
                     multi: Iterable[str] = (), numeric_treatment: str = "scale") -> "Schema":
        """Build a schema from lists of column names (categorical first, then multi, then numeric)."""
        fields: list[Field] = [Field(c, "categorical") for c in categorical]
        fields += [Field(c, "multi") for c in multi]
        fields += [Field(c, "numeric", treatment=numeric_treatment) for c in numeric]
        return cls(tuple(fields), label=label)


def as_schema(fields: Sequence[Field] | Schema, label: str | None = None) -> Schema:
    if isinstance(fields, Schema):
        return fields
    return Schema(tuple(fields), label=label or "label")


def row_text(index: pd.Index, pos: int) -> str:
    """How an error names the row at position ``pos``: ``"row 3"``, or ``"row 'a' (position 3)"`` when the
    frame's index label is not the position (so a non-unique index is still unambiguous)."""
    label = index[pos]
    label = label.item() if isinstance(label, np.generic) else label  # np.int64(3) -> 3
    if type(label) is int and label == pos:
        return f"row {pos}"
    return f"row {label!r} (position {pos})"
