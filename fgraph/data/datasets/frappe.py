"""Frappe: context-aware mobile-app usage, the 10-field benchmark of the NFM/AFM papers (Frappe_x1).

The public split (202,027 / 57,722 / 28,860 rows) ships as libFM files whose features are one-hot indices.
The validation and test files are available and used unchanged; the training file is not, so it is rebuilt
from the raw usage log by the recipe that the public split was made with (see :func:`frappe`).
"""
from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..schema import Schema, categorical
from ...errors import InputFileError
from ._common import DatasetSplits, count_labels, file_errors, locate, read_table

FOLDER = "frappe"
VALID_FILE = "frappe.validation.libfm.gz"
TEST_FILE = "frappe.test.libfm.gz"
RAW_FILE = "raw/frappe.csv.gz"

#: The fields in libFM order; each field's values are numbered in order of first appearance in the raw log.
FIELDS = ("user", "item", "daytime", "weekday", "isweekend", "homework", "cost", "weather", "country", "city")
CONTEXT = FIELDS[2:]
LABEL = "label"

#: Counts that pin the public split (and so the rebuild).
EXPECTED = {"train_rows": 202_027, "train_positives": 67_604, "valid_rows": 57_722, "valid_positives": 19_063,
            "test_rows": 28_860, "test_positives": 9_536}


class FrappeIntegrityError(InputFileError):
    """The libFM files do not decode into rows of the raw log as the rebuild recipe requires."""


def _read_libfm(path: Path, n_fields: int) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, indices)`` of a libFM file with exactly ``n_fields`` one-hot features per line."""
    with file_errors(path, "ascii"):
        with gzip.open(path, "rt", encoding="ascii", newline="") as fh:
            text = fh.read()
    numbered = [(i, ln) for i, ln in enumerate(text.splitlines(), 1) if ln.strip()]
    if not numbered:
        raise FrappeIntegrityError(f"{path}: the file holds no lines")
    numbers, lines = zip(*numbered)
    # Every feature is "<index>:1"; any other value is left in place and then fails the integer parse.
    tokens = re.sub(r":1(?=\s|$)", "", " ".join(lines)).split()
    per_line = np.fromiter((ln.count(" ") for ln in (" ".join(ln.split()) for ln in lines)), dtype=np.int64,
                           count=len(lines))
    bad = np.flatnonzero(per_line != n_fields)
    if bad.size:
        raise FrappeIntegrityError(f"{path}: line {numbers[bad[0]]} has {int(per_line[bad[0]])} feature(s), "
                                   f"expected '<label> idx:1' x{n_fields} on every line (a truncated file?)")
    if len(tokens) != len(lines) * (n_fields + 1):
        raise FrappeIntegrityError(f"{path}: expected '<label> idx:1' x{n_fields} on every line")
    try:
        arr = np.asarray(tokens, dtype=np.int64).reshape(len(lines), n_fields + 1)
    except ValueError as e:
        raise FrappeIntegrityError(f"{path}: not a one-hot libFM file ({e})") from None
    return arr[:, 0], arr[:, 1:]


def _row_keys(codes: np.ndarray, cards: np.ndarray) -> np.ndarray:
    """One int64 per row that identifies the row's codes (mixed-radix number; fits for Frappe's sizes)."""
    if float(np.prod(cards.astype(float))) >= 2.0 ** 62:
        raise OverflowError("field cardinalities too large for int64 row keys")
    key = np.zeros(len(codes), dtype=np.int64)
    for j in range(codes.shape[1]):
        key = key * int(cards[j]) + codes[:, j]
    return key


def _sample_unused(users: np.ndarray, used_user: np.ndarray, used_item: np.ndarray, n_items: int,
                   rng: np.random.Generator) -> np.ndarray:
    """For each entry of ``users``, an item drawn uniformly from the items that user never used.

    ``(used_user, used_item)`` are the distinct used pairs. Without rejection loops: with the user's used
    items sorted, ``s_0 < s_1 < ...``, the ``r``-th unused item is ``r + #{i : s_i - i <= r}``.
    """
    order = np.lexsort((used_item, used_user))
    uu, ui = used_user[order], used_item[order]
    n_users = int(max(users.max(initial=0), uu.max(initial=0))) + 1
    n_used = np.bincount(uu, minlength=n_users)
    start = np.concatenate(([0], np.cumsum(n_used)[:-1]))
    rank_in_user = np.arange(len(uu)) - start[uu]
    # s_i - i is non-decreasing within a user; offsetting by user makes it sorted globally.
    stride = n_items + 1
    adjusted = uu * stride + (ui - rank_in_user)
    n_free = n_items - n_used[users]
    if np.any(n_free <= 0):
        raise FrappeIntegrityError("a user has used every item, so no negative item can be drawn")
    r = np.floor(rng.random(len(users)) * n_free).astype(np.int64)
    r = np.minimum(r, n_free - 1)
    k = np.searchsorted(adjusted, users * stride + r, side="right") - start[users]
    return r + k


def frappe(data_dir=None, *, seed: int = 0, labels: str = "binary") -> DatasetSplits:
    """Frappe with the public validation/test split and a training split rebuilt from the raw log.

    Files (in ``data_dir/frappe/``, or ``data_dir`` itself): ``frappe.validation.libfm.gz`` and
    ``frappe.test.libfm.gz`` (the exact public files), and ``raw/frappe.csv.gz`` (the Frappe v1.0 log).

    Validation and test are the public files, decoded from one-hot indices back to raw values: the libFM
    indices number each field's raw values in order of first appearance in the log, field by field in the
    order of :data:`FIELDS` (``cnt`` is dropped). Every positive row must then be a row of the log; this is
    checked and :class:`FrappeIntegrityError` is raised otherwise.

    Training (rebuilt, seeded; its negatives are not those of the missing public training file):

    * positives: the logged rows not used as positives in validation or test (rows compared as a multiset
      of whole rows);
    * negatives: the public set holds two negatives per logged row, with the logged row's user and context
      and another item. For each (user, context) group of ``g`` logged rows of which validation and test
      already hold ``h`` negatives, the training split gets ``2g - h``, each with an item drawn uniformly
      from the items that user never used.

    That gives 202,027 training rows (67,604 positives), 57,722 validation rows (19,063 positives) and 28,860
    test rows (9,536 positives). Field values are the raw strings (``user``, ``item`` and ``city`` are
    anonymised integers, kept as strings), so one value maps to one id in every split.

    Args:
        data_dir: the directory that holds the ``frappe`` folder (default: see
            :func:`~fgraph.data.datasets.resolve_data_dir`).
        seed: seeds the training negatives and the training row order; validation and test never change.
        labels: ``"binary"`` for 0/1 labels, ``"pm1"`` for -1/+1 (the regression protocol of the FM papers).

    Returns:
        :class:`DatasetSplits`; ``meta`` holds the counts, ``train_source``, the number of (user, context)
        groups and the source files.
    """
    if labels not in ("binary", "pm1"):
        raise ValueError(f"labels must be 'binary' or 'pm1', got {labels!r}")
    folder, _ = locate("frappe", data_dir, FOLDER, required=(VALID_FILE, TEST_FILE, RAW_FILE))

    raw = read_table(folder / RAW_FILE, sep="\t", dtype=str, keep_default_na=False)
    missing_cols = [c for c in FIELDS if c not in raw.columns]
    if missing_cols:
        raise FrappeIntegrityError(f"{folder / RAW_FILE} lacks column(s) {missing_cols}")
    raw = raw[list(FIELDS)]

    # First-appearance numbering of each field's values: the libFM index is offset[field] + code.
    values, codes = [], np.empty((len(raw), len(FIELDS)), dtype=np.int64)
    for j, f in enumerate(FIELDS):
        c, uniq = pd.factorize(raw[f], sort=False)
        codes[:, j] = c
        values.append(np.asarray(uniq, dtype=object))
    cards = np.array([len(v) for v in values], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(cards)[:-1]))

    def decode(path: Path) -> tuple[np.ndarray, np.ndarray]:
        lab, idx = _read_libfm(path, len(FIELDS))
        c = idx - offsets
        bad = (c < 0) | (c >= cards)
        if bad.any():
            row, col = map(int, np.argwhere(bad)[0])
            raise FrappeIntegrityError(
                f"{path.name}: line {row + 1} has index {int(idx[row, col])} outside the range of field "
                f"{FIELDS[col]!r} ({int(offsets[col])}..{int(offsets[col] + cards[col] - 1)}); the raw log "
                f"does not match the libFM numbering")
        if not np.isin(lab, (-1, 1)).all():
            raise FrappeIntegrityError(f"{path.name}: labels must be -1 or 1")
        return lab, c

    valid_lab, valid_codes = decode(folder / VALID_FILE)
    test_lab, test_codes = decode(folder / TEST_FILE)

    # -- positives: the log as a multiset of rows, minus the rows that validation/test use ----------------
    raw_key = _row_keys(codes, cards)
    held_codes = np.concatenate([valid_codes, test_codes])
    held_lab = np.concatenate([valid_lab, test_lab])
    held_pos_key = _row_keys(held_codes[held_lab > 0], cards)
    raw_counts = pd.Series(raw_key).value_counts()
    used_counts = pd.Series(held_pos_key).value_counts()
    avail = raw_counts.reindex(used_counts.index)
    not_logged = avail.isna()
    if not_logged.any():
        raise FrappeIntegrityError(
            f"{int(used_counts[not_logged].sum())} positive row(s) of validation/test are not rows of the raw "
            f"log under the first-appearance numbering; the files do not belong together")
    over = used_counts > avail
    if over.any():
        raise FrappeIntegrityError(f"{int(over.sum())} row(s) are positives in validation/test more often than "
                                   f"they are logged")
    # Drop, for each row value, its first k_used occurrences in the log.
    occurrence = pd.Series(raw_key).groupby(raw_key).cumcount().to_numpy()
    k_used = used_counts.reindex(raw_key).fillna(0).to_numpy(dtype=np.int64)
    keep = occurrence >= k_used
    pos_codes = codes[keep]

    # -- negatives: 2g - h per (user, context) group ---------------------------------------------------
    ctx_cols = [0] + list(range(2, len(FIELDS)))
    ctx_cards = cards[ctx_cols]
    raw_ctx = _row_keys(codes[:, ctx_cols], ctx_cards)
    group_id, group_keys = pd.factorize(raw_ctx, sort=False)
    g = np.bincount(group_id)
    held_neg_ctx = _row_keys(held_codes[held_lab < 0][:, ctx_cols], ctx_cards)
    neg_group = pd.Index(group_keys).get_indexer(held_neg_ctx)
    if (neg_group < 0).any():
        raise FrappeIntegrityError(f"{int((neg_group < 0).sum())} negative row(s) of validation/test share "
                                   f"user and context with no logged row")
    h = np.bincount(neg_group, minlength=len(g))
    n_new = 2 * g - h
    if (n_new < 0).any():
        raise FrappeIntegrityError(f"{int((n_new < 0).sum())} (user, context) group(s) have more than two "
                                   f"negatives per logged row in validation/test")
    first_row = np.unique(group_id, return_index=True)[1]  # group ids are in first-appearance order
    neg_codes = np.repeat(codes[first_row], n_new, axis=0)

    rng = np.random.default_rng(seed)
    used_pairs = np.unique(codes[:, 0] * cards[1] + codes[:, 1])
    neg_codes[:, 1] = _sample_unused(neg_codes[:, 0], used_pairs // cards[1], used_pairs % cards[1],
                                     int(cards[1]), rng)

    pos_value, neg_value = (1, 0) if labels == "binary" else (1, -1)

    def frame(c: np.ndarray, lab: np.ndarray) -> pd.DataFrame:
        cols = {f: pd.array(values[j][c[:, j]], dtype="str") for j, f in enumerate(FIELDS)}
        cols[LABEL] = lab.astype(np.int64)
        return pd.DataFrame(cols)

    train_codes = np.concatenate([pos_codes, neg_codes])
    train_lab = np.concatenate([np.full(len(pos_codes), pos_value), np.full(len(neg_codes), neg_value)])
    order = rng.permutation(len(train_codes))
    train = frame(train_codes[order], train_lab[order])
    valid = frame(valid_codes, np.where(valid_lab > 0, pos_value, neg_value))
    test = frame(test_codes, np.where(test_lab > 0, pos_value, neg_value))

    schema = Schema(tuple(categorical(f) for f in FIELDS), label=LABEL)
    meta = count_labels({"train": train, "valid": valid, "test": test}, LABEL)
    meta.update({
        "train_source": "rebuilt from raw log with seeded negatives",
        "valid_source": f"public file {VALID_FILE}, decoded",
        "test_source": f"public file {TEST_FILE}, decoded",
        "labels": labels,
        "seed": seed,
        "raw_rows": int(len(raw)),
        "groups": int(len(g)),
        "train_negatives": int(len(neg_codes)),
        "cardinalities": {f: int(cards[j]) for j, f in enumerate(FIELDS)},
        "folder": str(folder),
    })
    return DatasetSplits(train, valid, test, schema, name="frappe", meta=meta)
