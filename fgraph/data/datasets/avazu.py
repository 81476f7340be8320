"""Avazu (Kaggle Click-Through Rate Prediction 2014): mobile-ad clicks, 21 categorical columns plus time."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..schema import Schema, categorical
from ...errors import InputFileError
from ._common import DatasetSplits, count_labels, raw_file, random_split, read_chunked, read_table

FOLDER = "avazu_sample"
#: Looked for in this order: the full Kaggle training file (plain or gzipped), then the 2,994-row sample.
CANDIDATES = ("train.csv", "train.csv.gz", "train.gz", "tr.rx.csv.gz")
LABEL = "click"
DROPPED = ("id",)
TIME_COLUMN = "hour"
DERIVED = ("hour_of_day", "weekday")

#: Rows and clicks of ``tr.rx.csv.gz`` (the head of the Kaggle file, all from hour 14102100).
SAMPLE_ROWS = 2_994
SAMPLE_POSITIVES = 522

_WEEKDAYS = np.array(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"], dtype=object)


def split_hour(hour: pd.Series) -> pd.DataFrame:
    """``hour_of_day`` (``"00"``..``"23"``) and ``weekday`` (``"monday"``...) of ``YYMMDDHH`` values (year
    ``20YY``), both categorical; a value that is not a valid ``YYMMDDHH`` gives missing values."""
    cat = hour if isinstance(hour.dtype, pd.CategoricalDtype) else hour.astype("category")
    # Work on the few distinct values, then spread them over the rows through the codes.
    values = pd.Series(np.asarray(cat.cat.categories.astype(str), dtype=object)).str.strip()
    dates = pd.to_datetime("20" + values.str[:6], format="%Y%m%d", errors="coerce")
    hh = pd.to_numeric(values.str[6:8], errors="coerce")
    ok = ((values.str.len() == 8) & dates.notna() & hh.between(0, 23)).to_numpy()
    # One slot more than there are values, for missing cells (code -1).
    hod = np.append(np.where(ok, values.str[6:8].to_numpy(dtype=object), None), None)
    day = dates.dt.day_of_week.fillna(0).astype(int).to_numpy()
    wd = np.append(np.where(ok, _WEEKDAYS[day], None), None)
    codes = cat.cat.codes.to_numpy()
    codes = np.where(codes < 0, len(values), codes)
    return pd.DataFrame({"hour_of_day": pd.Series(hod[codes], dtype="str", index=hour.index).astype("category"),
                         "weekday": pd.Series(wd[codes], dtype="str", index=hour.index).astype("category")},
                        index=hour.index)


def read_avazu(path, *, nrows: int | None = None, chunksize: int = 1_000_000) -> pd.DataFrame:
    """Read a CSV in the Avazu Kaggle format (with header) into one DataFrame.

    ``id`` is dropped; ``hour`` (``YYMMDDHH``) is replaced by ``hour_of_day`` and ``weekday``; ``click`` is
    int8 and every other column a pandas ``category`` of strings. The file is read ``chunksize`` rows at a
    time; the result does not depend on ``chunksize``.
    """
    path = Path(path)
    header = list(read_table(path, nrows=0).columns)
    for needed in (LABEL, TIME_COLUMN):
        if needed not in header:
            raise InputFileError(f"{path}: no {needed!r} column; expected the Avazu training CSV with header "
                             f"(id, click, hour, C1, banner_pos, ...), got columns {header}")
    kept = [c for c in header if c not in DROPPED]
    others = [c for c in kept if c not in (LABEL, TIME_COLUMN)]
    dtype = {LABEL: np.int8, TIME_COLUMN: str, **{c: str for c in others}}
    order = [LABEL, *DERIVED, *others]

    def derive(chunk: pd.DataFrame) -> pd.DataFrame:
        parts = split_hour(chunk[TIME_COLUMN])
        out = pd.concat([chunk.drop(columns=[TIME_COLUMN]), parts], axis=1)
        return out[order]

    return read_chunked(path, chunksize=chunksize, nrows=nrows, category_columns=[*DERIVED, *others],
                        transform=derive, usecols=kept, dtype=dtype, keep_default_na=False, na_values=[""])


def avazu(data_dir=None, *, seed: int = 0, path=None, nrows: int | None = None, chunksize: int = 1_000_000,
          min_count: int = 2) -> DatasetSplits:
    """Avazu in its raw Kaggle CSV format, split 80/10/10 at random.

    Files (in ``data_dir/avazu_sample/``, or ``data_dir`` itself), the first one found of ``train.csv``,
    ``train.csv.gz``, ``train.gz`` (the full 40.4M-row Kaggle file) and ``tr.rx.csv.gz`` (its first 2,994
    rows, 522 clicks, all from one hour). ``path`` names a file directly.

    Fields (23, all categorical): ``hour_of_day`` and ``weekday`` derived from ``hour`` (``YYMMDDHH``, in
    2014), then the 21 other columns as strings: ``C1, banner_pos, site_id, site_domain, site_category,
    app_id, app_domain, app_category, device_id, device_ip, device_model, device_type, device_conn_type,
    C14..C21``. ``id`` and the raw ``hour`` are dropped. Label: ``click``.

    Args:
        data_dir: the directory that holds the ``avazu_sample`` folder.
        seed: seeds the split.
        path: a file in the Avazu format to read instead of looking in ``data_dir``.
        nrows: read only the first ``nrows`` rows.
        chunksize: rows per chunk; does not change the result.
        min_count: set on each field: values seen fewer times in training share the rare id.
    """
    file = raw_file("avazu", data_dir, FOLDER, CANDIDATES, path)
    frame = read_avazu(file, nrows=nrows, chunksize=chunksize)

    train, valid, test = random_split(frame, seed=seed)
    fields = [c for c in frame.columns if c != LABEL]
    schema = Schema(tuple(categorical(c, min_count=min_count) for c in fields), label=LABEL)
    meta = count_labels({"all": frame, "train": train, "valid": valid, "test": test}, LABEL)
    meta.update({"file": str(file), "seed": seed, "nrows": nrows})
    return DatasetSplits(train, valid, test, schema, name="avazu", meta=meta)
