"""Tables larger than memory: fit the encoder over chunks, encode into a record file (``.npy``) in a cache,
and train from it batch by batch.

The path (:func:`out_of_core_splits`, which ``fgraph train --data`` takes by itself for a file larger than
:func:`out_of_core_threshold`)::

    pass 1  scan:   row count, each column's type over the whole file (as read_file decides it), the
                    label's values, the first SAMPLE_ROWS rows (schema inference looks at those only)
    split:          split_indices(n, fractions, seed) -- the same rows as file_splits -- written as
                    train/valid/test index arrays (.npy, int32 below 2**31 rows)
    pass 2  fit:    FieldEncoder.fit_chunks over the training rows of each chunk (exact: same fingerprint)
    pass 3  encode: FieldEncoder.transform per chunk, appended to the cache's record file

Cache layout (``<cache root>/``; the root is the ``cache_dir`` given, else ``$FGRAPH_CACHE_DIR``, else
``.fgraph-cache`` beside the run directory)::

    fit-<key>/     encoder.json + info.json    key: the file (resolved path, size, mtime) and the options
    table-<key>/   rows.npy meta.json
                   key: the file and the encoder's fingerprint (and the label mapping)
    split-<key>/   train.npy valid.npy test.npy   key: the file, its row count, the fractions and seed

Each entry is written into a temporary directory and renamed into place when complete, so an entry
killed mid-write is never read (its temporary directory is ignored, and removed by the next writer).
``rows.npy`` is a one-dimensional array of packed records (:func:`record_dtype`), one per row: the ids per
dtype group (all fields whose vocabulary fits int8 in one ``(k,)`` sub-array, and so on), the scaled
values, the label. A row is then one contiguous read, however many fields it has.
Multi-valued (bag) fields are refused on this path (:class:`~fgraph.errors.ConfigError`).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..errors import ConfigError, DataError, InputFileError
from .encoder import FieldEncoder
from .memory import release_freed_memory
from .space import EncodedData, FeatureSpace

#: A training file at least this large (bytes on disk) takes the out-of-core path in ``fgraph train``.
OUT_OF_CORE_BYTES = 1 << 30
#: Environment variables overriding :data:`OUT_OF_CORE_BYTES` and the cache root.
THRESHOLD_ENV, CACHE_ENV = "FGRAPH_OUT_OF_CORE_BYTES", "FGRAPH_CACHE_DIR"
CACHE_FORMAT = 2   # 2: one record file per table (1: one array per dtype group, read through a memory map)
#: Rows per chunk of the passes. pyarrow's CSV reader is used: on a generated 500k-row Criteo-shaped CSV
#: (124 MB, 40 columns, read as text) ``pyarrow.csv.open_csv`` took 1.19 s against 3.3 s for pandas'
#: ``read_csv(chunksize=100_000)`` (2 cores, one busy); Parquet is read with ``ParquetFile.iter_batches``.
CHUNK_ROWS = 100_000
_BLOCK_BYTES = 16 << 20


def out_of_core_threshold() -> int:
    """The size from which a training file takes the out-of-core path: ``$FGRAPH_OUT_OF_CORE_BYTES`` if
    set, else :data:`OUT_OF_CORE_BYTES` (1 GiB)."""
    text = os.environ.get(THRESHOLD_ENV)
    if text is None:
        return OUT_OF_CORE_BYTES
    try:
        return int(float(text))
    except ValueError:
        raise ConfigError(f"${THRESHOLD_ENV} must be a number of bytes, got {text!r}") from None


def cache_root(run_dir=None, cache_dir=None) -> Path:
    """Where the data cache is: ``cache_dir``, else ``$FGRAPH_CACHE_DIR``, else ``RUN/../.fgraph-cache``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = Path(run_dir).resolve().parent if run_dir is not None else Path.cwd()
    return base / ".fgraph-cache"


def file_key(path) -> dict:
    """What identifies an input file's content for the cache: resolved path, size, mtime (ns)."""
    p = Path(path).resolve()
    st = p.stat()
    return {"path": str(p), "size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:20]


# ==========================================================================================================
# Reading chunks
# ==========================================================================================================

def iter_chunks(path, columns=None, *, sep: str | None = None, chunk_rows: int = CHUNK_ROWS):
    """Yield ``(start_row, frame)`` over a CSV or Parquet file, ``frame`` holding ``columns`` (default all).

    CSV cells are text (``category`` columns, missing cells None) as :func:`~fgraph.data.files.read_file`
    holds them before its number conversion (:func:`convert_chunk` does that with the whole file's
    decision); Parquet batches have the file's own types, converted as ``read_file`` converts them.
    """
    from . import files as F

    p = Path(path)
    start = 0
    if F._file_format(p) == "parquet":
        import pyarrow as pa

        pf = F._parquet_file(p)
        F._check_columns(p, list(pf.schema_arrow.names), columns)
        try:
            for batch in pf.iter_batches(batch_size=chunk_rows, columns=columns):
                frame = batch.to_pandas(types_mapper=F._nullable_integers, strings_to_categorical=True)
                narrow = {c: frame[c].to_numpy(dtype=frame[c].dtype.numpy_dtype) for c in frame.columns
                          if F._nullable_int(frame[c].dtype) and not frame[c].isna().any()}
                frame = frame.assign(**narrow) if narrow else frame
                frame.index = pd.RangeIndex(start, start + len(frame))
                yield start, frame
                start += len(frame)
        except (pa.ArrowException, OSError, ValueError) as e:
            raise InputFileError(f"{p}: the Parquet file is corrupt or truncated ({F._first_line(e)})") from None
        return
    import pyarrow as pa
    import pyarrow.csv as pc

    sep = sep if sep is not None else F.sniff_separator(p)
    names = F._csv_header(p, sep)
    F._check_columns(p, names, columns)
    want = list(columns) if columns is not None else names
    options = dict(
        parse_options=pc.ParseOptions(delimiter=sep, quote_char=F._QUOTE, double_quote=True, newlines_in_values=True),
        convert_options=pc.ConvertOptions(column_types={c: pa.string() for c in names}, include_columns=want,
                                          null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=True))
    pending = []
    try:
        with open(p, "rb") as fh:
            # pyarrow's streaming reader (pc.open_csv) over the whole file keeps memory in proportion to the
            # file: on a 1.5M-row Criteo-shaped CSV (370 MB) its RssAnon peaked at 661 MiB against 425 MiB
            # for the first 500k rows, and the first pass over 10M rows peaked at 2,535 MiB (956 now).
            # Parsing whole records block by block keeps it flat (439 / 400 MiB, the same speed).
            for k, block in enumerate(_record_blocks(fh, F._QUOTE.encode())):
                read = pc.ReadOptions(column_names=names, skip_rows=1 if k == 0 else 0, use_threads=False,
                                      block_size=len(block) + 1)
                frame = pc.read_csv(pa.BufferReader(block), read_options=read, **options) \
                    .to_pandas(strings_to_categorical=True)
                del block
                if len(frame) == 0:
                    continue
                pending.append(frame)
                if sum(len(f) for f in pending) >= chunk_rows:
                    frame = pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]
                    pending = []
                    frame = _categorical(frame)
                    frame.index = pd.RangeIndex(start, start + len(frame))
                    yield start, frame[want]
                    start += len(frame)
    except (pa.ArrowException, UnicodeDecodeError) as e:
        raise InputFileError(f"{p}: cannot read it as a {sep!r}-separated file near data row {start + 1:,} "
                             f"({F._first_line(e)})") from None
    if pending:
        frame = _categorical(pd.concat(pending, ignore_index=True))
        frame.index = pd.RangeIndex(start, start + len(frame))
        yield start, frame[want]


def _record_blocks(fh, quote: bytes, size: int | None = None):
    """Yield the bytes of binary file ``fh`` in blocks of about ``size`` bytes, each cut after a line end
    that is outside any quoted value (an even number of ``quote`` bytes before it since the last cut, as
    in RFC 4180, where a quote inside a quoted value is doubled), so each block holds whole records. A block
    without such a line end is joined with the next one; the last block is what is left at the end.
    ``size`` defaults to :data:`_BLOCK_BYTES`."""
    size = size or _BLOCK_BYTES
    parts, odd = [], 0   # the bytes carried over, and whether they hold an odd number of quotes
    q = quote[0]
    while True:
        data = fh.read(size)
        if not data:
            if parts:
                yield b"".join(parts)
            return
        j = data.rfind(b"\n")
        if j >= 0 and (odd + data.count(quote, 0, j)) % 2:
            # Rare (a quoted value holds a line end): the last line end with an even count before it.
            a = np.frombuffer(data, dtype=np.uint8)
            ends = np.flatnonzero(a == 10)
            before = np.searchsorted(np.flatnonzero(a == q), ends)
            ok = ends[(before + odd) % 2 == 0]
            j = int(ok[-1]) if len(ok) else -1
        if j < 0:
            parts.append(data)
            odd = (odd + data.count(quote)) % 2
            continue
        parts.append(data[:j + 1])
        yield b"".join(parts)
        rest = data[j + 1:]
        parts, odd = ([rest], rest.count(quote) % 2) if rest else ([], 0)


def _categorical(frame: pd.DataFrame) -> pd.DataFrame:
    todo = {c: frame[c].astype(object).astype("category") for c in frame.columns
            if not isinstance(frame[c].dtype, pd.CategoricalDtype)}
    return frame.assign(**todo) if todo else frame


def _chunk_kind(col: pd.Series) -> str:
    """How :func:`~fgraph.data.files._numbers_from_text` would see this chunk's text column: ``"empty"``
    (no value but missing markers), ``"text"``, ``"bigint"`` (integers beyond int64), ``"int"``, ``"float"``."""
    from . import files as F

    cats = pd.Series(col.cat.categories.astype(object), dtype=object).str.strip()
    marker = (cats.isin(list(F.MISSING_MARKERS)) | (cats == "")).to_numpy()
    values = cats[~marker]
    if len(values) == 0:
        return "empty"
    as_text = pd.Series(values, dtype=object)
    if as_text.str.match(F._LEADING_ZERO).any():
        return "text"
    if pd.to_numeric(as_text, errors="coerce").isna().any():
        return "text"
    if as_text.str.fullmatch(F._INT_TEXT).all():
        ints = [int(v) for v in values]
        return "bigint" if min(ints) < -2 ** 63 or max(ints) >= 2 ** 63 else "int"
    return "float"


def _combine_kinds(kinds: set[str]) -> str:
    """The whole file's decision from its chunks' (:func:`_chunk_kind`)."""
    if "text" in kinds:
        return "text"
    if "float" in kinds:
        return "float"
    if "bigint" in kinds or not (kinds - {"empty"}):
        return "text"
    return "int"


def convert_chunk(frame: pd.DataFrame, kinds: dict[str, str] | None) -> pd.DataFrame:
    """A CSV chunk with its columns converted as ``read_file`` converts the whole file (``kinds``: the
    whole file's decision per column); Parquet chunks (``kinds`` None) are returned as they are."""
    if kinds is None:
        return frame
    from . import files as F

    out = {}
    for c in frame.columns:
        kind = kinds.get(c, "text")
        if kind == "text":
            continue
        s = F._numbers_from_text(frame[c])
        if s is None:   # every cell of this chunk is missing
            s = pd.Series(pd.array([pd.NA] * len(frame), dtype="Int64") if kind == "int"
                          else np.full(len(frame), np.nan), index=frame.index, name=c)
        elif kind == "float" and not pd.api.types.is_float_dtype(s.dtype):
            s = s.astype("float64")
        out[c] = s
    return frame.assign(**out) if out else frame


# ==========================================================================================================
# Memory-mapped encoded tables
# ==========================================================================================================

def smallest_int_dtype(cardinality: int) -> np.dtype:
    """The smallest of int8 / int16 / int32 that holds ids ``0 .. cardinality - 1``."""
    for dt in (np.int8, np.int16, np.int32):
        if cardinality - 1 <= np.iinfo(dt).max:
            return np.dtype(dt)
    raise DataError(f"a vocabulary of {cardinality:,} ids does not fit int32")


def _read_header(path: Path) -> tuple[np.dtype, int, int]:
    """(dtype, rows, byte offset of the first row) of a one-dimensional ``.npy`` file, from its header."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(fh)
        return dtype, int(shape[0]), fh.tell()


def _write_header(fh, dtype: np.dtype, rows: int) -> None:
    np.lib.format.write_array_header_2_0(fh, {"descr": np.lib.format.dtype_to_descr(dtype),
                                               "fortran_order": False, "shape": (rows,)})


def _pread_exact(fd: int, size: int, offset: int, path: Path) -> bytes:
    """``size`` bytes at ``offset`` (``os.pread`` may return fewer: large reads, signals)."""
    parts, got = [], 0
    while got < size:
        b = os.pread(fd, size - got, offset + got)
        if not b:
            raise InputFileError(f"{path} is shorter than its header says (wanted {size:,} bytes at {offset:,}); "
                                 f"the cache entry was changed or truncated: delete {path.parent} to rebuild it")
        parts.append(b)
        got += len(b)
    return b"".join(parts)


#: Rows per read when one column of a whole split is read (``y``): about 10 MB of Criteo-shaped records.
#: ``ids`` and ``values`` of a whole split are one read (the loader never asks for them).
READ_ROWS = 65_536


class CachedTable(EncodedData):
    """An :class:`EncodedData` whose rows live in a cache directory's record file (``rows.npy``).

    :class:`~fgraph.data.FieldLoader` reads it batch by batch (:meth:`batch_tensors`): a batch is the same
    (bitwise) as that of the in-memory table for the same rows and seed. A batch's rows are read with
    ``os.pread``, one call per run of consecutive rows (an unshuffled batch: one call), so that the file is
    never mapped into the process and its resident memory does not grow with the table. ``reader="mmap"``
    reads them through a memory map instead (the default where the system has no ``os.pread``: Windows).

    ``index`` selects rows (a split: positions into the file's rows, in increasing order; held in memory,
    4 bytes a row); ``ids``, ``values`` and ``y`` give whole tensors (``y`` is small and kept; ``ids`` and
    ``values`` load the whole split: the loader never uses them).
    """

    def __init__(self, directory, index: np.ndarray | None = None, space: FeatureSpace | None = None,
                 reader: str | None = None):
        if reader is None:
            reader = "pread" if hasattr(os, "pread") else "mmap"
        if reader not in ("pread", "mmap") or (reader == "pread" and not hasattr(os, "pread")):
            raise ConfigError(f"reader={reader!r}: expected 'pread' (where os.pread exists) or 'mmap'")
        self.reader = reader
        self.directory = Path(directory)
        self.meta = json.loads((self.directory / "meta.json").read_text())
        self.space = space if space is not None else FeatureSpace.from_dict(self.meta["space"])
        self.label_name = self.meta.get("label")
        self.group_fields = {dt: np.asarray(pos, dtype=np.int64) for dt, pos in self.meta["groups"].items()}
        self.scaled = np.asarray(self.meta["scaled"], dtype=np.int64)
        self.path = self.directory / "rows.npy"
        self.dtype, rows, self._offset = _read_header(self.path)
        if rows != int(self.meta["rows"]):
            raise InputFileError(f"{self.path} holds {rows:,} rows but {self.directory / 'meta.json'} says "
                                 f"{int(self.meta['rows']):,}: delete {self.directory} to rebuild the cache entry")
        self.index = None if index is None else np.asarray(index)
        self._fd: int | None = None
        self._map = None
        self._y_cache = None

    def __getstate__(self):
        return {**self.__dict__, "_fd": None, "_map": None}

    def __del__(self):
        if getattr(self, "_fd", None) is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass

    # -- reading rows -----------------------------------------------------------------------------------
    def _records(self, pos) -> np.ndarray:
        """The records of the file's rows ``pos`` (a slice, or an integer array), in that order."""
        n = int(self.meta["rows"])
        if self.reader == "mmap":
            if self._map is None:
                self._map = np.load(self.path, mmap_mode="r")
            return np.array(self._map[pos])
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        size, off = self.dtype.itemsize, self._offset
        if isinstance(pos, slice):
            start, stop, step = pos.indices(n)
            if step != 1:
                return self._records(np.arange(start, stop, step))
            return np.frombuffer(_pread_exact(self._fd, max(stop - start, 0) * size, off + start * size, self.path),
                                 dtype=self.dtype)
        pos = np.asarray(pos, dtype=np.int64).reshape(-1)
        if len(pos) == 0:
            return np.empty(0, dtype=self.dtype)
        if pos.min() < 0 or pos.max() >= n:
            raise IndexError(f"row positions must lie in [0, {n}); got {pos.min()} .. {pos.max()}")
        ordered = bool((pos[1:] >= pos[:-1]).all())
        order = None if ordered else np.argsort(pos, kind="stable")
        sp = pos if ordered else pos[order]
        cut = np.flatnonzero(np.diff(sp) != 1) + 1
        starts = sp[np.concatenate(([0], cut))].tolist()
        counts = np.diff(np.concatenate(([0], cut, [len(sp)]))).tolist()
        fd = self._fd
        # One pread per run of consecutive rows. Shuffled batches of 4096 rows from a 10M-row table of
        # 104-byte rows, page cache warm, 1 busy core of 2: 3.8 ms a batch, against 1.5 ms for a memory-map
        # gather -- but the map's page faults bring in up to 16 neighbouring pages each (the kernel's
        # fault-around, not turned off by MADV_RANDOM), so 16,384 random rows had mapped the whole 1 GB file.
        buf = b"".join([os.pread(fd, c * size, off + s * size) for s, c in zip(starts, counts)])
        if len(buf) != len(sp) * size:   # a short read: do it again, piece by piece
            buf = b"".join([_pread_exact(fd, c * size, off + s * size, self.path) for s, c in zip(starts, counts)])
        rec = np.frombuffer(buf, dtype=self.dtype)
        if ordered:
            return rec
        out = np.empty_like(rec)
        out[order] = rec
        return out

    def _positions(self, rows):
        """File positions of this table's rows ``rows`` (a slice or an integer array/tensor)."""
        if isinstance(rows, slice):
            return rows if self.index is None else self.index[rows]
        pos = rows.numpy() if isinstance(rows, torch.Tensor) else np.asarray(rows)
        return pos if self.index is None else self.index[pos]

    def _column(self, name: str) -> np.ndarray:
        """One field of the records of every row, read READ_ROWS rows at a time."""
        n = len(self)
        parts = [np.array(self._records(self._positions(slice(s, min(s + READ_ROWS, n))))[name])
                 for s in range(0, n, READ_ROWS)]
        return np.concatenate(parts) if parts else np.empty((0, *self.dtype[name].shape), self.dtype[name].base)

    # -- EncodedData's interface ------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.meta["rows"]) if self.index is None else len(self.index)

    def __repr__(self) -> str:
        return f"CachedTable(rows={len(self)}, fields={self.space.num_fields}, dir={self.directory.name})"

    @property
    def bags(self):
        return None

    @property
    def y(self):
        if not self.meta.get("labelled"):
            return None
        if self._y_cache is None:
            self._y_cache = torch.from_numpy(self._column("y").astype(np.float32))
        return self._y_cache

    @property
    def ids(self):
        return self.batch_tensors(slice(0, len(self)))["ids"]

    @property
    def values(self):
        return self.batch_tensors(slice(0, len(self)))["values"] if len(self.scaled) else None

    def validate(self) -> "CachedTable":
        return self   # checked when the cache was written (ids from its encoder, values finite)

    def take(self, index) -> "CachedTable":
        index = np.asarray(index.numpy() if isinstance(index, torch.Tensor) else index, dtype=np.int64)
        rows = index if self.index is None else self.index[index]
        return CachedTable(self.directory, rows, self.space, self.reader)

    def tensors(self):
        return {"ids": self.ids, "values": self.values, "bags": None, "y": self.y}

    def batch_tensors(self, rows) -> dict:
        """The tensors of rows ``rows`` (a slice of positions, or a LongTensor of positions), as the
        in-memory table's slice or ``index_select`` gives them (ids int64)."""
        rec = self._records(self._positions(rows))
        n = len(rec)
        ids = np.empty((n, self.space.num_fields), dtype=np.int64)
        for dt, fields in self.group_fields.items():
            ids[:, fields] = rec[f"ids_{dt}"]
        values = None
        if len(self.scaled):
            values = np.ones((n, self.space.num_fields), dtype=np.float32)
            values[:, self.scaled] = rec["values"]
        y = np.array(rec["y"], dtype=np.float32) if self.meta.get("labelled") else None
        return {"ids": torch.from_numpy(ids), "values": None if values is None else torch.from_numpy(values),
                "bags": None, "y": None if y is None else torch.from_numpy(y)}


def record_dtype(groups: dict[str, list[int]], n_scaled: int, labelled: bool) -> np.dtype:
    """The packed record of one row in ``rows.npy``: the ids per dtype group, the scaled values, the label."""
    fields = [(f"ids_{dt}", np.dtype(dt), (len(pos),)) for dt, pos in groups.items()]
    if n_scaled:
        fields.append(("values", np.dtype(np.float32), (n_scaled,)))
    if labelled:
        fields.append(("y", np.dtype(np.float32)))
    return np.dtype(fields)


class _Staging:
    """A cache entry being written: a temporary directory renamed to ``final`` on success."""

    def __init__(self, final: Path):
        self.final = final
        self.tmp = final.parent / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"

    def __enter__(self) -> Path:
        self.final.parent.mkdir(parents=True, exist_ok=True)
        for old in self.final.parent.glob(f".tmp-{self.final.name}-*"):
            shutil.rmtree(old, ignore_errors=True)   # an earlier writer's, killed mid-write
        self.tmp.mkdir()
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        (self.tmp / "COMPLETE").write_text("ok\n")
        try:
            os.replace(self.tmp, self.final)
        except OSError:   # another process finished the same entry first: keep its copy
            shutil.rmtree(self.tmp, ignore_errors=True)
        return False


def _complete(d: Path) -> bool:
    return (d / "COMPLETE").is_file()


def encode_to_cache(path, encoder: FieldEncoder, root, *, kinds=None, label_encoding=None, rows: int | None = None,
                    sep: str | None = None, chunk_rows: int = CHUNK_ROWS) -> tuple[CachedTable, bool]:
    """Encode every row of ``path`` with ``encoder`` into the cache under ``root`` (or find it there).

    Returns ``(CachedTable of all rows, reused)``. ``kinds``: the CSV file's column types
    (:func:`scan_file`); ``label_encoding``: the :class:`~fgraph.data.files.LabelEncoding` that makes the
    label numeric (the label is left out when the file has none).
    """
    from . import files as F

    space = encoder.space_
    if space.bag_positions:
        bags = [space.names[k] for k in space.bag_positions]
        raise ConfigError(f"multi-valued field(s) {bags}: the out-of-core path (a training file larger than "
                          f"${THRESHOLD_ENV}, {out_of_core_threshold():,} bytes) does not store bags yet; drop them "
                          f"or declare them categorical in a schema file, or raise ${THRESHOLD_ENV} to train in memory")
    label = encoder.schema.label
    enc_text = None if label_encoding is None else [label_encoding.task, label_encoding.mapping]
    key = _digest({"file": file_key(path), "fingerprint": encoder.fingerprint(), "label": enc_text,
                   "kinds": kinds, "format": CACHE_FORMAT})
    final = Path(root) / f"table-{key}"
    if _complete(final):
        return CachedTable(final, space=space), True
    p = Path(path)
    names = encoder.schema.names
    have_label = label in F.file_columns(p, sep=sep)
    columns = names + ([label] if have_label else [])
    if rows is None:
        rows = sum(len(c) for _, c in iter_chunks(p, [columns[0]], sep=sep, chunk_rows=chunk_rows))
    dtypes = [smallest_int_dtype(c) for c in space.cardinalities]
    groups: dict[str, list[int]] = {}
    for k, dt in enumerate(dtypes):
        groups.setdefault(dt.name, []).append(k)
    scaled = space.scaled_positions
    dtype = record_dtype(groups, len(scaled), have_label)
    with _Staging(final) as tmp, open(tmp / "rows.npy", "wb") as fh:
        _write_header(fh, dtype, rows)
        seen = 0
        for start, chunk in iter_chunks(p, columns, sep=sep, chunk_rows=chunk_rows):
            chunk = convert_chunk(chunk, kinds)
            if have_label and label_encoding is not None:
                chunk = F._apply_label(chunk, label, label_encoding, p)
            enc = encoder.transform(chunk)
            stop = start + len(chunk)
            if stop > rows:
                raise InputFileError(f"{p} changed while it was read (more than {rows:,} rows)")
            rec = np.empty(len(chunk), dtype=dtype)
            ids = enc.ids.numpy()
            for dt, pos in groups.items():
                rec[f"ids_{dt}"] = ids[:, pos]
            if scaled:
                v = enc.values.numpy()[:, scaled]
                if not np.isfinite(v).all():
                    raise DataError(f"{p}: a scaled value is not finite near data row {start + 1:,}")
                rec["values"] = v
            if have_label:
                rec["y"] = enc.y.numpy()
            fh.write(rec.data)   # the chunk's buffer as it is, without a bytes copy
            seen = stop
        if seen != rows:
            raise InputFileError(f"{p} changed while it was read ({seen:,} rows, {rows:,} before)")
        fh.flush()
        meta = {"format": CACHE_FORMAT, "rows": rows, "space": space.to_dict(), "groups": groups, "scaled": scaled,
                "labelled": have_label, "label": label, "fingerprint": encoder.fingerprint(), "source": file_key(p)}
        (tmp / "meta.json").write_text(json.dumps(meta))
    return CachedTable(final, space=space), False


# ==========================================================================================================
# The whole path: scan, split, fit, encode
# ==========================================================================================================

def scan_file(path, label: str, *, sep: str | None = None, sample_rows: int, chunk_rows: int = CHUNK_ROWS,
              max_labels: int = 10_000) -> dict:
    """Pass 1 over a file: ``{"rows", "kinds" (CSV; None for Parquet), "sample" (the first ``sample_rows``
    rows, converted), "labels" (a Series of the label's distinct values, converted)}``."""
    from . import files as F

    p = Path(path)
    is_csv = F._file_format(p) == "csv"
    chunk_kinds: dict[str, set] = {}
    sample, got, rows = [], 0, 0
    labels: set = set()
    for _, chunk in iter_chunks(p, sep=sep, chunk_rows=chunk_rows):
        rows += len(chunk)
        if got < sample_rows:
            sample.append(chunk.iloc[:sample_rows - got])
            got += len(sample[-1])
        if is_csv:
            for c in chunk.columns:
                chunk_kinds.setdefault(c, set()).add(_chunk_kind(chunk[c]))
        if label in chunk.columns and len(labels) <= max_labels:
            col = chunk[label]
            vals = col.cat.categories.tolist() if isinstance(col.dtype, pd.CategoricalDtype) else pd.unique(col)
            labels.update(vals)
            if col.isna().any():
                labels.add(None)
    if rows == 0:
        raise F._no_rows(p)
    kinds = {c: _combine_kinds(k) for c, k in chunk_kinds.items()} if is_csv else None
    frame = pd.concat(sample, ignore_index=True) if len(sample) > 1 else sample[0].reset_index(drop=True)
    frame = convert_chunk(_categorical(frame) if is_csv else frame, kinds)
    lab = pd.Series(sorted(labels, key=lambda v: (v is None, str(v))), dtype=object)
    if is_csv:
        lab = convert_chunk(pd.DataFrame({label: lab.astype("category")}), {label: kinds.get(label, "text")})[label]
    return {"rows": rows, "kinds": kinds, "sample": frame, "labels": lab}


def write_split(root, path, rows: int, fractions, seed: int) -> dict[str, np.ndarray]:
    """The rows of :func:`~fgraph.data.datasets._common.split_indices` (the same as file_splits cuts), as
    index arrays (int32 below 2**31 rows) in the cache, written once per file, row count, fractions and seed,
    and returned in memory."""
    key = _digest({"file": file_key(path), "rows": rows, "fractions": list(fractions), "seed": seed,
                   "format": CACHE_FORMAT})
    final = Path(root) / f"split-{key}"
    names = ("train", "valid", "test")
    if not _complete(final):
        fr = np.asarray(fractions, dtype=float)
        perm = np.random.default_rng(seed).permutation(rows)   # as split_indices draws it
        n_valid, n_test = int(rows * fr[1]), int(rows * fr[2])
        n_train = rows - n_valid - n_test
        part = np.empty(rows, dtype=np.int8)
        part[perm[:n_train]] = 0
        part[perm[n_train:n_train + n_valid]] = 1
        part[perm[n_train + n_valid:]] = 2
        del perm
        dtype = np.dtype(np.int32 if rows <= np.iinfo(np.int32).max else np.int64)
        with _Staging(final) as tmp:
            sizes = (n_train, n_valid, n_test)
            for k, name in enumerate(names):
                with open(tmp / f"{name}.npy", "wb") as fh:
                    _write_header(fh, dtype, sizes[k])
                    for lo in range(0, rows, 1 << 20):
                        fh.write((np.flatnonzero(part[lo:lo + (1 << 20)] == k) + lo).astype(dtype).tobytes())
    return {name: np.load(final / f"{name}.npy") for name in names}


def out_of_core_splits(path, *, label, schema=None, task="binary", positive=None, seed=0, fractions=None,
                       min_count: int = 1, encoder: FieldEncoder | None = None, run_dir=None, cache_dir=None,
                       sep: str | None = None, chunk_rows: int = CHUNK_ROWS, sample_rows: int | None = None,
                       log=print) -> dict:
    """The out-of-core counterpart of :func:`~fgraph.data.files.file_splits` plus ``FieldEncoder.fit`` and
    ``transform``, for one training file cut 80/10/10 (or ``fractions``) with ``seed``.

    Returns ``{"encoder", "data": {split: CachedTable}, "report", "label_encoding", "meta", "split",
    "reused": {"fit": bool, "table": bool}, "cache": Path}``. The splits hold the same rows, the encoder
    the same fingerprint, and the batches the same tensors as the in-memory path.
    """
    from . import files as F
    from .datasets._common import DEFAULT_FRACTIONS, split_indices

    p = Path(path).resolve()
    sample_rows = F.SAMPLE_ROWS if sample_rows is None else sample_rows
    fractions = tuple(DEFAULT_FRACTIONS if fractions is None else fractions)
    split_indices(0, fractions, seed)
    spec = F._as_spec(schema)
    label = spec.resolve_label(label)
    root = cache_root(run_dir, cache_dir)
    schema_text = repr(schema)
    if isinstance(schema, (str, os.PathLike)) and Path(schema).is_file():
        schema_text += hashlib.sha256(Path(schema).read_bytes()).hexdigest()
    fit_key = _digest({"file": file_key(p), "label": label, "schema": schema_text, "task": task,
                       "positive": None if positive is None else str(positive), "seed": seed,
                       "fractions": list(fractions), "min_count": min_count, "sample_rows": sample_rows,
                       "encoder": None if encoder is None else encoder.fingerprint(), "format": CACHE_FORMAT})
    fit_dir = root / f"fit-{fit_key}"
    reused_fit = _complete(fit_dir)
    if reused_fit:
        info = json.loads((fit_dir / "info.json").read_text())
        fitted = FieldEncoder.load(fit_dir / "encoder.json")
        enc = F.LabelEncoding(**info["label_encoding"])
        report = F.SchemaReport(fitted.schema, info["reasons"], info["dropped"], info["sample_rows"], p.name,
                                info["origin"])
        rows, kinds = info["rows"], info["kinds"]
        log(f"out-of-core: reusing the fitted encoder in {fit_dir}")
        splits = write_split(root, p, rows, fractions, seed)
    else:
        log(f"out-of-core: pass 1/3 over {p.name} (rows, column types, label)")
        scan = scan_file(p, label, sep=sep, sample_rows=sample_rows, chunk_rows=chunk_rows)
        rows, kinds = scan["rows"], scan["kinds"]
        release_freed_memory()   # each pass's chunks (fgraph/data/memory.py says why)
        report = F.infer_schema_report(scan["sample"], label, spec=spec, sample_rows=sample_rows, source=p.name)
        enc = F._label_encoding(scan["labels"], task, positive, p, label)
        splits = write_split(root, p, rows, fractions, seed)
        schema_ = report.schema
        if encoder is None:
            log(f"out-of-core: pass 2/3, fitting the encoder on the {len(splits['train']):,} training rows")
            mask = np.zeros(rows, dtype=bool)
            mask[np.asarray(splits["train"])] = True
            chunks = (convert_chunk(c, kinds)[mask[s:s + len(c)]]
                      for s, c in iter_chunks(p, schema_.names, sep=sep, chunk_rows=chunk_rows))
            fitted = FieldEncoder(schema_, min_count=min_count).fit_chunks(chunks)
            del mask
            release_freed_memory()
        else:
            fitted = encoder
        with _Staging(fit_dir) as tmp:
            fitted.save(tmp / "encoder.json")
            (tmp / "info.json").write_text(json.dumps({
                "rows": rows, "kinds": kinds, "reasons": report.reasons, "dropped": report.dropped,
                "sample_rows": report.sample_rows, "origin": report.origin,
                "label_encoding": {"task": enc.task, "mapping": enc.mapping, "positive": enc.positive,
                                   "rule": enc.rule}}, default=str))
    if encoder is not None:
        fitted = encoder
    log(f"out-of-core: pass 3/3, encoding {rows:,} rows into {root}" if not _table_cached(root, p, fitted, enc, kinds)
        else f"out-of-core: reusing the encoded table in {root}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # unknown values: only rows outside the training split have them
        table, reused_table = encode_to_cache(p, fitted, root, kinds=kinds, label_encoding=enc, rows=rows, sep=sep,
                                              chunk_rows=chunk_rows)
    release_freed_memory()
    data = {name: CachedTable(table.directory, idx, fitted.space_) for name, idx in splits.items()}
    for name, d in data.items():
        if len(d) == 0:
            raise DataError(f"{p} has {rows:,} rows: too few to cut a {name} split from it; give more rows")
    cut = "/".join(F._percent(f) for f in fractions)
    split_text = (f"no valid or test file given: split {p.name} {cut} (train/valid/test) with seed {seed}: "
                  + " / ".join(f"{len(data[n]):,}" for n in ("train", "valid", "test")) + " rows")
    meta = {"files": {"train": str(p)}, "rows": {k: len(v) for k, v in data.items()}, "task": task,
            "label_mapping": enc.mapping, "positive": enc.positive,
            "split": {"from": str(p), "fractions": list(fractions), "seed": seed, "cut": ["valid", "test"]},
            "dropped": dict(report.dropped), "out_of_core": str(table.directory)}
    return {"encoder": fitted, "data": data, "report": report, "label_encoding": enc, "meta": meta,
            "split": split_text, "reused": {"fit": reused_fit, "table": reused_table}, "cache": root}


def _table_cached(root, p, encoder, enc, kinds) -> bool:
    key = _digest({"file": file_key(p), "fingerprint": encoder.fingerprint(),
                   "label": [enc.task, enc.mapping], "kinds": kinds, "format": CACHE_FORMAT})
    return _complete(Path(root) / f"table-{key}")
