"""Pieces shared by the data-set builders: the result type, finding the data directory, splitting."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd

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


class DatasetNotFoundError(FileNotFoundError):
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
    import fgraph

    repo_parent = Path(fgraph.__file__).resolve().parents[1].parent
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
    fr = np.asarray(fractions, dtype=float)
    if fr.shape != (3,) or np.any(fr < 0) or not np.isclose(fr.sum(), 1.0):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {tuple(fractions)}")
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


def read_chunked(path: Path, *, chunksize: int, nrows: int | None, category_columns: Sequence[str],
                 transform: Callable[[pd.DataFrame], pd.DataFrame] | None = None, **read_csv_kwargs
                 ) -> pd.DataFrame:
    """Read a delimited file in chunks, holding ``category_columns`` as ``category`` dtype of strings.

    Pass ``dtype=str`` for those columns in ``read_csv_kwargs`` (so ``"0012"`` stays ``"0012"``); each
    chunk's columns are turned into categoricals as soon as the chunk is read, and ``transform``, when given,
    is applied to the chunk next. The chunks are then combined with
    :func:`pandas.api.types.union_categoricals` (categories sorted), so the result does not depend on the
    chunk size, and each distinct string of a column is held once rather than once per row.
    """
    if int(chunksize) < 1:
        raise ValueError(f"chunksize must be >= 1, got {chunksize}")
    if nrows is not None and int(nrows) < 1:
        raise ValueError(f"nrows must be >= 1 or None, got {nrows}")
    chunks: list[pd.DataFrame] = []
    with pd.read_csv(path, chunksize=int(chunksize), nrows=nrows, **read_csv_kwargs) as reader:
        for chunk in reader:
            chunk = _to_category(chunk, category_columns)
            if transform is not None:
                chunk = _to_category(transform(chunk), category_columns)
            chunks.append(chunk)
    if not chunks:
        raise ValueError(f"{path} holds no data rows")
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
            raise FileNotFoundError(f"data set {name!r}: no file at path={str(file)!r}")
        return file
    return locate(name, data_dir, folder, any_of=candidates)[1]
