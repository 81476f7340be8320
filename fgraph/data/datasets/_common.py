"""Pieces shared by the data-set builders: the result type, finding the data directory, reading the files,
splitting.

Every builder reads its files through :func:`open_table` (or :func:`read_table`, :func:`read_chunked` on top
of it, or :func:`file_errors` for other reads), so a broken file is one clear
:class:`~fgraph.errors.InputFileError` that names it.
"""
from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import os
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd

from ..._validate import as_int
from ...errors import ConfigError, FgraphError, InputFileError, InputFileNotFoundError
from ..schema import Schema

ENV_VAR = "FGRAPH_DATA_DIR"
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)


@dataclass
class DatasetSplits:
    """The three splits of a data set, its schema and some facts about how it was built.

    Unpacks as ``train, valid, test, schema = builder(...)``.

    Attributes:
        train, valid, test: the splits, each with the schema's field columns and its label column.
        schema: the :class:`~fgraph.data.Schema` of the frames.
        name: the builder's name.
        meta: counts, the source files and builder-specific facts (see each builder).
    """

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    schema: Schema
    name: str = ""
    meta: dict = field(default_factory=dict)

    def __iter__(self) -> Iterator:
        return iter((self.train, self.valid, self.test, self.schema))

    @property
    def splits(self) -> dict[str, pd.DataFrame]:
        """``{"train": ..., "valid": ..., "test": ...}``."""
        return {"train": self.train, "valid": self.valid, "test": self.test}

    def __repr__(self) -> str:
        return (f"DatasetSplits(name={self.name!r}, train={len(self.train):,} rows, "
                f"valid={len(self.valid):,} rows, test={len(self.test):,} rows, "
                f"fields={len(self.schema)}, label={self.schema.label!r})")


class DatasetNotFoundError(InputFileNotFoundError):
    """A builder's files are not where it looked.

    Attributes:
        builder: the builder's name.
        directory: the directory it looked in.
        expected: the file names it wanted there.
    """

    def __init__(self, builder: str, directory: Path | str, expected: Sequence[str], any_of: bool = False,
                 folder: str | None = None):
        self.builder = builder
        self.directory = Path(directory)
        self.expected = tuple(expected)
        joined = ", ".join(self.expected)
        want = f"one of: {joined}" if any_of and len(self.expected) > 1 else joined
        where = f"the directory that holds the {folder!r} folder" if folder else "the data directory"
        msg = (f"data set {builder!r}: files not found in {self.directory} (expected {want}). "
               f"Pass data_dir=... in Python or --data-dir ... on the command line, or set ${ENV_VAR}, "
               f"to {where}.")
        super().__init__(msg)


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The directory that holds the data-set folders.

    In order: ``data_dir`` when given; the environment variable ``FGRAPH_DATA_DIR``; ``shared/datasets`` next
    to the repository that contains the installed ``fgraph`` package, if it exists; otherwise
    ``../shared/datasets`` relative to the current directory. The result need not exist.
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    # this file is <repo>/fgraph/data/datasets/_common.py: parents[3] is the checkout, its parent the one
    # that holds shared/
    repo_parent = Path(__file__).resolve().parents[3].parent
    beside_repo = repo_parent / "shared" / "datasets"
    if beside_repo.is_dir():
        return beside_repo
    return Path.cwd().parent / "shared" / "datasets"


def locate(builder: str, data_dir, folder: str, required: Sequence[str] = (),
           any_of: Sequence[str] = ()) -> tuple[Path, Path | None]:
    """Find a builder's folder: ``data_dir/folder``, or ``data_dir`` itself when it is that folder.

    Every file in ``required`` must be present; of ``any_of`` the first present one is returned (``None``
    when ``any_of`` is empty). Raises :class:`DatasetNotFoundError` otherwise.
    """
    base = resolve_data_dir(data_dir)
    for cand in (base / folder, base):
        if not cand.is_dir() or not all((cand / r).is_file() for r in required):
            continue
        if not any_of:
            return cand, None
        for name in any_of:
            if (cand / name).is_file():
                return cand, cand / name
    if any_of:
        # The required files (if any) and one of the alternatives.
        raise DatasetNotFoundError(builder, base / folder, list(required) + list(any_of), any_of=not required,
                                   folder=folder)
    raise DatasetNotFoundError(builder, base / folder, required, folder=folder)


def split_indices(n: int, fractions: Sequence[float] = DEFAULT_FRACTIONS,
                  seed: int | np.random.Generator = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded random row positions of a train/valid/test split of ``n`` rows (``seed``: an int or a numpy
    ``Generator``).

    The validation and test parts get ``floor(n * fraction)`` rows each and training the rest, so
    ``n = 10,000`` gives 8,000 / 1,000 / 1,000. Each part is in increasing row order.
    """
    if not isinstance(seed, np.random.Generator):
        seed = as_int("seed", seed, minimum=0)
    fr = np.asarray(fractions, dtype=float)
    if fr.shape != (3,) or np.any(fr < 0) or not np.isclose(fr.sum(), 1.0):
        raise ConfigError(f"fractions must be three non-negative numbers summing to 1, got {tuple(fractions)}")
    perm = np.random.default_rng(seed).permutation(n)
    n_valid, n_test = int(n * fr[1]), int(n * fr[2])
    n_train = n - n_valid - n_test
    parts = perm[:n_train], perm[n_train:n_train + n_valid], perm[n_train + n_valid:]
    return tuple(np.sort(p) for p in parts)  # type: ignore[return-value]


def random_split(frame: pd.DataFrame, fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0
                 ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split ``frame`` at random (80/10/10 by default, seeded); each part has a fresh 0..n-1 index."""
    idx = split_indices(len(frame), fractions, seed)
    return tuple(frame.iloc[i].reset_index(drop=True) for i in idx)  # type: ignore[return-value]


def count_labels(frames: dict[str, pd.DataFrame], label: str) -> dict:
    """``{"<split>_rows": n, "<split>_positives": k}`` for each frame (positive: label > 0)."""
    out = {}
    for name, frame in frames.items():
        out[f"{name}_rows"] = int(len(frame))
        out[f"{name}_positives"] = int((frame[label] > 0).sum())
    return out


# -- reading files ----------------------------------------------------------------------------------------
#
# pandas alone reads a broken file in ways that hide the damage: a line with too few fields is padded with
# empty cells (a file cut mid-line gives a half row), a first line with one field too many silently becomes
# the index, and a truncated .gz or a stray byte ends in a library message that does not name the file.

_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def _open_binary(path: Path):
    """``path`` opened for reading bytes, decompressed by its suffix (``.gz``, ``.bz2``, ``.xz``)."""
    return _OPENERS.get(path.suffix.lower(), open)(path, "rb")


class _FieldCounter(io.RawIOBase):
    """The bytes of ``raw`` passed through unchanged, checking on the way that every line has ``expected``
    fields (the first non-blank line's count when ``expected`` is None).

    The separators of each block are counted with numpy, so the check costs no second pass over the file.
    Blank lines are skipped, as pandas skips them. Only the first ``max_rows`` non-blank lines are checked
    (pandas reads ahead of ``nrows``).

    Without ``quotechar`` (the data sets: :func:`open_table` reads them with ``quoting=QUOTE_NONE``) a
    separator is always a field boundary, for pandas as for this count. With ``quotechar`` (a user's own CSV,
    as pandas, R, Excel or Python's ``csv`` write it), separators and newlines between an opening and a
    closing quote are part of the field: a byte is inside quotes when an odd number of quote bytes precede it
    in the file, which holds for well-formed CSV (quotes around fields, doubled inside them). A "row" is then
    a record, which may span several lines; errors name the line it starts on.
    """

    def __init__(self, raw, path: Path, sep: str, expected: int | None = None, max_rows: int | None = None,
                 quotechar: str | None = None):
        super().__init__()
        self._raw, self._path, self._sep = raw, path, sep
        self._byte = ord(sep)
        self._quote = None if quotechar is None else ord(quotechar)
        self.expected, self._max_rows = expected, max_rows
        self._why = "the format's columns" if expected is not None else None
        self._lines = 0                           # lines completed so far (blank ones included)
        self._rows = 0                            # non-blank records completed so far
        self._carry_seps = self._carry_text = 0   # the unfinished record's separators and non-CR/LF bytes
        self._quotes = 0                          # quote bytes seen so far (their parity: inside quotes or not)
        self._record_line = 1                     # the line the unfinished record starts on

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._raw.close()
        super().close()

    def readinto(self, buf) -> int:
        n = self._raw.readinto(buf)
        if n:
            self._block(np.frombuffer(memoryview(buf)[:n], dtype=np.uint8))
        else:
            if self._quotes % 2:  # end of file inside quotes
                raise InputFileError(
                    f"{self._path}: the quoted field of the record starting on line {self._record_line} is never "
                    f"closed (an unmatched {chr(self._quote)!r}); the file may be truncated, or a field holds a "
                    f"stray {chr(self._quote)!r} that should be doubled")
            if self._carry_text:  # end of file: the last line had no newline (a file cut mid-line, often)
                self._check(np.array([self._carry_seps]), np.array([self._carry_text]),
                            np.array([self._record_line]))
                self._carry_seps = self._carry_text = 0
        return n

    def _block(self, a: np.ndarray) -> None:
        newlines = np.flatnonzero(a == 10)
        ends = newlines
        seps = np.flatnonzero(a == self._byte)
        if self._quote is not None:
            # Keep the separators and newlines outside quotes: those with an even number of quotes before them.
            quotes = np.flatnonzero(a == self._quote)
            if quotes.size or self._quotes % 2:
                ends = ends[(np.searchsorted(quotes, ends) + self._quotes) % 2 == 0]
                seps = seps[(np.searchsorted(quotes, seps) + self._quotes) % 2 == 0]
            self._quotes += int(quotes.size)
        tail = 0
        if ends.size:
            # The line each record starts on: the first, then one past the line of the previous record's end.
            end_lines = self._lines + np.searchsorted(newlines, ends) + 1
            first_lines = np.concatenate(([self._record_line], end_lines[:-1] + 1))
            # Separators before each newline, differenced: the separators of each line. No cumulative sums
            # over the bytes: the work is two comparisons per byte and a search per line.
            before = np.searchsorted(seps, ends)
            line_seps = np.diff(before, prepend=0)
            starts = np.concatenate(([0], ends[:-1] + 1))
            line_text = ends - starts - (a[np.maximum(ends - 1, 0)] == 13)  # not counting a CR before LF
            line_text[ends == starts] = 0
            line_seps[0] += self._carry_seps
            line_text[0] += self._carry_text
            self._check(line_seps, line_text, first_lines)
            self._carry_seps = self._carry_text = 0
            tail = int(ends[-1]) + 1
            self._record_line = int(end_lines[-1]) + 1
        self._lines += int(newlines.size)
        rest = a[tail:]
        self._carry_seps += int(seps.size - np.searchsorted(seps, tail))
        self._carry_text += int(rest.size - np.count_nonzero(rest == 13))

    def _check(self, line_seps: np.ndarray, line_text: np.ndarray, first_lines: np.ndarray) -> None:
        rows = np.flatnonzero(line_text > 0)
        fields = line_seps[rows] + 1
        if self.expected is None and fields.size:
            self.expected = int(fields[0])
            self._why = f"as on line {int(first_lines[rows[0]])}"
        if self._max_rows is not None:
            fields = fields[: max(self._max_rows - self._rows, 0)]
        bad = np.flatnonzero(fields != self.expected)
        if bad.size:
            line = int(first_lines[rows[bad[0]]])
            quoting = "" if self._quote is None else \
                f", or a field holds the separator or a {chr(self._quote)!r} without being quoted properly"
            raise InputFileError(
                f"{self._path}: line {line} has {int(fields[bad[0]])} field(s) separated by {self._sep!r}, "
                f"expected {self.expected} ({self._why}); the file may be truncated (cut mid-line) or not "
                f"in the expected format{quoting}")
        self._rows += len(rows)


def _bad_text_line(path: Path, encoding: str) -> tuple[int, bytes] | None:
    """The first line of ``path`` that does not decode as ``encoding`` and its offending bytes (error path)."""
    try:
        with _open_binary(path) as fh:
            for number, line in enumerate(fh, 1):
                try:
                    line.decode(encoding)
                except UnicodeDecodeError as e:
                    return number, line[e.start:e.end]
    except (OSError, EOFError, zlib.error, lzma.LZMAError):
        pass
    return None


@contextmanager
def file_errors(path: Path, encoding: str = "utf-8", find_bad_cell: Callable[[], str | None] | None = None):
    """Turn what goes wrong while reading ``path`` into an :class:`InputFileError` (or
    :class:`InputFileNotFoundError`) that names the file and, where known, the line.

    ``find_bad_cell``, when given, is called when a cell did not parse as its column's dtype, to say where
    (``"line 3, column 'I1': ..."``); pandas' own message names neither.
    """
    path = Path(path)
    shown = "utf-8" if encoding.lower().replace("_", "-") == "utf-8-sig" else encoding  # the BOM is no other text
    try:
        yield
    except FgraphError:
        raise
    except FileNotFoundError:
        raise InputFileNotFoundError(f"{path}: no such file") from None
    except pd.errors.EmptyDataError:
        raise _no_rows(path) from None
    except UnicodeDecodeError as e:
        found = _bad_text_line(path, encoding)
        where = f"line {found[0]} holds the byte(s) {found[1]!r}" if found else f"byte(s) {e.object[e.start:e.end]!r}"
        raise InputFileError(f"{path}: not {shown} text: {where}; convert the file to {shown}") from None
    except (EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile) as e:
        raise InputFileError(f"{path}: the compressed file is corrupt or truncated ({e}); re-download it") \
            from None
    except OSError as e:  # a directory, no permission, or a decompressor's own error (bz2: "Invalid data stream")
        raise InputFileError(f"{path}: cannot read the file ({e.strerror or e})") from None
    except pd.errors.ParserError as e:
        raise InputFileError(f"{path}: {e}") from None
    except (ValueError, TypeError, OverflowError) as e:  # a cell that does not parse as its column's dtype
        where = find_bad_cell() if find_bad_cell is not None else None
        raise InputFileError(f"{path}: {where}" if where else
                             f"{path}: a value does not fit its column's type ({e})") from None


@contextmanager
def open_table(path, *, sep: str = ",", nrows: int | None = None, quotechar: str | None = None,
               **read_csv_kwargs):
    """:func:`pandas.read_csv` of a delimited file (the frame, or a chunk reader with ``chunksize``), with
    every line checked to have the same number of fields and every error naming the file.

    The file is decompressed by its suffix. It is read without quoting (none of the data sets quotes)
    unless ``quotechar`` is given (``'"'`` for a user's own CSV): fields may then be quoted, holding the
    separator, newlines and doubled quotes. Lines are checked against ``names`` when the file has no header
    (``header=None``), otherwise against the first line. Errors are :class:`InputFileError` naming the file
    (and the line where known): a zero-byte or corrupt file, a header naming a column twice, a line with
    another number of fields (e.g. a file cut mid-line), a quote that is never closed, a byte that is not
    text in ``encoding``, a cell that does not parse as its dtype.
    """
    path = Path(path)
    names = read_csv_kwargs.get("names")
    # As pandas: without ``header``, a file read with ``names`` has no header line.
    no_header = read_csv_kwargs.get("header", None if names is not None else 0) is None
    expected = len(names) if names is not None and no_header else None
    max_rows = None if nrows is None else int(nrows) + (0 if no_header else 1)
    encoding = read_csv_kwargs.pop("encoding", "utf-8")
    find = lambda: _bad_cell(path, sep, nrows, encoding, read_csv_kwargs, no_header, quotechar)  # noqa: E731
    # Integer columns narrower than int64 are read as int64 and range-checked here: older numpy (< 2) casts
    # an out-of-range cell silently (a Criteo label "300" read as int8 became 44).
    dtype, narrow = read_csv_kwargs.get("dtype"), {}
    if isinstance(dtype, dict):
        narrow = {c: np.dtype(t) for c, t in dtype.items()
                  if t is not str and np.dtype(t).kind in "iu" and np.dtype(t).itemsize < 8}
    kwargs = dict(read_csv_kwargs)
    if narrow:
        kwargs["dtype"] = {**dtype, **{c: np.int64 for c in narrow}}
    quoting = csv.QUOTE_NONE if quotechar is None else csv.QUOTE_MINIMAL
    if quotechar is not None:
        kwargs["quotechar"] = quotechar
    with file_errors(path, encoding, find):
        if not no_header:
            _refuse_duplicate_header(path, sep, encoding, quotechar)
        counter = _FieldCounter(_open_binary(path), path, sep, expected, max_rows, quotechar)
        with io.BufferedReader(counter, buffer_size=1 << 20) as stream:
            result = pd.read_csv(stream, sep=sep, quoting=quoting, compression=None, nrows=nrows,
                                 encoding=encoding, **kwargs)
            if narrow:
                result = _narrow(result, narrow) if isinstance(result, pd.DataFrame) else \
                    (_narrow(chunk, narrow) for chunk in result)
            yield result


def _narrow(frame: pd.DataFrame, narrow: dict) -> pd.DataFrame:
    """``frame`` with the int64 columns of ``narrow`` cast to their dtypes; an OverflowError (which
    :func:`file_errors` turns into an error naming the line and column) when a value does not fit."""
    for column, want in narrow.items():
        if column not in frame.columns:
            continue
        values = frame[column].to_numpy()
        info = np.iinfo(want)
        if len(values) and (values.min() < info.min or values.max() > info.max):
            raise OverflowError(f"column {column!r} holds a value outside {want.name}'s range")
        frame[column] = values.astype(want)
    return frame


def header_names(path: Path, sep: str, encoding: str = "utf-8", quotechar: str | None = None) -> list[str]:
    """The names on the first non-blank line of ``path`` (quoted names unquoted when ``quotechar`` is given),
    stripped of surrounding blanks; ``[]`` for a file without a non-blank line."""
    path = Path(path)
    if quotechar is None:
        with _open_binary(path) as fh:
            first = next((ln for ln in fh if ln.strip(b"\r\n")), b"")
        return [n.strip() for n in first.rstrip(b"\r\n").decode(encoding).split(sep)] if first else []
    with _open_binary(path) as fh, io.TextIOWrapper(fh, encoding=encoding, newline="") as text:
        # csv's own parser, so that a quoted name may hold the separator (or even a newline).
        rows = csv.reader(text, delimiter=sep, quotechar=quotechar)
        first = next((r for r in rows if r), [])
    return [n.strip() for n in first]


def _refuse_duplicate_header(path: Path, sep: str, encoding: str, quotechar: str | None = None) -> None:
    """pandas renames a repeated header name (``C1``, ``C1.1``): refuse it instead, naming the columns."""
    names = header_names(path, sep, encoding, quotechar)
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputFileError(f"{path}: the header names the column(s) {dup} more than once; rename the copies")


def _bad_cell(path: Path, sep: str, nrows, encoding: str, kwargs: dict, no_header: bool,
              quotechar: str | None = None) -> str | None:
    """Where the first cell that does not parse as its column's dtype is: ``"line 3, column 'I1': 'abc' is
    not a number (float64)"``. Only called after pandas refused the file, so reading it again is fine."""
    dtype = kwargs.get("dtype")
    if dtype is None:
        return None
    as_text = {k: v for k, v in kwargs.items() if k not in ("dtype", "chunksize")}
    start = 0
    try:
        with open_table(path, sep=sep, nrows=nrows, encoding=encoding, dtype=str, chunksize=100_000,
                        quotechar=quotechar, **as_text) as reader:
            for chunk in reader:
                for column in chunk.columns:
                    want = dtype.get(column) if isinstance(dtype, dict) else dtype
                    kind = np.dtype(want).kind if want is not None and want is not str else "U"
                    if kind not in "iuf":
                        continue
                    cells = chunk[column]
                    num = pd.to_numeric(cells, errors="coerce")
                    if kind == "f":
                        bad = num.isna() & cells.notna()
                    else:
                        info = np.iinfo(np.dtype(want))
                        bad = num.isna() | (num % 1 != 0) | (num < info.min) | (num > info.max)
                    if bad.any():
                        pos = int(np.flatnonzero(bad.to_numpy())[0])
                        line = _line_of_row(path, start + pos + (0 if no_header else 1))
                        what = "a number" if kind == "f" else f"an integer in {np.dtype(want).name}'s range"
                        hint = " (is line 1 a header? this format has none)" if no_header and line == 1 else ""
                        return (f"line {line}, column {column!r}: {cells.iloc[pos]!r} is not {what}"
                                f"{hint}")
                start += len(chunk)
    except Exception:  # noqa: BLE001 -- a best effort on the error path; the caller has a message anyway
        return None
    return None


def _line_of_row(path: Path, row: int) -> int:
    """The 1-based line number of non-blank line ``row`` (0-based) of ``path``."""
    seen = -1
    with _open_binary(path) as fh:
        for number, line in enumerate(fh, 1):
            if line.strip(b"\r\n"):
                seen += 1
                if seen == row:
                    return number
    return row + 1


def _no_rows(path: Path) -> InputFileError:
    size = path.stat().st_size if path.is_file() else None
    what = "is empty (0 bytes)" if size == 0 else "holds no data rows"
    return InputFileError(f"{path}: the file {what}; re-download or regenerate it")


def read_table(path, **kwargs) -> pd.DataFrame:
    """The whole file as a frame; see :func:`open_table` for the arguments and the errors. A file without
    data rows is an :class:`InputFileError` too (unless ``nrows=0`` asks for the header only)."""
    with open_table(path, **kwargs) as frame:
        if len(frame) == 0 and kwargs.get("nrows") != 0:
            raise _no_rows(Path(path))
        return frame


def read_chunked(path: Path, *, chunksize: int, nrows: int | None, category_columns: Sequence[str],
                 transform: Callable[[pd.DataFrame], pd.DataFrame] | None = None, **read_csv_kwargs
                 ) -> pd.DataFrame:
    """Read a delimited file in chunks, holding ``category_columns`` as ``category`` dtype of strings.

    Pass ``dtype=str`` for those columns in ``read_csv_kwargs`` (so ``"0012"`` stays ``"0012"``); each
    chunk's columns are turned into categoricals as soon as the chunk is read, and ``transform``, when given,
    is applied to the chunk next. The chunks are then combined with
    :func:`pandas.api.types.union_categoricals` (categories sorted), so the result does not depend on the
    chunk size, and each distinct string of a column is held once rather than once per row.

    The file is read by :func:`open_table`, so a broken file is an :class:`InputFileError` naming it.
    """
    chunksize = as_int("chunksize", chunksize, minimum=1)
    nrows = as_int("nrows", nrows, minimum=1, allow_none=True)
    chunks: list[pd.DataFrame] = []
    path = Path(path)
    with open_table(path, chunksize=chunksize, nrows=nrows, **read_csv_kwargs) as reader:
        for chunk in reader:
            chunk = _to_category(chunk, category_columns)
            if transform is not None:
                chunk = _to_category(transform(chunk), category_columns)
            chunks.append(chunk)
    if not chunks or not any(len(c) for c in chunks):
        raise _no_rows(path)
    return concat_categorical(chunks, category_columns)


def _to_category(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    todo = [c for c in columns if c in frame.columns and not isinstance(frame[c].dtype, pd.CategoricalDtype)]
    if todo:
        frame = frame.assign(**{c: frame[c].astype("category") for c in todo})
    return frame


def concat_categorical(chunks: list[pd.DataFrame], category_columns: Sequence[str]) -> pd.DataFrame:
    """Concatenate frames whose ``category_columns`` are categoricals, each with its own categories."""
    cat_set = set(category_columns)
    columns = {}
    for col in chunks[0].columns:
        parts = [c[col] for c in chunks]
        if col in cat_set:
            parts = [p if isinstance(p.dtype, pd.CategoricalDtype) else p.astype("category") for p in parts]
            # union_categoricals wants one dtype of categories; an all-missing chunk may infer another.
            target = next((p.cat.categories.dtype for p in parts if len(p.cat.categories)), None)
            if target is not None:
                parts = [p if p.cat.categories.dtype == target
                         else p.cat.set_categories(p.cat.categories.astype(target)) for p in parts]
            merged = pd.api.types.union_categoricals(parts, sort_categories=True, ignore_order=True)
            columns[col] = pd.Series(merged, name=col)
        else:
            columns[col] = pd.concat(parts, ignore_index=True)
    return pd.DataFrame(columns)[list(chunks[0].columns)]


def raw_file(name: str, data_dir, folder: str, candidates, path=None) -> Path:
    """The raw file a builder reads: ``path`` when given, else the first of ``candidates`` found by :func:`locate`."""
    if path is not None:
        file = Path(path).expanduser()
        if not file.is_file():
            raise InputFileNotFoundError(f"data set {name!r}: no file at path={str(file)!r}")
        return file
    return locate(name, data_dir, folder, any_of=candidates)[1]
