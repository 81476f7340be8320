"""Data-set builders: counts pinned by the real files, the Frappe rebuild recipe, chunked reading, the
synthetic generator's planted structure, and the errors a user sees when files are missing.

Tests on real files skip, saying where they looked, when the files are absent.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fgraph.data import FieldEncoder
from fgraph.data.datasets import (DATASETS, DatasetNotFoundError, DatasetSplits, avazu, criteo, dataset_status,
                                  frappe, load_dataset, movielens100k, random_split, resolve_data_dir, split_indices,
                                  synthetic)
from fgraph.data.datasets.frappe import _sample_unused

DATA = resolve_data_dir()


def _need(folder: str, *files: str):
    """Skip unless ``DATA/folder`` holds at least one of ``files``."""
    here = DATA / folder
    if not any((here / f).is_file() for f in files):
        pytest.skip(f"{folder} data ({', '.join(files)}) not found in {here}")
    return here


# -- Frappe ----------------------------------------------------------------------------------------------

FRAPPE_FILES = ("frappe.validation.libfm.gz", "frappe.test.libfm.gz", "raw/frappe.csv.gz")
CONTEXT = ["daytime", "weekday", "isweekend", "homework", "cost", "weather", "country", "city"]


@pytest.fixture(scope="module")
def frappe_splits():
    here = DATA / "frappe"
    missing = [f for f in FRAPPE_FILES if not (here / f).is_file()]
    if missing:
        pytest.skip(f"Frappe files {missing} not found in {here}")
    return frappe(seed=0)


@pytest.fixture(scope="module")
def frappe_raw(frappe_splits):
    return pd.read_csv(DATA / "frappe" / "raw" / "frappe.csv.gz", sep="\t", dtype=str, keep_default_na=False)


def test_frappe_counts(frappe_splits):
    train, valid, test, schema = frappe_splits
    assert (len(train), int(train.label.sum())) == (202_027, 67_604)
    assert (len(valid), int(valid.label.sum())) == (57_722, 19_063)
    assert (len(test), int(test.label.sum())) == (28_860, 9_536)
    assert set(train.label.unique()) == {0, 1}
    assert schema.names == ["user", "item", "daytime", "weekday", "isweekend", "homework", "cost", "weather",
                            "country", "city"]
    assert frappe_splits.meta["train_source"] == "rebuilt from raw log with seeded negatives"
    assert frappe_splits.meta["train_rows"] == 202_027 and frappe_splits.meta["groups"] == 32_744
    assert "DatasetSplits(name='frappe', train=202,027 rows" in repr(frappe_splits)


def test_frappe_values_are_raw_strings(frappe_splits, frappe_raw):
    train, valid, test, _ = frappe_splits
    for col in ["user", "item", "weekday", "country", "city"]:
        logged = set(frappe_raw[col])
        for frame in (train, valid, test):
            assert set(frame[col].astype(str)) <= logged, col
    assert valid.columns.tolist() == test.columns.tolist() == train.columns.tolist()
    # The test file's first line is "-1 204:1 4798:1 5041:1 ...": index 5041 is daytime 5039 + 2, the third
    # daytime of the log in order of first appearance (morning, afternoon, evening).
    assert test.loc[0, "daytime"] == "evening" and test.loc[0, "label"] == 0
    assert test.notna().all().all() and train.notna().all().all()


def test_frappe_positives_are_the_log_minus_valid_and_test(frappe_splits, frappe_raw):
    train, valid, test, schema = frappe_splits
    cols = schema.names
    logged = frappe_raw[cols].value_counts()
    used = pd.concat([f[f.label == 1][cols] for f in (train, valid, test)]).value_counts()
    # Every logged row is a positive exactly as often as it is logged, across the three splits.
    pd.testing.assert_series_equal(logged.sort_index(), used.reindex(logged.index).sort_index(),
                                   check_names=False)


def test_frappe_negatives_follow_the_recipe(frappe_splits, frappe_raw):
    train, valid, test, _ = frappe_splits
    used = set(zip(frappe_raw.user, frappe_raw.item))
    neg = train[train.label == 0]
    assert not any(pair in used for pair in zip(neg.user, neg.item))
    # Every training row's (user, context) is a logged one.
    key = ["user"] + CONTEXT
    logged_ctx = pd.MultiIndex.from_frame(frappe_raw[key])
    assert pd.MultiIndex.from_frame(train[key]).isin(logged_ctx).all()
    # Two negatives per logged row in all three splits together, for every (user, context) group.
    g = frappe_raw.groupby(key).size()
    negs = pd.concat([f[f.label == 0][key] for f in (train, valid, test)]).groupby(key).size()
    assert negs.reindex(g.index, fill_value=0).equals(2 * g)


def test_frappe_labels_and_seeds(frappe_splits):
    pm = frappe(seed=0, labels="pm1")
    assert set(pm.train.label.unique()) == {-1, 1}
    assert set(pm.valid.label.unique()) == {-1, 1} and set(pm.test.label.unique()) == {-1, 1}
    assert (pm.train.label > 0).sum() == 67_604
    # Same seed, same split (labels aside); another seed changes the training negatives only.
    base = frappe_splits.train
    pd.testing.assert_frame_equal(pm.train.drop(columns="label"), base.drop(columns="label"))
    other = frappe(seed=1)
    assert not other.train.equals(base)
    pd.testing.assert_frame_equal(other.valid, frappe_splits.valid)
    assert int(other.train.label.sum()) == 67_604 and len(other.train) == 202_027
    with pytest.raises(ValueError, match="labels"):
        frappe(labels="zero-one")


def test_frappe_values_match_across_splits(frappe_splits):
    train, valid, test, schema = frappe_splits
    # One value is one string everywhere, so an encoder fitted on train knows the valid/test values ...
    for f in schema.names:
        assert train[f].dtype == valid[f].dtype == test[f].dtype
        if f != "user":
            assert set(valid[f]) <= set(train[f]) and set(test[f]) <= set(train[f]), f
    # ... except three users whose every logged row (and so every negative) is in validation or test.
    unseen = (set(valid.user) | set(test.user)) - set(train.user)
    assert unseen == {"456", "542", "928"}
    assert train.user.nunique() == 954 and train["item"].nunique() == 4_082
    ids = FieldEncoder(schema).fit(train).transform(test).ids.numpy()
    assert (ids[:, 1:] > 2).all()  # no missing, unknown or rare value outside "user"
    assert (ids[:, 0] == 1).sum() == test.user.isin(unseen).sum() == 3


def _tiny_frappe(folder, valid_lines, test_lines):
    import gzip

    (folder / "frappe" / "raw").mkdir(parents=True)
    raw = ("user\titem\tcnt\tdaytime\tweekday\tisweekend\thomework\tcost\tweather\tcountry\tcity\n"
           "0\t0\t3\tmorning\tsunday\tweekend\tunknown\tfree\tsunny\tSpain\t0\n"
           "1\t1\t1\tevening\tmonday\tworkday\thome\tpaid\trainy\tIndia\t5\n")
    with gzip.open(folder / "frappe" / "raw" / "frappe.csv.gz", "wt") as fh:
        fh.write(raw)
    for name, lines in (("frappe.validation.libfm.gz", valid_lines), ("frappe.test.libfm.gz", test_lines)):
        with gzip.open(folder / "frappe" / name, "wb") as fh:
            fh.write("".join(line + "\r\n" for line in lines).encode())


# Two values per field, so field k has libFM indices 2k (first value seen) and 2k + 1.
ROW0 = "0:1 2:1 4:1 6:1 8:1 10:1 12:1 14:1 16:1 18:1"
ROW1_WITH_ITEM0 = "1:1 2:1 5:1 7:1 9:1 11:1 13:1 15:1 17:1 19:1"


def test_frappe_recipe_on_a_tiny_log(tmp_path):
    _tiny_frappe(tmp_path, ["1 " + ROW0], ["-1 " + ROW1_WITH_ITEM0])
    d = frappe(tmp_path, seed=0)
    assert d.valid.iloc[0].tolist() == ["0", "0", "morning", "sunday", "weekend", "unknown", "free", "sunny",
                                        "Spain", "0", 1]
    assert d.test.loc[0, "user"] == "1" and d.test.loc[0, "item"] == "0" and d.test.loc[0, "label"] == 0
    # Train: row 1 is the one positive left; row 0's group gets 2 negatives, row 1's group 2 - 1.
    train = d.train.sort_values(["user", "label"]).reset_index(drop=True)
    assert train[["user", "item", "label"]].values.tolist() == [["0", "1", 0], ["0", "1", 0], ["1", "0", 0],
                                                                ["1", "1", 1]]
    assert (train.loc[train.user == "1", "city"] == "5").all()
    # The same directory also works when given as the frappe folder itself.
    assert len(frappe(tmp_path / "frappe").train) == 4


def test_frappe_refuses_files_that_do_not_match(tmp_path):
    # A positive whose (user 0, item 1) is never logged: the files do not belong together.
    bad = ROW0.replace("2:1", "3:1", 1)
    _tiny_frappe(tmp_path, ["1 " + bad], ["-1 " + ROW1_WITH_ITEM0])
    with pytest.raises(ValueError, match="not rows of the raw log"):
        frappe(tmp_path)


def test_frappe_refuses_out_of_range_indices(tmp_path):
    _tiny_frappe(tmp_path, ["1 " + ROW0.replace("18:1", "25:1")], ["-1 " + ROW1_WITH_ITEM0])
    with pytest.raises(ValueError, match="outside the range of field 'city'"):
        frappe(tmp_path)


def test_sample_unused_is_uniform_over_unused_items():
    rng = np.random.default_rng(0)
    used_user = np.array([0, 0, 0, 1, 2, 2])
    used_item = np.array([1, 3, 4, 0, 0, 5])
    users = np.repeat([0, 1, 2], 30_000)
    items = _sample_unused(users, used_user, used_item, 6, rng)
    for u, allowed in ((0, {0, 2, 5}), (1, {1, 2, 3, 4, 5}), (2, {1, 2, 3, 4})):
        counts = pd.Series(items[users == u]).value_counts()
        assert set(counts.index) == allowed
        assert counts.min() / counts.max() > 0.95


# -- MovieLens ---------------------------------------------------------------------------------------------

def test_movielens100k():
    _need("movielens_100k", "u.data.gz")
    d = movielens100k(seed=0)
    train, valid, test, schema = d
    assert d.meta["all_rows"] == 72_855 and d.meta["all_positives"] == 55_375
    assert (len(train), len(valid), len(test)) == (58_285, 7_285, 7_285)
    assert sum(int(f.label.sum()) for f in (train, valid, test)) == 55_375
    assert schema.names == ["gender", "age", "occupation", "zip", "genres", "release_year", "timestamp"]
    assert schema["genres"].kind == "multi" and schema["genres"].max_tokens == 6
    assert schema["timestamp"].kind == "numeric"
    full = pd.concat([train, valid, test])
    assert full.genres.str.split("|").map(len).max() <= 6
    assert set(full.age) <= {"under 18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"}
    assert {"1950s", "1995"} <= set(full.release_year.dropna())
    assert full.release_year.isna().sum() > 0  # the movie without a release date
    assert full.zip.map(type).eq(str).all()
    # Seeded: same seed, same split.
    pd.testing.assert_frame_equal(movielens100k(seed=0).test, test)
    assert not movielens100k(seed=1).test.equals(test)
    FieldEncoder(schema).fit(train).transform(test)


# -- Criteo and Avazu --------------------------------------------------------------------------------------

def test_criteo_sample_and_chunking():
    _need("criteo_sample", "train.txt", "train.txt.gz", "train_examples.txt.gz")
    here = DATA / "criteo_sample"
    if not (here / "train_examples.txt.gz").is_file():
        pytest.skip(f"criteo sample train_examples.txt.gz not found in {here}")
    sample = here / "train_examples.txt.gz"
    one = criteo(path=sample, seed=0)
    small = criteo(path=sample, seed=0, chunksize=777)
    for a, b in zip(list(one)[:3], list(small)[:3]):
        pd.testing.assert_frame_equal(a, b)
    full = pd.concat([one.train, one.valid, one.test])
    assert len(full) == 10_000 and int(full.label.sum()) == 2_182
    assert (len(one.train), len(one.valid), len(one.test)) == (8_000, 1_000, 1_000)
    assert all(isinstance(full[f"C{i}"].dtype, pd.CategoricalDtype) for i in range(1, 27))
    assert all(full[f"I{i}"].dtype == np.float64 for i in range(1, 14))
    assert full.I1.isna().any() and full.C22.isna().any()  # missing cells stay missing
    schema = one.schema
    assert len(schema) == 39 and schema["I1"].treatment == "log" and schema["C1"].min_count == 2
    assert criteo(path=sample, nrows=500).meta["all_rows"] == 500


def test_avazu_sample():
    _need("avazu_sample", "tr.rx.csv.gz", "train.csv", "train.csv.gz", "train.gz")
    d = avazu(seed=0)
    full = pd.concat([d.train, d.valid, d.test])
    if d.meta["file"].endswith("tr.rx.csv.gz"):
        assert len(full) == 2_994 and int(full.click.sum()) == 522
    assert d.schema.label == "click" and len(d.schema) == 23
    assert "id" not in full.columns and "hour" not in full.columns
    assert set(full.hour_of_day.astype(str)) == {"00"} and set(full.weekday.astype(str)) == {"tuesday"}
    assert full.site_id.cat.categories.dtype != np.int64 and "1005" in set(full.C1.astype(str))
    small = avazu(seed=0, chunksize=500)
    pd.testing.assert_frame_equal(small.train, d.train)


# -- synthetic ---------------------------------------------------------------------------------------------

def test_synthetic_deterministic_and_shaped():
    a, b, c = synthetic(seed=3), synthetic(seed=3), synthetic(seed=4)
    pd.testing.assert_frame_equal(a.train, b.train)
    np.testing.assert_array_equal(a.meta["probability"]["test"], b.meta["probability"]["test"])
    assert not a.train.equals(c.train)
    assert (len(a.train), len(a.valid), len(a.test)) == (40_000, 5_000, 5_000)
    assert a.schema.names == [f"f{i}" for i in range(10)]
    assert set(a.train.f0) <= {f"v{i}" for i in range(10)}
    assert a.meta["pairs"] == (("f0", "f1"), ("f2", "f3"), ("f4", "f5"))
    assert a.meta["triples"] == (("f6", "f7", "f8"),) and a.meta["noise_fields"] == ("f9",)
    for split, frame in a.splits.items():
        assert len(a.meta["probability"][split]) == len(frame)
        assert 0.25 <= frame.label.mean() <= 0.6


def test_synthetic_planted_structure():
    d = synthetic(n_samples=50_000, seed=0)
    assert all(0.8 <= v <= 0.92 for v in d.meta["bayes_auc"].values()), d.meta["bayes_auc"]
    full = pd.concat([d.train, d.valid, d.test], ignore_index=True)
    p = np.concatenate([d.meta["probability"][k] for k in ("train", "valid", "test")])
    # The true probability is a function of the signal fields only: f9 never changes it.
    per_cell = pd.Series(p).groupby([full[f"f{i}"] for i in range(9)]).nunique()
    assert per_cell.max() == 1
    # And f9 is independent of the label (chi-square, 9 degrees of freedom; 99.9% quantile 27.9).
    table = pd.crosstab(full.f9, full.label).to_numpy().astype(float)
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    assert ((table - expected) ** 2 / expected).sum() < 27.9
    # A planted pair is strongly dependent on the label, jointly.
    table = pd.crosstab([full.f0, full.f1], full.label).to_numpy().astype(float)
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    assert ((table - expected) ** 2 / expected).sum() > 1_000
    # The three-way term has no pairwise marginal: averaged over f2, the probability does not depend on
    # (f0, f1).
    t = synthetic(n_samples=50_000, seed=1, pairs=(), triple=(0, 1, 2))
    pt = t.meta["probability"]["train"]
    assert pt.std() > 0.1
    pair_means = pd.Series(pt).groupby([t.train.f0, t.train.f1]).mean()
    assert pair_means.std() < 0.02


def test_synthetic_is_fast():
    import time

    start = time.perf_counter()
    synthetic(n_samples=50_000)
    assert time.perf_counter() - start < 1.0


# -- the registry, splits and errors -------------------------------------------------------------------------

def test_split_helper():
    frame = pd.DataFrame({"a": range(1_000)})
    train, valid, test = random_split(frame, seed=0)
    assert (len(train), len(valid), len(test)) == (800, 100, 100)
    assert sorted(pd.concat([train, valid, test]).a) == list(range(1_000))
    assert list(train.index) == list(range(800))
    idx = split_indices(1_000, seed=0)
    assert all(np.array_equal(x, y) for x, y in zip(idx, split_indices(1_000, seed=0)))
    with pytest.raises(ValueError):
        split_indices(10, (0.5, 0.5, 0.5))


def test_registry_and_unknown_name():
    assert set(DATASETS) == {"frappe", "movielens100k", "criteo", "avazu", "synthetic"}
    with pytest.raises(ValueError, match="frappe.*movielens100k.*synthetic"):
        load_dataset("imagenet")
    d = load_dataset("synthetic", data_dir="/nowhere", n_samples=1_000)
    assert isinstance(d, DatasetSplits)
    train, valid, test, schema = d
    assert len(train) + len(valid) + len(test) == 1_000


@pytest.mark.parametrize("name, expected", [("frappe", "frappe.validation.libfm.gz"),
                                            ("movielens100k", "u.data.gz"), ("criteo", "train_examples.txt.gz"),
                                            ("avazu", "tr.rx.csv.gz"), ("movielens", "u.item")])
def test_missing_files_error(tmp_path, name, expected):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset(name, data_dir=tmp_path)
    msg = str(info.value)
    assert expected in msg and str(tmp_path) in msg and "data_dir" in msg and "--data-dir" in msg
    assert isinstance(info.value, FileNotFoundError)


def test_resolve_data_dir(tmp_path, monkeypatch):
    assert resolve_data_dir(tmp_path) == tmp_path
    monkeypatch.setenv("FGRAPH_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv("FGRAPH_DATA_DIR")
    assert resolve_data_dir().name == "datasets"


def test_dataset_status(tmp_path):
    rows = {r["name"]: r for r in dataset_status(tmp_path)}
    assert set(rows) == set(DATASETS)
    assert rows["synthetic"]["found"] and rows["synthetic"]["location"] == "generated"
    assert not rows["frappe"]["found"] and str(tmp_path) in rows["frappe"]["location"]
    assert all(r["description"] for r in rows.values())
    here = {r["name"]: r for r in dataset_status()}
    if (DATA / "frappe" / "raw" / "frappe.csv.gz").is_file():
        assert here["frappe"]["found"]


def test_builder_accepts_its_own_folder():
    here = _need("movielens_100k", "u.data.gz")
    d = movielens100k(here)
    assert d.meta["all_rows"] == 72_855
