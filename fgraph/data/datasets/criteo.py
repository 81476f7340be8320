"""Criteo (Kaggle Display Advertising Challenge 2014): 13 integer and 26 hashed categorical fields."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..schema import Schema, categorical, numeric
from ._common import DatasetSplits, count_labels, raw_file, random_split, read_chunked

FOLDER = "criteo_sample"
#: Looked for in this order: the full Kaggle file, a gzipped copy of it, then the 10,000-row sample.
CANDIDATES = ("train.txt", "train.txt.gz", "train_examples.txt.gz")
LABEL = "label"
NUMERIC = tuple(f"I{i}" for i in range(1, 14))
CATEGORICAL = tuple(f"C{i}" for i in range(1, 27))
COLUMNS = (LABEL,) + NUMERIC + CATEGORICAL

#: Rows and positives of ``train_examples.txt.gz`` (the head of the Kaggle file).
SAMPLE_ROWS = 10_000
SAMPLE_POSITIVES = 2_182


def read_criteo(path, *, nrows: int | None = None, chunksize: int = 1_000_000):
    """Read a file in the raw Kaggle format into one DataFrame.

    Tab-separated, no header, 40 columns ``label, I1..I13, C1..C26``; an empty cell is missing. ``I`` columns
    become float64 (NaN when missing), ``C`` columns ``category`` (NaN when missing), ``label`` int8. The
    file is read ``chunksize`` rows at a time; the result does not depend on ``chunksize``.
    """
    dtype = {LABEL: np.int8, **{c: np.float64 for c in NUMERIC}, **{c: str for c in CATEGORICAL}}
    return read_chunked(Path(path), chunksize=chunksize, nrows=nrows, category_columns=CATEGORICAL,
                        sep="\t", header=None, names=list(COLUMNS), dtype=dtype, na_values=[""],
                        keep_default_na=False)


def criteo(data_dir=None, *, seed: int = 0, path=None, nrows: int | None = None, chunksize: int = 1_000_000,
           numeric_treatment: str = "log", min_count: int = 2) -> DatasetSplits:
    """Criteo in its raw Kaggle format, split 80/10/10 at random.

    Files (in ``data_dir/criteo_sample/``, or ``data_dir`` itself), the first one found of ``train.txt``
    (the full 45.8M-row Kaggle file), ``train.txt.gz`` and ``train_examples.txt.gz`` (its first 10,000
    rows: 2,182 positives). ``path`` names a file directly.

    The file is read in chunks of ``chunksize`` rows with the 26 categorical columns as pandas ``category``
    (merged with ``union_categoricals``), so each distinct hashed string is held once; the 13 integer
    columns are float64 with NaN for missing.

    Args:
        data_dir: the directory that holds the ``criteo_sample`` folder.
        seed: seeds the split.
        path: a file in the Kaggle format to read instead of looking in ``data_dir``.
        nrows: read only the first ``nrows`` rows.
        chunksize: rows per chunk; does not change the result.
        numeric_treatment: the treatment of ``I1..I13`` (``"log"`` is the Criteo-winner transform
            ``floor(log(x)^2)``; ``"scale"`` or ``"bucket"`` also work).
        min_count: set on each categorical field: values seen fewer times in training share the rare id.
    """
    file = raw_file("criteo", data_dir, FOLDER, CANDIDATES, path)
    frame = read_criteo(file, nrows=nrows, chunksize=chunksize)

    train, valid, test = random_split(frame, seed=seed)
    schema = Schema(tuple(numeric(c, treatment=numeric_treatment) for c in NUMERIC)
                    + tuple(categorical(c, min_count=min_count) for c in CATEGORICAL), label=LABEL)
    meta = count_labels({"all": frame, "train": train, "valid": valid, "test": test}, LABEL)
    meta.update({"file": str(file), "seed": seed, "nrows": nrows,
                 "missing_rate": {c: float(frame[c].isna().mean()) for c in NUMERIC + CATEGORICAL}})
    return DatasetSplits(train, valid, test, schema, name="criteo", meta=meta)
