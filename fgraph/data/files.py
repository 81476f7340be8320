"""A user's own tables: reading CSV and Parquet files, inferring a schema, schema files, and splits.

The path from files to a model (the CLI's ``fgraph train --data`` builds on it)::

    splits = file_splits("train.csv", label="click")          # or valid=..., test=..., schema="schema.yaml"
    print(splits.describe())                                  # the schema, the label, how it was split
    train, valid, test, schema = splits

* :func:`read_file` reads a CSV (``,`` ``;`` or tab, sniffed; ``.gz``, ``.bz2``, ``.xz`` decompressed) or
  Parquet file in chunks, with an :class:`~fgraph.errors.InputFileError` naming the file (and the line) for
  every way it can be broken;
* :func:`infer_schema` says what each column is (the rules are in its docstring), :func:`describe_schema`
  prints it, one line per field;
* :func:`load_schema` / :func:`save_schema` read and write schema files (YAML), full or partial;
* :func:`file_splits` puts it together: the training file's schema, the label made 0/1, the splits.

The user's files are only ever read.
"""
from __future__ import annotations

import csv
import io
import os
import re
import warnings
from dataclasses import dataclass, field as dc_field, fields as dc_fields
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .._validate import as_float, as_int, as_str, unique_key_yaml_loader
from ..errors import ColumnNotFoundError, ConfigError, DataError, InputFileError, InputFileNotFoundError
from .datasets._common import (DEFAULT_FRACTIONS, DatasetSplits, _line_of_row, _no_rows, _open_binary,
                               file_errors, header_names, open_table, read_chunked, split_indices)
from .schema import KINDS, NUMERIC_TREATMENTS, Field, Schema

__all__ = ["read_file", "file_columns", "sniff_separator", "infer_schema", "infer_schema_report", "SchemaReport", "describe_schema",
           "SchemaSpec", "load_schema", "save_schema", "file_splits", "FileSplits", "LabelEncoding",
           "SchemaInferenceWarning", "CSV_SUFFIXES", "PARQUET_SUFFIXES", "SEPARATORS"]

#: File suffixes read as delimited text, and as Parquet (a compression suffix may follow the text ones).
CSV_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz")
#: The separators :func:`read_file` tells apart when ``sep`` is not given.
SEPARATORS = (",", ";", "\t")
#: Rows per chunk when reading (CSV chunks, Parquet record batches).
DEFAULT_CHUNKSIZE = 100_000
#: Rows of the training file that schema inference looks at (the first ones).
SAMPLE_ROWS = 100_000
#: An integer column with at most this many distinct values (in the rows inspected) is categorical.
MAX_INTEGER_CATEGORIES = 20
#: A text column is multi-valued when at least this share of its non-empty cells split into 2+ tokens.
MULTI_MIN_SHARE = 0.5
#: Token separators looked for in text columns, in order of preference on a tie.
TOKEN_SEPARATORS = ("|", ";", ",")
#: The most tokens per row an inferred multi-valued field keeps.
MAX_TOKENS_CAP = 32
#: A text column whose values are all distinct is dropped as an identifier once it has this many values.
ID_MIN_VALUES = 20
#: Cells that mean "missing" in a column that is otherwise numbers (in a text column they stay text).
MISSING_MARKERS = frozenset({"NA", "N/A", "n/a", "na", "NaN", "nan", "NULL", "null", "None"})

_ENCODING = "utf-8-sig"   # UTF-8, and a byte-order mark (Excel writes one) is not part of the first name
_QUOTE = '"'
_SNIFF_BYTES = 1 << 16
_INT_TEXT = re.compile(r"[+-]?(?:0|[1-9][0-9]*)")
_LEADING_ZERO = re.compile(r"[+-]?0[0-9]")


class SchemaInferenceWarning(UserWarning):
    """:func:`infer_schema` left a column out (empty, an identifier, a type the encoder cannot use)."""


# ==========================================================================================================
# Reading files
# ==========================================================================================================

def _file_format(path: Path) -> str:
    """``"csv"`` or ``"parquet"`` from the suffixes of ``path``, or an InputFileError saying what is read."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSION_SUFFIXES:
        if len(suffixes) >= 2 and suffixes[-2] in CSV_SUFFIXES:
            return "csv"
    elif suffixes and suffixes[-1] in CSV_SUFFIXES:
        return "csv"
    elif suffixes and suffixes[-1] in PARQUET_SUFFIXES:
        return "parquet"
    text = ", ".join(CSV_SUFFIXES)
    raise InputFileError(f"{path}: unknown file type {''.join(path.suffixes) or '(no suffix)'!r}; fgraph reads "
                         f"delimited text ({text}, optionally compressed: {', '.join(COMPRESSION_SUFFIXES)}) and "
                         f"Parquet ({', '.join(PARQUET_SUFFIXES)}); rename the file or convert it")


def _existing_file(path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"a data file must be given as a path, got {type(path).__name__} {path!r}")
    p = Path(path).expanduser()
    if p.is_dir():
        raise InputFileError(f"{p} is a directory; give a data file (.csv, .tsv, .parquet ...)")
    if not p.exists():
        raise InputFileNotFoundError(f"{p}: no such file")
    return p


def _sample_text(path: Path) -> tuple[str, bool]:
    """The first bytes of ``path`` (decompressed) as text, and whether that is the whole file."""
    with file_errors(path, _ENCODING):
        with _open_binary(path) as fh:
            raw = fh.read(_SNIFF_BYTES + 1)
        whole = len(raw) <= _SNIFF_BYTES
        # A multi-byte character cut at the end of the sample is no error of the file (a bad byte further in
        # is reported by the reader, with its line).
        text = raw.decode(_ENCODING) if whole else raw[:_SNIFF_BYTES].decode(_ENCODING, errors="ignore")
    return text, whole


def sniff_separator(path, sample: str | None = None) -> str:
    """The separator of a delimited file, one of :data:`SEPARATORS`, told from its first 64 KiB.

    The candidates are those that split the header line into two or more names; of them, the one under
    which most of the following records have as many fields as the header wins, then the one giving more
    fields. (A broken line further down then gets the reader's error naming it, not a failed guess.) A
    ``.tsv`` file is tab-separated; a header with none of the separators means a single column (``","``).

    Raises:
        InputFileError: two separators fit equally well: the message asks for ``sep=``.
    """
    path = Path(path)
    if path.suffixes and (path.suffixes[-1].lower() == ".tsv" or
                          (len(path.suffixes) > 1 and path.suffixes[-2].lower() == ".tsv")):
        return "\t"
    whole = True
    if sample is None:
        sample, whole = _sample_text(path)
    lines = sample.splitlines()
    if not whole and len(lines) > 1:
        lines = lines[:-1]   # the last line of a cut sample is incomplete
    text = "\n".join(lines)
    scores = {}
    for sep in SEPARATORS:
        records = [r for r in csv.reader(io.StringIO(text), delimiter=sep, quotechar=_QUOTE) if r]
        if not records or len(records[0]) < 2:
            continue
        width = len(records[0])
        agree = sum(len(r) == width for r in records[1:]) / max(len(records) - 1, 1)
        scores[sep] = (agree, width)
    if not scores:
        return ","
    best = max(scores.values())
    winners = [s for s in SEPARATORS if scores.get(s) == best]
    if len(winners) > 1:
        raise InputFileError(f"{path}: cannot tell its separator: {_names(winners)} both split its first lines "
                             f"into {best[1]} fields; pass the separator (sep=... / --sep)")
    return winners[0]


def _names(seps: Iterable[str]) -> str:
    return " and ".join("tab" if s == "\t" else repr(s) for s in seps)


def _csv_header(path: Path, sep: str) -> list[str]:
    """The column names of a delimited file (as pandas reads them), checked: present, each named once, not
    all numbers (a data line)."""
    with file_errors(path, _ENCODING):
        names = header_names(path, sep, _ENCODING, _QUOTE)
    if not names or names == [""]:
        raise _no_rows(path)
    blank = [i + 1 for i, n in enumerate(names) if not n]
    if blank:
        raise InputFileError(f"{path}: column(s) {blank} of the header line have no name; every column needs one "
                             f"(the first line of the file names the columns)")
    if all(_is_number(n) for n in names):
        raise InputFileError(f"{path}: the first line ({sep.join(names)[:80]!r}) holds only numbers, so it looks "
                             f"like data rather than a header; add a first line naming the columns")
    # pandas' own reading of the header line (it keeps a trailing blank of a name, say), so that the names
    # given back select the columns pandas reads.
    with open_table(path, sep=sep, quotechar=_QUOTE, nrows=0, dtype=str, encoding=_ENCODING,
                    skipinitialspace=True) as head:
        return [str(c) for c in head.columns]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def file_columns(path, *, sep: str | None = None) -> list[str]:
    """The column names of a data file (the header of a CSV, the schema of a Parquet file).

    Raises the errors of :func:`read_file` for a missing, unknown, empty or broken file.
    """
    p = _existing_file(path)
    if _file_format(p) == "parquet":
        return list(_parquet_file(p).schema_arrow.names)
    return _csv_header(p, sep if sep is not None else sniff_separator(p))


def read_file(path, *, columns: Sequence[str] | None = None, chunksize: int = DEFAULT_CHUNKSIZE,
              sep: str | None = None, text: Iterable[str] = ()) -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame, read in chunks of ``chunksize`` rows.

    **CSV** (``.csv``, ``.tsv``, ``.txt``; ``.gz``, ``.bz2`` and ``.xz`` are decompressed): the separator is
    ``sep``, or sniffed among ``,`` ``;`` and tab (:func:`sniff_separator`). The first line names the
    columns; fields may be quoted (``"a,b"``; a quote inside a quoted field is doubled). Every cell is read
    as text, chunk by chunk, and held as a ``category`` column; once the whole file is read, a column whose cells are all numbers
    becomes numeric (``int64``, nullable ``Int64`` when some are missing, or ``float64``), unless it is in
    ``text``. Empty cells are missing; so are the markers ``NA``, ``NaN``, ``null``, ``None`` ... (see
    :data:`MISSING_MARKERS`), but only in a column that is otherwise numbers: in a text column they stay
    text. A column of numbers written with leading zeros (``"007"``: a code, not a quantity) stays text, as
    do integers beyond int64. So the result does not depend on ``chunksize``.

    **Parquet** (``.parquet``, ``.pq``): read by record batches with pyarrow, with the file's own types;
    integer columns with nulls become nullable integers (never float), strings ``category`` columns.

    Args:
        path: the file.
        columns: read only these columns, in this order (default: all, in the file's order).
        chunksize: rows per chunk (CSV) or record batch (Parquet).
        sep: the CSV separator (default: sniffed); ignored for Parquet.
        text: CSV columns to keep as text even when they hold only numbers.

    Returns:
        the frame, with a fresh 0..n-1 index.

    Raises:
        InputFileNotFoundError: no such file.
        InputFileError: an unknown suffix (the message lists what is read), an empty file or one without data
            rows, no header line (the first line is numbers), a header naming a column twice or a column
            without a name, a line with another number of fields (the line is named), an unclosed quote,
            text that is not UTF-8 (the line is named), a corrupt compressed file, a file that is not valid
            Parquet.
        ColumnNotFoundError: a column of ``columns`` is not in the file (the message lists those that are).
    """
    p = _existing_file(path)
    chunksize = as_int("chunksize", chunksize, minimum=1)
    if columns is not None:
        if isinstance(columns, str):
            columns = [columns]
        columns = list(columns)
    if _file_format(p) == "parquet":
        return _read_parquet(p, columns, chunksize)
    if sep is not None and (not isinstance(sep, str) or len(sep) != 1 or sep in "\r\n" + _QUOTE):
        raise ConfigError(f"option 'sep' must be one character such as ',' ';' or '\\t', got {sep!r}")
    sep = sep if sep is not None else sniff_separator(p)
    names = _csv_header(p, sep)
    _check_columns(p, names, columns)
    usecols = columns if columns is not None else names
    frame = read_chunked(p, chunksize=chunksize, nrows=None, category_columns=usecols, sep=sep, quotechar=_QUOTE,
                         dtype=str, keep_default_na=False, na_values=[""], encoding=_ENCODING,
                         skipinitialspace=True, usecols=usecols)
    frame = frame[usecols]
    keep_text = set(text)
    converted = {c: _numbers_from_text(frame[c]) for c in usecols if c not in keep_text}
    return frame.assign(**{c: v for c, v in converted.items() if v is not None}).reset_index(drop=True)


def _check_columns(path: Path, names: Sequence[str], columns: Sequence[str] | None) -> None:
    if columns is None:
        return
    dup = sorted({c for c in columns if list(columns).count(c) > 1})
    if dup:
        raise ConfigError(f"columns {dup} are asked for more than once when reading {path}")
    missing = [c for c in columns if c not in names]
    if missing:
        raise ColumnNotFoundError(f"{path} has no column(s) {missing}; its columns are {list(names)}")


def _numbers_from_text(col: pd.Series) -> pd.Series | None:
    """A text column (``category`` of strings) as numbers when every cell is a number or missing; None when
    it stays text. Only the distinct values are parsed (the categories), not every row."""
    if not isinstance(col.dtype, pd.CategoricalDtype):
        return None
    cats = pd.Series(col.cat.categories.astype(object), dtype=object).str.strip()
    marker = (cats.isin(list(MISSING_MARKERS)) | (cats == "")).to_numpy()
    # A text column usually shows itself in its first categories: look there before parsing all of them.
    head = cats[:256][~marker[:256]]
    if len(head) and pd.to_numeric(head, errors="coerce").isna().any():
        return None
    values = cats[~marker]
    if len(values) == 0:
        return None
    as_text = pd.Series(values, dtype=object)
    if as_text.str.match(_LEADING_ZERO).any():
        return None   # "007": a code; as a number it would become 7
    numbers = pd.to_numeric(as_text, errors="coerce")
    if numbers.isna().any():
        return None
    codes = col.cat.codes.to_numpy()
    absent = codes < 0
    if as_text.str.fullmatch(_INT_TEXT).all():
        ints = [int(v) for v in values]
        if min(ints) < -2 ** 63 or max(ints) >= 2 ** 63:
            return None   # beyond int64: an identifier; as a float it would lose digits
        table = np.zeros(len(cats), dtype=np.int64)
        table[~marker] = ints
        safe = np.where(absent, 0, codes)
        missing = absent | marker[safe]
        out = table[safe]
        if missing.any():
            out = pd.array(out, dtype="Int64")
            out[missing] = pd.NA
        return pd.Series(out, index=col.index, name=col.name)
    table = np.full(len(cats), np.nan)
    table[~marker] = numbers.to_numpy(dtype=float)
    out = np.where(absent, np.nan, table[np.where(absent, 0, codes)])
    return pd.Series(out, index=col.index, name=col.name)


def _parquet_file(path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.stat().st_size == 0:
        raise _no_rows(path)
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise InputFileError(f"{path}: not a readable Parquet file ({_first_line(e)}); it may be truncated, or "
                             f"not Parquet at all (a CSV file named .parquet?)") from None
    names = list(pf.schema_arrow.names)
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputFileError(f"{path}: the file names the column(s) {dup} more than once; rename the copies")
    return pf


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _read_parquet(path: Path, columns: list[str] | None, chunksize: int) -> pd.DataFrame:
    import pyarrow as pa

    pf = _parquet_file(path)
    names = list(pf.schema_arrow.names)
    _check_columns(path, names, columns)
    if pf.metadata.num_rows == 0:
        raise _no_rows(path)
    try:
        batches = list(pf.iter_batches(batch_size=chunksize, columns=columns))
        table = pa.Table.from_batches(batches, schema=batches[0].schema)
        frame = table.to_pandas(types_mapper=_nullable_integers, strings_to_categorical=True)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise InputFileError(f"{path}: the Parquet file is corrupt or truncated ({_first_line(e)}); write it "
                             f"again") from None
    # Nullable integers only where something is missing: elsewhere plain int64, as a CSV gives.
    narrow = {c: frame[c].to_numpy(dtype=frame[c].dtype.numpy_dtype) for c in frame.columns
              if _nullable_int(frame[c].dtype) and not frame[c].isna().any()}
    frame = frame.assign(**narrow) if narrow else frame
    return frame[columns if columns is not None else names].reset_index(drop=True)


def _nullable_int(dtype) -> bool:
    return isinstance(dtype, pd.api.extensions.ExtensionDtype) and pd.api.types.is_integer_dtype(dtype)


def _nullable_integers(arrow_type):
    import pyarrow as pa

    if pa.types.is_integer(arrow_type):
        return pd.api.types.pandas_dtype(("U" if pa.types.is_unsigned_integer(arrow_type) else "") +
                                         f"Int{arrow_type.bit_width}")
    return None


# ==========================================================================================================
# Schema inference
# ==========================================================================================================

@dataclass(frozen=True)
class SchemaReport:
    """What :func:`infer_schema_report` decided, and why.

    Attributes:
        schema: the schema.
        reasons: field name -> why it got its kind (``"integer, 7 distinct values (<= 20)"``).
        dropped: column -> why it is not a field (empty, an identifier, listed under ``drop`` ...).
        sample_rows: how many rows (the first ones) the inference looked at.
        source: where the frame came from (a file name), for messages.
        origin: where the schema comes from, in words (``"schema inferred on the first 1,000 rows of x.csv"``).
    """

    schema: Schema
    reasons: dict = dc_field(default_factory=dict)
    dropped: dict = dc_field(default_factory=dict)
    sample_rows: int = 0
    source: str | None = None
    origin: str = ""

    def describe(self) -> str:
        """Where the schema comes from, then one line per field with the reason, then the columns left out."""
        lines = [(self.origin or "schema") + ":", describe_schema(self.schema, self.reasons)]
        for name, why in self.dropped.items():
            lines.append(f"  {name}: not used ({why})")
        return "\n".join(lines)


def infer_schema(frame: pd.DataFrame, label: str, *, spec: "SchemaSpec | None" = None,
                 sample_rows: int = SAMPLE_ROWS, max_categories: int = MAX_INTEGER_CATEGORIES,
                 multi_share: float = MULTI_MIN_SHARE, max_tokens: int = MAX_TOKENS_CAP) -> Schema:
    """The :class:`~fgraph.data.Schema` of ``frame``, inferred from its first ``sample_rows`` rows.

    Rules, column by column (the label column is the label, never a field):

    * ``bool``, ``category``, text and mixed object columns are **categorical**; a text column is
      **multi-valued** instead when at least ``multi_share`` (half) of its non-empty cells split into two or
      more tokens on one of ``|``, ``;``, ``,`` (the separator with the largest share wins, ``|`` first on a
      tie) and the tokens repeat across cells (fewer distinct tokens than distinct cells). Its ``max_tokens``
      is the most tokens seen in a cell, capped at ``max_tokens`` (32). A column of lists or arrays (Parquet
      list columns) is multi-valued too.
    * integer columns (and float columns holding only whole numbers, as an integer column with gaps reads) are
      **categorical** when they hold at most ``max_categories`` (20) distinct values in the rows inspected,
      otherwise **numeric**;
    * other float columns are **numeric**, with the ``"scale"`` treatment (standardised, times one learned
      vector; a missing value gets its own vector). Choose ``"bucket"`` or ``"log"`` in a schema file.
    * left out, with a :class:`SchemaInferenceWarning` saying why: a column empty in every row inspected; a
      text column of at least 20 values that are all distinct (an identifier: every value would be unseen at
      prediction time, so it carries nothing to learn; list it in a schema file to keep it); date, time,
      duration and complex columns (the encoder has no treatment for them: derive numbers or categories).

    ``spec`` (a partial or full schema, e.g. from :func:`load_schema`) overrides the inference for the
    columns it lists and drops those under ``drop``. :func:`infer_schema_report` gives the reasons as well.

    Raises:
        ColumnNotFoundError: the label, or a column ``spec`` names, is not in ``frame``.
        ConfigError: no column is left to be a field, or ``spec`` disagrees with ``label``.
    """
    report = infer_schema_report(frame, label, spec=spec, sample_rows=sample_rows, max_categories=max_categories,
                                 multi_share=multi_share, max_tokens=max_tokens)
    for name, why in report.dropped.items():
        if name not in (spec.drop if spec is not None else ()) and (spec is None or spec.others == "infer"):
            warnings.warn(f"column {name!r} is not used: {why}", SchemaInferenceWarning, stacklevel=2)
    return report.schema


def infer_schema_report(frame: pd.DataFrame, label: str | None, *, spec: "SchemaSpec | None" = None,
                        sample_rows: int = SAMPLE_ROWS, max_categories: int = MAX_INTEGER_CATEGORIES,
                        multi_share: float = MULTI_MIN_SHARE, max_tokens: int = MAX_TOKENS_CAP,
                        source: str | None = None) -> SchemaReport:
    """:func:`infer_schema` with its reasons: a :class:`SchemaReport` (no warnings; print
    :meth:`SchemaReport.describe`). ``source`` names the frame (its file) in messages; ``label`` may be None
    when ``spec`` names it."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"infer_schema needs a pandas DataFrame, got {type(frame).__name__}")
    sample_rows = as_int("sample_rows", sample_rows, minimum=1)
    max_categories = as_int("max_categories", max_categories, minimum=0)
    multi_share = as_float("multi_share", multi_share, minimum=0.0, maximum=1.0, strict_min=True)
    max_tokens = as_int("max_tokens", max_tokens, minimum=1)
    where = source or "the frame"
    spec = spec if spec is not None else SchemaSpec()
    label = spec.resolve_label(label)
    columns = list(frame.columns)
    bad_names = [c for c in columns if not isinstance(c, str) or not c]
    if bad_names:
        raise ConfigError(f"{where}: column names must be non-empty strings, got {bad_names[:5]}")
    dup = sorted({c for c in columns if columns.count(c) > 1})
    if dup:
        raise DataError(f"{where} has several columns named {dup}; rename or drop the copies")
    if label not in columns:
        raise ColumnNotFoundError(f"label column {label!r} is not in {where}; its columns are {columns}")
    spec.check_columns(columns, where)
    given = {f.name: f for f in spec.fields}
    sample = frame.iloc[:sample_rows]
    fields, reasons, dropped = [], {}, {}
    order = [f.name for f in spec.fields] if spec.others == "drop" else columns
    for name in order:
        if name == label:
            continue
        if name in given:
            fields.append(given[name])
            reasons[name] = f"as {spec.source or 'the schema'} says"
        elif name in spec.drop:
            dropped[name] = f"listed under 'drop' in {spec.source or 'the schema'}"
        else:
            fld, why = _infer_column(sample[name], name, max_categories, multi_share, max_tokens, len(sample))
            if fld is None:
                dropped[name] = why
            else:
                fields.append(fld)
                reasons[name] = why
    if spec.others == "drop":
        for name in columns:
            if name != label and name not in given:
                dropped[name] = f"not listed in {spec.source or 'the schema'} (others: drop)"
    if not fields:
        left = "; ".join(f"{k}: {v}" for k, v in dropped.items()) or "it has only the label column"
        raise ConfigError(f"{where}: no column is left to learn from ({left}); list the columns to use in a "
                          f"schema file")
    rows = min(sample_rows, len(frame))
    of = f" of {source}" if source else ""
    inferred = len(fields) - sum(1 for f in fields if f.name in given)
    if not inferred:
        origin = f"schema from {spec.source or 'the given schema'}"
    else:
        origin = f"schema inferred on the first {rows:,} rows{of}"
        if given or spec.drop:
            origin += f", {spec.source or 'the given schema'} overriding {len(given) + len(spec.drop)} column(s)"
    return SchemaReport(Schema(tuple(fields), label=label), reasons, dropped, rows, source, origin)


def _infer_column(col: pd.Series, name: str, max_categories: int, multi_share: float, cap: int,
                  rows: int) -> tuple[Field | None, str]:
    """The field of one column (or None, to leave it out) and why."""
    dtype = col.dtype
    present = int(col.notna().sum())
    if present == 0:
        return None, f"empty in all {rows:,} rows inspected"
    if (pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype)
            or isinstance(dtype, (pd.PeriodDtype, pd.IntervalDtype)) or pd.api.types.is_complex_dtype(dtype)):
        return None, (f"a {dtype} column, which the encoder has no treatment for; derive numbers or categories "
                      f"from it (hour, weekday ...)")
    if pd.api.types.is_bool_dtype(dtype):
        return Field(name, "categorical"), "boolean"
    if isinstance(dtype, pd.CategoricalDtype):
        cats = dtype.categories
        if pd.api.types.is_string_dtype(cats.dtype) or cats.dtype == object:
            return _infer_text(col, name, multi_share, cap, "text")
        return Field(name, "categorical"), "a category column"
    if pd.api.types.is_integer_dtype(dtype):
        return _integer_rule(col, name, max_categories, "integer")
    if pd.api.types.is_float_dtype(dtype):
        vals = col.dropna().to_numpy(dtype=float)
        if np.all(np.isfinite(vals)) and np.all(vals == np.round(vals)):
            return _integer_rule(col, name, max_categories, "whole-number floats")
        return Field(name, "numeric"), "floats"
    # object (and pandas' string dtype): what the cells are
    kind = pd.api.types.infer_dtype(col, skipna=True)
    if kind == "string":
        return _infer_text(col, name, multi_share, cap, "text")
    if kind in ("integer", "floating", "mixed-integer-float", "decimal"):
        nums = pd.to_numeric(col, errors="coerce")
        if nums.notna().sum() == present:
            return _infer_column(nums, name, max_categories, multi_share, cap, rows)
    if kind == "boolean":
        return Field(name, "categorical"), "booleans"
    cells = col.dropna()
    if len(cells) and cells.map(lambda v: isinstance(v, (list, tuple, np.ndarray, set, frozenset))).all():
        longest = int(cells.map(len).max())
        return (Field(name, "multi", max_tokens=max(1, min(longest, cap))),
                f"lists of tokens (up to {longest}{f', {cap} kept' if longest > cap else ''})")
    return Field(name, "categorical"), f"mixed values ({kind})"


def _integer_rule(col: pd.Series, name: str, max_categories: int, what: str) -> tuple[Field, str]:
    distinct = int(col.nunique(dropna=True))
    if distinct <= max_categories:
        return Field(name, "categorical"), f"{what}, {distinct} distinct value(s) (<= {max_categories})"
    return Field(name, "numeric"), f"{what}, {distinct:,} distinct values (> {max_categories})"


def _text_counts(col: pd.Series) -> pd.Series:
    """How often each distinct non-empty (stripped) text value occurs."""
    counts = col.value_counts(sort=False, dropna=True)
    counts = counts[counts > 0]
    keys = pd.Index(counts.index, dtype=object).map(lambda v: str(v).strip())
    counts = pd.Series(counts.to_numpy(), index=keys).groupby(level=0, sort=False).sum()
    return counts[counts.index != ""]


def _infer_text(col: pd.Series, name: str, multi_share: float, cap: int, what: str) -> tuple[Field | None, str]:
    counts = _text_counts(col)
    total = int(counts.sum())
    if total == 0:
        return None, "empty (blank cells only) in the rows inspected"
    cells = list(counts.index)
    best = None
    for sep in TOKEN_SEPARATORS:
        ntok = np.array([sum(1 for t in c.split(sep) if t.strip()) for c in cells])
        share = float(counts.to_numpy()[ntok >= 2].sum()) / total
        if share < multi_share:
            continue
        tokens = {t.strip() for c in cells for t in c.split(sep) if t.strip()}
        if len(tokens) >= len(cells):
            continue   # tokens do not repeat: free text with commas, not lists of tags
        if best is None or share > best[1]:
            best = (sep, share, int(ntok.max()))
    if best is not None:
        sep, share, longest = best
        kept = max(1, min(longest, cap))
        return (Field(name, "multi", max_tokens=kept, sep=sep),
                f"{what}, {share:.0%} of cells split on {sep!r} (up to {longest} tokens"
                f"{f', the first {cap} kept' if longest > cap else ''})")
    if total >= ID_MIN_VALUES and len(cells) == total:
        return None, (f"an identifier: all {total:,} values in the rows inspected are distinct, so every value "
                      f"would be unseen at prediction time; list it in a schema file to keep it anyway")
    return Field(name, "categorical"), f"{what}, {len(cells):,} distinct value(s)"


#: How describe_schema words each numeric treatment (what fgraph.data.encoder does with it).
_TREATMENT_TEXT = {
    "scale": "scaled: x -> (x - mean) / std, times a learned vector; missing -> its own vector",
    "bucket": "bucketised: equal-width buckets over the training range, {buckets} buckets, one field each; "
              "missing -> its own id",
    "log": "log: floor(ln(x)^2) for x > 2, floor(x) otherwise, one id per value; missing -> its own id",
}


def describe_schema(schema: Schema, reasons: Mapping[str, str] | None = None) -> str:
    """One line per field -- its name, its kind and, for numeric fields, the treatment -- then the label::

          user     categorical
          age      numeric (scaled: x -> (x - mean) / std, times a learned vector; missing -> its own vector)
          genres   multi-valued (split on '|', the first 6 tokens of a row)
          label: click

    ``reasons`` (from :class:`SchemaReport`) adds why each field got its kind, in brackets.
    """
    width = max(len(f.name) for f in schema.fields)
    lines = []
    for f in schema.fields:
        if f.kind == "numeric":
            text = "numeric (" + _TREATMENT_TEXT[f.treatment].format(buckets="/".join(map(str, f.buckets))) + ")"
        elif f.kind == "multi":
            text = f"multi-valued (split on {f.sep!r}, the first {f.max_tokens} token(s) of a row)"
        else:
            text = "categorical"
        if f.min_count is not None:
            text += f", min_count {f.min_count}"
        why = (reasons or {}).get(f.name)
        lines.append(f"  {f.name:<{width}}  {text}" + (f"  [{why}]" if why else ""))
    lines.append(f"  label: {schema.label}")
    return "\n".join(lines)


# ==========================================================================================================
# Schema files
# ==========================================================================================================

_FIELD_KEYS = tuple(f.name for f in dc_fields(Field))
_SPEC_KEYS = ("label", "fields", "drop", "others")
_OTHERS = ("infer", "drop")


@dataclass(frozen=True)
class SchemaSpec:
    """A schema as a user writes it: some or all fields, columns to drop, what to do with the others.

    The file format (YAML; :func:`load_schema`)::

        label: click              # optional: the label column (--label / label= otherwise)
        fields:                   # the columns whose treatment you choose; either a list ...
          - {name: age, kind: numeric, treatment: bucket, buckets: [10, 100]}
          - {name: genres, kind: multi, sep: "|", max_tokens: 6}
          - {name: zip, kind: categorical, min_count: 5}
        # ... or a mapping:  fields: {age: numeric, genres: {kind: multi, sep: "|"}}
        drop: [row_id, notes]     # columns not to use
        others: infer             # the columns not listed: "infer" (default) or "drop"

    A **partial** schema (``others: infer``) overrides the inference for the fields it lists and infers the
    rest; a **full** one (``others: drop``, what :func:`save_schema` writes) is the schema, fields in its
    order. A field's keys are those of :class:`~fgraph.data.Field`: ``name``, ``kind`` (``categorical``,
    ``numeric`` or ``multi``), ``treatment`` (``scale``, ``bucket`` or ``log``), ``buckets``, ``max_tokens``,
    ``sep``, ``min_count``; the ones not given take their defaults.

    Attributes:
        fields: the fields listed.
        drop: the columns to leave out.
        label: the label column, if the schema names it.
        others: ``"infer"`` or ``"drop"``.
        source: where the spec came from (a file name), for messages.
    """

    fields: tuple[Field, ...] = ()
    drop: tuple[str, ...] = ()
    label: str | None = None
    others: str = "infer"
    source: str | None = None

    def __post_init__(self):
        where = self.source or "schema"
        object.__setattr__(self, "fields", tuple(self.fields))
        object.__setattr__(self, "drop", tuple(self.drop))
        as_str("others", self.others, choices=_OTHERS, where=where)
        names = [f.name for f in self.fields]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"{where}: field(s) {dup} are listed more than once")
        both = sorted(set(names) & set(self.drop))
        if both:
            raise ConfigError(f"{where}: column(s) {both} are both listed as fields and under 'drop'; keep one")
        if self.label is not None and (self.label in names or self.label in self.drop):
            raise ConfigError(f"{where}: the label column {self.label!r} is also listed as a field or under 'drop'")

    @classmethod
    def from_schema(cls, schema: Schema, source: str | None = None) -> "SchemaSpec":
        """The full spec of a :class:`~fgraph.data.Schema` (its fields, its label, ``others: drop``)."""
        return cls(tuple(schema.fields), (), schema.label, "drop", source)

    @classmethod
    def from_dict(cls, data: Mapping, source: str | None = None) -> "SchemaSpec":
        """The spec of a mapping in the file format above (see the class docstring).

        Raises:
            ConfigError: an unknown key (named, with the known ones), a field without a name, a bad value.
        """
        where = source or "schema"
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where} must be a mapping with the keys {list(_SPEC_KEYS)}, got "
                              f"{type(data).__name__}")
        unknown = sorted(str(k) for k in data if k not in _SPEC_KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; a schema has {list(_SPEC_KEYS)}")
        raw = data.get("fields") or []
        if isinstance(raw, Mapping):
            items = []
            for name, body in raw.items():
                body = {"kind": body} if isinstance(body, str) else body
                if body is None:
                    body = {}
                if not isinstance(body, Mapping):
                    raise ConfigError(f"{where}: field {name!r} must be a kind (categorical, numeric, multi) or a "
                                      f"mapping of options, got {body!r}")
                if "name" in body and body["name"] != name:
                    raise ConfigError(f"{where}: field {name!r} has name {body['name']!r}; give it once")
                items.append({**body, "name": name})
        elif isinstance(raw, (list, tuple)):
            items = list(raw)
        else:
            raise ConfigError(f"{where}: 'fields' must be a list of fields or a mapping of names to fields, got "
                              f"{type(raw).__name__}")
        fields = tuple(_field_from(item, k, where) for k, item in enumerate(items))
        drop = data.get("drop") or []
        if isinstance(drop, str):
            drop = [drop]
        if not isinstance(drop, (list, tuple)) or not all(isinstance(d, str) and d for d in drop):
            raise ConfigError(f"{where}: 'drop' must be a list of column names, got {drop!r}")
        label = data.get("label")
        if label is not None and (not isinstance(label, str) or not label):
            raise ConfigError(f"{where}: 'label' must be a column name, got {label!r}")
        others = data.get("others", "infer")
        if others not in _OTHERS:
            raise ConfigError(f"{where}: 'others' must be one of {list(_OTHERS)}, got {others!r}")
        return cls(fields, tuple(drop), label, others, source)

    def to_dict(self) -> dict:
        """The spec as plain data, in the file format (each field with the options that differ from the
        defaults)."""
        out: dict[str, Any] = {}
        if self.label is not None:
            out["label"] = self.label
        out["fields"] = [_field_to_dict(f) for f in self.fields]
        if self.drop:
            out["drop"] = list(self.drop)
        out["others"] = self.others
        return out

    def resolve_label(self, label: str | None) -> str:
        """The label column: ``label``, or the spec's; they must agree when both are given."""
        if label is not None and not (isinstance(label, str) and label):
            raise ConfigError(f"the label must be a column name, got {label!r}")
        if label is not None and self.label is not None and label != self.label:
            raise ConfigError(f"the label is given twice: {label!r} (label= / --label) and {self.label!r} (in "
                              f"{self.source or 'the schema'}); keep one")
        out = label if label is not None else self.label
        if out is None:
            raise ConfigError("no label column: pass label= (--label on the command line), or name it in the "
                              "schema file ('label: ...')")
        return out

    def check_columns(self, columns: Sequence[str], where: str) -> None:
        """Refuse a field or a dropped column that ``columns`` lacks (a typo, or another file)."""
        missing = [f.name for f in self.fields if f.name not in columns]
        gone = [d for d in self.drop if d not in columns]
        src = self.source or "the schema"
        if missing:
            raise ColumnNotFoundError(f"{src} lists field(s) {missing}, which {where} does not have; its columns "
                                      f"are {list(columns)}")
        if gone:
            raise ColumnNotFoundError(f"{src} drops column(s) {gone}, which {where} does not have; its columns "
                                      f"are {list(columns)}")

    def to_schema(self, label: str | None = None) -> Schema:
        """The :class:`~fgraph.data.Schema` of a full spec (``others: drop``)."""
        if self.others != "drop":
            raise ConfigError(f"{self.source or 'the schema'} is partial (others: infer): its schema depends on "
                              f"the data; use infer_schema(frame, label, spec=...)")
        if not self.fields:
            raise ConfigError(f"{self.source or 'the schema'} lists no fields")
        return Schema(self.fields, label=self.resolve_label(label))


def _field_from(item, k: int, where: str) -> Field:
    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where}: field {k + 1} must be a mapping such as {{name: age, kind: numeric}}, got "
                          f"{item!r}")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: field {k + 1} needs a 'name' (the column), got {item!r}")
    unknown = sorted(str(key) for key in item if key not in _FIELD_KEYS)
    if unknown:
        raise ConfigError(f"{where}: field {name!r} has unknown key(s) {unknown}; a field has {list(_FIELD_KEYS)}")
    body = dict(item)
    if body.get("kind") == "multi_valued":
        body["kind"] = "multi"
    if "kind" in body and body["kind"] not in KINDS:
        raise ConfigError(f"{where}: field {name!r} has kind {body['kind']!r}; choose one of {list(KINDS)}")
    if "treatment" in body and body.get("kind", "categorical") != "numeric":
        raise ConfigError(f"{where}: field {name!r} has a treatment, which only numeric fields take; add "
                          f"'kind: numeric'")
    if "treatment" in body and body["treatment"] not in NUMERIC_TREATMENTS:
        raise ConfigError(f"{where}: field {name!r} has treatment {body['treatment']!r}; choose one of "
                          f"{list(NUMERIC_TREATMENTS)}")
    try:
        return Field(**body)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    except TypeError as e:  # a value of the wrong kind for the dataclass
        raise ConfigError(f"{where}: field {name!r}: {e}") from None


def _field_to_dict(f: Field) -> dict:
    out: dict[str, Any] = {"name": f.name, "kind": f.kind}
    defaults = Field(f.name)
    if f.kind == "numeric":
        out["treatment"] = f.treatment
        if f.treatment == "bucket":
            out["buckets"] = list(f.buckets)
    if f.kind == "multi":
        out["sep"], out["max_tokens"] = f.sep, int(f.max_tokens)
    if f.min_count is not None and f.min_count != defaults.min_count:
        out["min_count"] = int(f.min_count)
    return out


def load_schema(path) -> SchemaSpec:
    """Read a schema file (YAML, or JSON, which YAML reads too): a :class:`SchemaSpec`, full or partial
    (the format is in :class:`SchemaSpec`'s docstring).

    Raises:
        InputFileNotFoundError: no such file.
        InputFileError: a directory, not UTF-8 (the line is named), not valid YAML (line and column named).
        ConfigError: not a mapping, an unknown key (named, with the known ones), a bad field.
    """
    import yaml

    p = Path(path).expanduser()
    if p.is_dir():
        raise InputFileError(f"schema file {p} is a directory; give a .yaml file")
    if not p.is_file():
        raise InputFileNotFoundError(f"schema file {p} does not exist")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise InputFileError(f"schema file {p} is not UTF-8 text (byte {raw[e.start]:#04x} on line {line}); save "
                             f"it as UTF-8") from None
    try:
        data = yaml.load(text, Loader=unique_key_yaml_loader("key"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise InputFileError(f"schema file {p} is not valid YAML{at}: {problem}") from None
    if data is None:
        raise ConfigError(f"schema file {p} is empty; see SchemaSpec for the format (label, fields, drop, others)")
    return SchemaSpec.from_dict(data, source=f"schema file {p}")


def save_schema(schema: "Schema | SchemaSpec", path) -> Path:
    """Write ``schema`` to ``path`` as YAML that :func:`load_schema` reads back to the same schema (a
    :class:`~fgraph.data.Schema` is written in full: its label, its fields, ``others: drop``). The file is
    written whole or not at all (a temporary file, then a rename). Returns the path.

    Raises:
        InputFileNotFoundError: the directory does not exist.
    """
    import yaml

    spec = SchemaSpec.from_schema(schema) if isinstance(schema, Schema) else schema
    if not isinstance(spec, SchemaSpec):
        raise TypeError(f"save_schema needs a Schema or a SchemaSpec, got {type(schema).__name__}")
    p = Path(path).expanduser()
    if not p.parent.is_dir():
        raise InputFileNotFoundError(f"cannot write the schema to {p}: the directory {p.parent} does not exist")
    text = ("# fgraph schema (see fgraph.data.files.SchemaSpec for the format)\n" +
            yaml.safe_dump(spec.to_dict(), sort_keys=False, allow_unicode=True, default_flow_style=None))
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, p)
    return p


def _as_spec(schema) -> SchemaSpec:
    if schema is None:
        return SchemaSpec()
    if isinstance(schema, SchemaSpec):
        return schema
    if isinstance(schema, Schema):
        return SchemaSpec.from_schema(schema)
    if isinstance(schema, Mapping):
        return SchemaSpec.from_dict(schema)
    if isinstance(schema, (str, os.PathLike)):
        return load_schema(schema)
    raise ConfigError(f"option 'schema' must be a Schema, a SchemaSpec, a mapping or the path of a schema file, "
                      f"got {type(schema).__name__}")


# ==========================================================================================================
# Labels and splits
# ==========================================================================================================

@dataclass(frozen=True)
class LabelEncoding:
    """How :func:`file_splits` turned the label column into numbers.

    Attributes:
        task: ``"binary"`` or ``"regression"``.
        mapping: for a binary task, ``{value as in the file: 0 or 1}``; None for regression (kept as is).
        positive: the value that became 1 (binary), else None.
        rule: how the positive value was chosen, in words.
    """

    task: str
    mapping: dict | None = None
    positive: Any = None
    rule: str = ""

    def describe(self, label: str) -> str:
        if self.task == "regression":
            return f"label {label!r}: numbers, regression"
        if self.mapping is None:
            return f"label {label!r}: 0/1"
        neg = next(v for v, k in self.mapping.items() if k == 0)
        return f"label {label!r}: {self.positive!r} -> 1 (positive), {neg!r} -> 0 ({self.rule})"


def _where_row(path: Path, pos: int) -> str:
    """How an error names data row ``pos`` (0-based) of a file."""
    if _file_format(path) == "csv":
        return f"data row {pos + 1} (line {_line_of_row(path, pos + 1)})"
    return f"data row {pos + 1}"


def _label_values(col: pd.Series) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(values, missing, numeric)`` of a label column; text values stripped."""
    missing = col.isna().to_numpy()
    if pd.api.types.is_bool_dtype(col.dtype):
        return col.to_numpy(dtype=object), missing, False
    if pd.api.types.is_numeric_dtype(col.dtype) and not isinstance(col.dtype, pd.CategoricalDtype):
        return col.to_numpy(dtype=float, na_value=np.nan), missing, True
    values = col.astype(object).to_numpy()
    out = np.array([v.strip() if isinstance(v, str) else v for v in values], dtype=object)
    missing = missing | np.array([isinstance(v, str) and v == "" for v in out], dtype=bool)
    return out, missing, False


def _label_encoding(col: pd.Series, task: str, positive, path: Path, label: str) -> LabelEncoding:
    values, missing, numeric = _label_values(col)
    if missing.any():
        pos = int(np.flatnonzero(missing)[0])
        raise DataError(f"label column {label!r} of {path} is missing at {_where_row(path, pos)} "
                        f"({int(missing.sum())} missing label(s) in all); drop those rows or fill them in")
    if task == "regression":
        if positive is not None:
            raise ConfigError("option 'positive' is for a binary task; a regression task keeps its numbers")
        if not numeric:
            pos = next(i for i, v in enumerate(values) if not isinstance(v, (int, float, np.number)) or
                       isinstance(v, bool))
            raise DataError(f"label column {label!r} of {path} holds {values[pos]!r} at {_where_row(path, pos)}: a "
                            f"regression task needs numbers")
        return LabelEncoding("regression")
    distinct = pd.unique(values)
    shown = [_show(v) for v in sorted(distinct, key=_sort_key)]
    if len(distinct) > 2:
        hint = ("; it looks like a regression target: pass task='regression' (--task regression)" if numeric
                else "; fgraph trains binary classifiers (and regressors): merge the classes into two")
        raise DataError(f"label column {label!r} of {path} holds {len(distinct)} distinct values "
                        f"({', '.join(map(repr, shown[:6]))}{' ...' if len(distinct) > 6 else ''}); a binary task "
                        f"needs two{hint}")
    if len(distinct) < 2:
        raise DataError(f"label column {label!r} of {path} holds a single value ({shown[0]!r}) in all "
                        f"{len(values):,} rows: a classifier needs both classes")
    if positive is not None:
        match = [v for v in distinct if _label_key(v) == _label_key(positive) or str(v) == str(positive)
                 or (numeric and _is_number(str(positive)) and float(positive) == float(v))]
        if not match:
            raise ConfigError(f"option 'positive' is {positive!r}, but label column {label!r} of {path} holds "
                              f"{shown[0]!r} and {shown[1]!r}")
        pos_value, rule = match[0], "positive= given"
    elif numeric and set(float(v) for v in distinct) == {0.0, 1.0}:
        return LabelEncoding("binary")
    elif numeric:
        raise DataError(f"label column {label!r} of {path} holds the numbers {shown[0]!r} and {shown[1]!r}; a "
                        f"binary task needs 0/1: pass positive=<the positive value> (--positive), or "
                        f"task='regression' if these are quantities")
    elif all(isinstance(v, (bool, np.bool_)) for v in distinct):
        pos_value, rule = True, "True is positive"
    else:
        # The later value in sorted order is positive, as scikit-learn's classes_[1]: no/yes, false/true, n/y,
        # 0/1, negative/positive and off/on all come out the usual way round.
        pos_value, rule = shown[1], "the later in sorted order; pass positive= to choose"
    mapping = {_plain(v): int(v == pos_value) for v in shown}
    return LabelEncoding("binary", mapping, _plain(pos_value), rule)


def _sort_key(v):
    return (0, float(v), "") if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) else (1, 0.0, str(v))


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def _show(v):
    """A label value as messages show it: plain Python, 2.0 as 2."""
    v = _plain(v)
    return int(v) if isinstance(v, float) and v.is_integer() else v


def _apply_label(frame: pd.DataFrame, label: str, enc: LabelEncoding, path: Path) -> pd.DataFrame:
    """``frame`` with the label column as 0/1 (binary) or float (regression) numbers; a value the training
    file does not have is a DataError naming the file and the row."""
    values, missing, numeric = _label_values(frame[label])
    if missing.any():
        pos = int(np.flatnonzero(missing)[0])
        raise DataError(f"label column {label!r} of {path} is missing at {_where_row(path, pos)} "
                        f"({int(missing.sum())} missing label(s) in all); drop those rows or fill them in")
    if enc.task == "regression" or enc.mapping is None:
        allowed = None if enc.task == "regression" else {0.0, 1.0}
        if not numeric:
            pos = next((i for i, v in enumerate(values) if isinstance(v, str) or isinstance(v, bool)), 0)
            raise DataError(f"label column {label!r} of {path} holds {values[pos]!r} at {_where_row(path, pos)}, "
                            f"but the training file's labels are numbers")
        y = values.astype(float)
        if allowed is not None:
            bad = ~np.isin(y, list(allowed))
            if bad.any():
                pos = int(np.flatnonzero(bad)[0])
                raise DataError(f"label column {label!r} of {path} holds {_plain(values[pos])!r} at "
                                f"{_where_row(path, pos)}; the training file's labels are 0/1")
        return frame.assign(**{label: y})
    lookup = {(_label_key(k)): v for k, v in enc.mapping.items()}
    keys = [_label_key(v) for v in values]
    bad = [i for i, k in enumerate(keys) if k not in lookup]
    if bad:
        pos = bad[0]
        raise DataError(f"label column {label!r} of {path} holds {_plain(values[pos])!r} at {_where_row(path, pos)}, "
                        f"which the training file's labels ({', '.join(map(repr, enc.mapping))}) do not have")
    return frame.assign(**{label: np.array([lookup[k] for k in keys], dtype=np.float32)})


def _label_key(v):
    v = _plain(v)
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, (int, float)):
        return ("n", float(v))
    return ("s", str(v))


@dataclass(repr=False)
class FileSplits(DatasetSplits):
    """The :class:`~fgraph.data.datasets.DatasetSplits` of a user's files (what :func:`file_splits`
    returns), with how they were built.

    Attributes (besides train, valid, test, schema, name, meta):
        report: the :class:`SchemaReport` of the training file (kinds, reasons, columns left out).
        label_encoding: the :class:`LabelEncoding` of the label column.
        split: how the splits were made, in words (``"split train.csv 80/10/10 with seed 0 ..."``), or None
            when every split came from a file.
    """

    report: SchemaReport | None = None
    label_encoding: LabelEncoding | None = None
    split: str | None = None

    def describe(self) -> str:
        """What the CLI prints before training: the schema, the label, the splits."""
        lines = [self.report.describe() if self.report is not None else describe_schema(self.schema)]
        if self.label_encoding is not None:
            lines.append(self.label_encoding.describe(self.schema.label))
        if self.split:
            lines.append(self.split)
        lines.append(f"rows: train {len(self.train):,}, valid {len(self.valid):,}, test {len(self.test):,}")
        return "\n".join(lines)


def _percent(fr: float) -> str:
    text = f"{fr * 100:.1f}".rstrip("0").rstrip(".")
    return text


def file_splits(train, valid=None, test=None, *, label: str | None = None, schema=None, task: str = "binary",
                positive=None, seed: int = 0, fractions: Sequence[float] | None = None, sep: str | None = None,
                chunksize: int = DEFAULT_CHUNKSIZE, sample_rows: int = SAMPLE_ROWS) -> FileSplits:
    """The train/valid/test splits of a user's files, ready for :class:`~fgraph.data.FieldEncoder`.

    The training file is read (:func:`read_file`) and its schema inferred on its first ``sample_rows`` rows
    (:func:`infer_schema`), or taken from ``schema``. The validation and test files, when given, must have the
    schema's columns and the label (other columns are not read). A split not given as a file is cut at
    random (seeded) from the training file: without ``valid`` and ``test``, ``fractions`` (80/10/10 by
    default) of its rows; with one of them, the other part's fraction, the rest staying in training.

    The label column is made numeric in the returned frames (the files are never written): for
    ``task="binary"``, 0/1 numbers are kept; True/False and two text values become 1/0, the positive one being
    ``positive`` if given, else True or the later value in sorted order (``"yes"`` over ``"no"``, as
    scikit-learn's ``classes_[1]``); any other numbers are refused with a hint (``positive=`` or
    ``task="regression"``). For ``task="regression"`` the label must be numbers. :meth:`FileSplits.describe`
    says all this in words.

    Args:
        train: the training file (CSV or Parquet).
        valid, test: the validation and test files (optional).
        label: the label column (or named by the schema file).
        schema: a :class:`~fgraph.data.Schema` (used as is), a :class:`SchemaSpec` or mapping in the schema
            file format, or the path of a schema file (:func:`load_schema`); partial ones override the
            inference for the columns they list.
        task: ``"binary"`` or ``"regression"``.
        positive: the label value that is the positive class (binary task).
        seed: seeds the random split.
        fractions: train/valid/test fractions of the random split (three numbers summing to 1).
        sep: the CSV separator of the files (default: sniffed per file).
        chunksize: rows per chunk when reading.
        sample_rows: the first rows of the training file that schema inference looks at.

    Returns:
        a :class:`FileSplits` (unpacks as ``train, valid, test, schema``); its ``meta`` holds the files, the
        row counts, the label mapping and how the splits were made.

    Raises:
        InputFileNotFoundError, InputFileError: a file is missing, of an unknown type or broken (see
            :func:`read_file`).
        ColumnNotFoundError: the label, or a column of the schema, is missing from a file (the message names
            the column and the file).
        DataError: a label that does not fit the task (missing, more than two classes for a binary task, a
            validation/test label the training file does not have: the file and row are named), a split
            with no rows.
        ConfigError: a bad option (task, seed, fractions, sep, positive, schema).
    """
    task = as_str("task", task, choices=("binary", "regression"))
    seed = as_int("seed", seed, minimum=0)
    fractions = DEFAULT_FRACTIONS if fractions is None else tuple(fractions)
    split_indices(0, fractions, seed)   # checks the fractions (three numbers >= 0 summing to 1)
    spec = _as_spec(schema)
    label = spec.resolve_label(label)
    train_path = _existing_file(train)
    paths = {"train": train_path}
    for name, given in (("valid", valid), ("test", test)):
        if given is not None:
            paths[name] = _existing_file(given)
    frame = read_file(train_path, chunksize=chunksize, sep=sep)
    report = infer_schema_report(frame, label, spec=spec, sample_rows=sample_rows, source=train_path.name)
    schema_ = report.schema
    needed = schema_.names + [label]
    frame = frame[needed]
    enc = _label_encoding(frame[label], task, positive, train_path, label)
    # A column the training file holds as text is read as text elsewhere too: "007" in one file and 7 in
    # another must not decide the column's type differently (the ids would differ).
    text_columns = [c for c in needed if not pd.api.types.is_numeric_dtype(frame[c].dtype)
                    or isinstance(frame[c].dtype, pd.CategoricalDtype)]
    frames = {"train": _apply_label(frame, label, enc, train_path)}
    for name in ("valid", "test"):
        if name not in paths:
            continue
        path = paths[name]
        have = file_columns(path, sep=sep)
        missing = [c for c in needed if c not in have]
        if missing:
            what = "label column" if missing == [label] else "column(s)"
            raise ColumnNotFoundError(f"{path} ({name} file) has no {what} {missing}, which the schema of "
                                      f"{train_path.name} needs; its columns are {have}")
        other = read_file(path, columns=needed, chunksize=chunksize, sep=sep, text=text_columns)
        _check_numeric_fields(other, schema_, path)
        frames[name] = _apply_label(other, label, enc, path)
    split_text = None
    absent = [n for n in ("valid", "test") if n not in frames]
    if absent:
        fr = list(fractions)
        for k, name in ((1, "valid"), (2, "test")):
            if name in frames:
                fr[0], fr[k] = fr[0] + fr[k], 0.0
        n = len(frames["train"])
        idx = split_indices(n, fr, seed)
        for name, k in (("valid", 1), ("test", 2)):
            if name in absent and len(idx[k]) == 0:
                raise DataError(f"{train_path} has {n:,} rows: too few to cut a {name} split of "
                                f"{_percent(fr[k])}% from it; give a {name} file, or more rows")
        whole = frames["train"]
        parts = {name: whole.iloc[idx[k]].reset_index(drop=True) for name, k in
                 (("train", 0), ("valid", 1), ("test", 2)) if name == "train" or name in absent}
        frames.update(parts)
        cut = "/".join(_percent(fr[k]) for k in range(3) if fr[k] > 0 or k == 0)
        names = "/".join(n for k, n in enumerate(("train", "valid", "test")) if fr[k] > 0 or k == 0)
        given = [n for n in ("valid", "test") if n not in absent]
        lead = f"no {' or '.join(absent)} file given" + (f" ({given[0]} from its file)" if given else "")
        split_text = (f"{lead}: split {train_path.name} {cut} ({names}) with seed {seed}: "
                      + " / ".join(f"{len(frames[n]):,}" for n in ("train", "valid", "test") if n == "train"
                                   or n in absent) + " rows")
    meta = {"files": {k: str(v) for k, v in paths.items()},
            "rows": {k: int(len(v)) for k, v in frames.items()},
            "task": task, "label_mapping": enc.mapping, "positive": enc.positive,
            "split": None if not absent else {"from": str(train_path), "fractions": list(fractions), "seed": seed,
                                              "cut": absent},
            "dropped": dict(report.dropped), "schema_source": spec.source or ("given" if schema is not None
                                                                               else "inferred")}
    return FileSplits(frames["train"], frames["valid"], frames["test"], schema_, name=train_path.name, meta=meta,
                      report=report, label_encoding=enc, split=split_text)


def _check_numeric_fields(frame: pd.DataFrame, schema: Schema, path: Path) -> None:
    """Refuse a numeric field that a validation or test file holds as text, naming the first bad cell."""
    for f in schema.fields:
        col = frame[f.name]
        if f.kind != "numeric" or (pd.api.types.is_numeric_dtype(col.dtype) and
                                   not isinstance(col.dtype, pd.CategoricalDtype)):
            continue
        text = col.astype(object)
        parsed = pd.to_numeric(text.where(~text.isin(list(MISSING_MARKERS))), errors="coerce")
        bad = parsed.isna() & text.notna() & ~text.isin(list(MISSING_MARKERS))
        if bad.any():
            pos = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"column {f.name!r} of {path} holds {text.iloc[pos]!r} at {_where_row(path, pos)}, but "
                            f"it is a numeric field (numbers in the training file); fix the cell, or declare the "
                            f"column categorical in a schema file")
