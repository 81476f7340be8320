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

import pandas as pd

KINDS = ("categorical", "numeric", "multi")
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
            raise ValueError(f"field name must be a non-empty string, got {self.name!r}")
        if self.kind not in KINDS:
            raise ValueError(f"field {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "numeric" and self.treatment not in NUMERIC_TREATMENTS:
            raise ValueError(
                f"field {self.name!r}: treatment must be one of {NUMERIC_TREATMENTS}, got {self.treatment!r}"
            )
        object.__setattr__(self, "buckets", tuple(int(b) for b in self.buckets))
        if self.kind == "numeric" and self.treatment == "bucket":
            if not self.buckets or any(b < 1 for b in self.buckets):
                raise ValueError(f"field {self.name!r}: buckets must be positive counts, got {self.buckets}")
        if self.max_tokens < 1:
            raise ValueError(f"field {self.name!r}: max_tokens must be >= 1, got {self.max_tokens}")
        if self.min_count is not None and int(self.min_count) < 1:
            raise ValueError(f"field {self.name!r}: min_count must be >= 1, got {self.min_count}")


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
            raise ValueError("a Schema needs at least one field")
        names = [f.name for f in fields]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate field names in schema: {dup}")
        if self.label in names:
            raise ValueError(f"the label column {self.label!r} is also declared as a field")
        object.__setattr__(self, "fields", fields)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def __getitem__(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"no field named {name!r} in schema (fields: {self.names})")

    def __len__(self) -> int:
        return len(self.fields)

    def __iter__(self):
        return iter(self.fields)

    def check_frame(self, frame: pd.DataFrame, require_label: bool = True) -> None:
        """Raise a clear error if ``frame`` lacks a declared column or has no rows."""
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"expected a pandas DataFrame, got {type(frame).__name__}")
        missing = [n for n in self.names if n not in frame.columns]
        if missing:
            raise KeyError(f"field column(s) {missing} declared in the schema are missing from the frame "
                           f"(it has columns {list(frame.columns)})")
        if require_label and self.label not in frame.columns:
            raise KeyError(f"label column {self.label!r} is missing from the frame "
                           f"(it has columns {list(frame.columns)})")
        if len(frame) == 0:
            raise ValueError("the frame is empty: there are no rows to encode")

    def to_dict(self) -> dict:
        return {"label": self.label, "fields": [asdict(f) for f in self.fields]}

    @classmethod
    def from_dict(cls, d: dict) -> "Schema":
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
