"""A user's own files: reading CSV and Parquet, schema inference, schema files, splits and their errors."""
import gzip
import hashlib
import io
import warnings

import numpy as np
import pandas as pd
import pytest

from fgraph.data import (FieldEncoder, Schema, SchemaInferenceWarning, SchemaSpec, categorical, describe_schema,
                         file_splits, infer_schema, infer_schema_report, load_schema, multi_valued, numeric,
                         read_file, save_schema)
from fgraph.data.datasets._common import _FieldCounter
from fgraph.data.files import MAX_INTEGER_CATEGORIES, sniff_separator
from fgraph.errors import (ColumnNotFoundError, ConfigError, DataError, FgraphError, InputFileError,
                           InputFileNotFoundError)


def table(n=300, seed=0):
    """Columns of every kind, with known types: user (text, 25 values), genres ('|'-lists of 1-3 tags),
    age (integers, many values), weekday (integers, 7 values), price (floats, one missing), zip (codes
    with leading zeros), flag (bools), click (0/1 label)."""
    rng = np.random.default_rng(seed)
    tags = np.array(list("abcdef"))
    frame = pd.DataFrame({
        "user": [f"u{i}" for i in rng.integers(0, 25, n)],
        "genres": ["|".join(rng.choice(tags, size=k, replace=False)) for k in rng.integers(1, 4, n)],
        "age": rng.integers(18, 90, n),
        "weekday": rng.integers(0, 7, n),
        "price": rng.normal(10, 3, n).round(3),
        "zip": [f"{z:05d}" for z in rng.integers(0, 50, n)],
        "flag": rng.random(n) < 0.5,
        "click": rng.integers(0, 2, n),
    })
    frame.loc[7, "price"] = np.nan
    return frame


EXPECTED_KINDS = {"user": "categorical", "genres": "multi", "age": "numeric", "weekday": "categorical",
                  "price": "numeric", "zip": "categorical", "flag": "categorical"}


def write(frame, path, fmt):
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    elif fmt == "csv.gz":
        with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
            frame.to_csv(fh, index=False)
    else:
        frame.to_csv(path, index=False, sep={"csv": ",", "tsv": "\t", "semicolon.csv": ";"}[fmt])
    return path


def as_text(col):
    """A column's values as the strings a reader should give back (missing as None)."""
    return [None if pd.isna(v) else str(v) for v in col.astype(object)]


# -- reading ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "tsv", "semicolon.csv", "parquet"])
def test_round_trip_keeps_every_value_and_infers_each_kind(tmp_path, fmt):
    frame = table()
    path = write(frame, tmp_path / f"data.{fmt}", fmt)
    back = read_file(path)
    assert list(back.columns) == list(frame.columns)
    for col in ("user", "genres", "zip"):
        assert as_text(back[col]) == as_text(frame[col]), col     # leading zeros of zip kept
    for col in ("age", "weekday", "click"):
        assert pd.api.types.is_integer_dtype(back[col].dtype), col
        assert back[col].tolist() == frame[col].tolist()
    np.testing.assert_allclose(back["price"].to_numpy(dtype=float), frame["price"].to_numpy(), equal_nan=True)
    assert [str(v) for v in back["flag"].astype(object)] == [str(v) for v in frame["flag"]]

    schema = infer_schema(back, "click")
    assert {f.name: f.kind for f in schema.fields} == EXPECTED_KINDS
    assert schema.label == "click" and "click" not in schema.names
    assert schema["genres"].sep == "|" and schema["genres"].max_tokens == 3
    assert schema["price"].treatment == "scale"
    # The encoder takes the frame as read, and gives every value of a categorical column its own id.
    data = FieldEncoder(schema).fit(back).transform(back)
    assert len(data) == len(frame)
    users = data.ids[:, schema.names.index("user")]
    assert len(set(users.tolist())) == frame["user"].nunique()


def test_csv_and_parquet_of_one_frame_give_the_same_schema_and_ids(tmp_path):
    frame = table()
    csv_frame = read_file(write(frame, tmp_path / "a.csv", "csv"))
    pq_frame = read_file(write(frame, tmp_path / "a.parquet", "parquet"))
    s_csv, s_pq = infer_schema(csv_frame, "click"), infer_schema(pq_frame, "click")
    assert s_csv == s_pq
    enc = FieldEncoder(s_csv).fit(csv_frame)
    assert enc.fingerprint() == FieldEncoder(s_pq).fit(pq_frame).fingerprint()
    assert bool((enc.transform(csv_frame).ids == enc.transform(pq_frame).ids).all())


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_chunked_reading_equals_a_one_shot_read(tmp_path, fmt):
    frame = table(n=103)
    # Types that one chunk alone would guess otherwise: numbers until row 90, then text; a column missing
    # only in the last rows; one whose first rows are all missing.
    frame["late_text"] = [str(i) for i in range(100)] + ["x", "y", "z"]
    frame["late_gap"] = pd.array(list(range(100)) + [None] * 3, dtype="Int64")
    frame["early_gap"] = [None] * 10 + [f"v{i % 4}" for i in range(93)]
    path = tmp_path / f"t.{fmt}"
    if fmt == "parquet":
        frame.to_parquet(path, index=False, row_group_size=7)
    else:
        frame.to_csv(path, index=False)
    one_shot = read_file(path, chunksize=10 ** 6)
    for chunksize in (1, 5, 64):
        pd.testing.assert_frame_equal(read_file(path, chunksize=chunksize), one_shot)
    assert as_text(one_shot["late_text"]) == as_text(frame["late_text"])
    assert one_shot["late_gap"].isna().sum() == 3 and str(one_shot["late_gap"].dtype) == "Int64"


def test_read_file_selects_columns_in_the_order_asked(tmp_path):
    path = write(table(n=20), tmp_path / "t.csv", "csv")
    back = read_file(path, columns=["price", "user"])
    assert list(back.columns) == ["price", "user"]
    with pytest.raises(ColumnNotFoundError, match=r"t\.csv has no column\(s\) \['nope'\]; its columns are"):
        read_file(path, columns=["user", "nope"])


def test_quoted_fields_may_hold_separators_quotes_and_newlines(tmp_path):
    frame = pd.DataFrame({"name": ["a,b", 'say "hi"', "two\nlines", "plain"], "y": [0, 1, 0, 1]})
    path = tmp_path / "q.csv"
    frame.to_csv(path, index=False)
    back = read_file(path)
    assert back["name"].astype(str).tolist() == frame["name"].tolist()
    assert back["y"].tolist() == [0, 1, 0, 1]


def test_quote_aware_field_count_holds_across_read_boundaries(tmp_path):
    """The counter sees the file in blocks; a quoted separator or newline split across two blocks must still
    be inside its quotes. Read through buffers of every small size."""
    text = 'a,b,c\n1,"x,\ny",3\n\n4,"p""q,r",6\n7,8,9\n'
    raw = text.encode()
    for size in range(1, 12):
        counter = _FieldCounter(io.BytesIO(raw), tmp_path / "t.csv", ",", quotechar='"')
        buf = bytearray(size)
        while counter.readinto(buf):
            pass
        assert counter.expected == 3
    bad = 'a,b,c\n1,"x,\ny",3\n4,5\n'.encode()
    for size in (1, 3, 7, 64):
        counter = _FieldCounter(io.BytesIO(bad), tmp_path / "t.csv", ",", quotechar='"')
        buf = bytearray(size)
        with pytest.raises(InputFileError, match="line 4 has 2 field"):
            while counter.readinto(buf):
                pass


def test_numbers_become_numeric_but_codes_and_markers_stay_text(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("n,code,country,big,mixed\n1,007,NA,99999999999999999999,1\nNA,012,FR,2,x\n3,100,NA,3,2\n")
    back = read_file(path)
    assert str(back["n"].dtype) == "Int64" and back["n"].isna().tolist() == [False, True, False]
    assert as_text(back["code"]) == ["007", "012", "100"]          # leading zeros: a code
    assert as_text(back["country"]) == ["NA", "FR", "NA"]          # "NA" is text in a text column
    assert as_text(back["big"])[0] == "99999999999999999999"       # beyond int64: kept exactly, as text
    assert as_text(back["mixed"]) == ["1", "x", "2"]
    kept = read_file(path, text=["n"])
    assert as_text(kept["n"]) == ["1", "NA", "3"]


def test_separator_sniffing(tmp_path):
    assert sniff_separator(tmp_path / "x.csv", "a;b;c\n1;x,y;2\n3;z;4\n") == ";"
    assert sniff_separator(tmp_path / "x.csv", "a,b,c\n1,x;y,2\n3,z,4\n") == ","
    assert sniff_separator(tmp_path / "x.csv", "a\tb\n1\t2\n") == "\t"
    assert sniff_separator(tmp_path / "x.csv", "a\n1\n") == ","
    assert sniff_separator(tmp_path / "x.tsv", "a,b\n1,2\n") == "\t"
    with pytest.raises(InputFileError, match=r"cannot tell its separator.*pass the separator \(sep="):
        sniff_separator(tmp_path / "x.csv", "a,b;c\n1,2;3\n")


BAD_CSV = [
    ("empty.csv", b"", r"empty\.csv: the file is empty \(0 bytes\)"),
    ("header_only.csv", b"a,b,c\n", r"header_only\.csv: the file holds no data rows"),
    ("no_header.csv", b"1,2,3\n4,5,6\n", r"no_header\.csv: the first line .* holds only numbers.*add a first line"),
    ("dup.csv", b"a,b,a\n1,2,3\n", r"dup\.csv: the header names the column\(s\) \['a'\] more than once"),
    ("blank_name.csv", b"a,,c\n1,2,3\n", r"blank_name\.csv: column\(s\) \[2\] of the header line have no name"),
    ("cut.csv", b"a,b,c\n1,2,3\n4,5", r"cut\.csv: line 3 has 2 field\(s\).*expected 3"),
    ("unclosed.csv", b'a,b,c\n1,"2,3\n', r"unclosed\.csv: the quoted field of the record starting on line 2 is never "
                                          r"closed"),
    ("latin1.csv", b"a,b\n1,2\n3,caf\xe9\n", r"latin1\.csv: not utf-8 text: line 3 holds the byte\(s\) b'\\xe9'"),
    ("bad.csv.gz", b"\x1f\x8b\x08\x00garbage", r"bad\.csv\.gz: the compressed file is corrupt or truncated"),
    ("sheet.xlsx", b"PK", r"sheet\.xlsx: unknown file type '\.xlsx'; fgraph reads delimited text \(\.csv, \.tsv, "
                          r"\.txt.*Parquet \(\.parquet, \.pq\)"),
    ("not.parquet", b"a,b\n1,2\n", r"not\.parquet: not a readable Parquet file"),
    ("zero.parquet", b"", r"zero\.parquet: the file is empty \(0 bytes\)"),
]


@pytest.mark.parametrize("name,content,message", BAD_CSV, ids=[b[0] for b in BAD_CSV])
def test_bad_files_raise_a_clear_error_naming_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputFileError, match=message):
        read_file(path)


def test_bad_parquet_files(tmp_path):
    good = tmp_path / "good.parquet"
    pd.DataFrame({"a": range(100), "b": ["x"] * 100}).to_parquet(good)
    data = good.read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFileError, match=r"cut\.parquet: not a readable Parquet file"):
        read_file(tmp_path / "cut.parquet")
    pd.DataFrame({"a": pd.Series([], dtype=int)}).to_parquet(tmp_path / "rows0.parquet")
    with pytest.raises(InputFileError, match=r"rows0\.parquet: the file holds no data rows"):
        read_file(tmp_path / "rows0.parquet")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table([pa.array([1]), pa.array([2])], names=["a", "a"]), tmp_path / "dup.parquet")
    with pytest.raises(InputFileError, match=r"dup\.parquet: the file names the column\(s\) \['a'\] more than once"):
        read_file(tmp_path / "dup.parquet")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputFileNotFoundError, match=r"nope\.csv: no such file"):
        read_file(tmp_path / "nope.csv")
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(InputFileError, match=r"d\.csv is a directory"):
        read_file(tmp_path / "d.csv")


# -- inference -------------------------------------------------------------------------------------------------

def infer(frame, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SchemaInferenceWarning)
        return infer_schema_report(frame.assign(y=np.arange(len(frame)) % 2), "y", **kw)


def test_integer_columns_follow_the_stated_threshold():
    n = 200
    at = np.arange(n) % MAX_INTEGER_CATEGORIES             # exactly the threshold: categorical
    over = np.arange(n) % (MAX_INTEGER_CATEGORIES + 1)     # one more: numeric
    whole = (np.arange(n) % 5).astype(float)                # floats that are whole numbers follow the same rule
    whole[3] = np.nan
    report = infer(pd.DataFrame({"at": at, "over": over, "whole": whole, "real": np.linspace(0, 1, n)}))
    kinds = {f.name: f.kind for f in report.schema.fields}
    assert kinds == {"at": "categorical", "over": "numeric", "whole": "categorical", "real": "numeric"}
    assert str(MAX_INTEGER_CATEGORIES) in report.reasons["at"]
    assert infer(pd.DataFrame({"at": at}), max_categories=5).schema["at"].kind == "numeric"


def test_multi_valued_detection():
    n = 100
    rng = np.random.default_rng(1)
    tags = list("abcdefgh")
    lists = lambda sep, k_max: [sep.join(rng.choice(tags, size=k, replace=False))  # noqa: E731
                                for k in rng.integers(2, k_max + 1, n)]
    minority = ["a|b" if i < 30 else tags[i % 8] for i in range(n)]     # 30% of the cells split: not a list
    free_text = [f"Street {i}, Town {i}" for i in range(n)]             # splits, but its tokens never repeat
    report = infer(pd.DataFrame({
        "pipes": lists("|", 4), "semis": lists(";", 3), "commas": lists(",", 5), "long": lists("|", 8),
        "minority": minority, "single": [tags[i % 8] for i in range(n)], "free_text": free_text,
        "lists": [list(rng.choice(tags, size=2, replace=False)) for _ in range(n)],
    }), max_tokens=6)
    s = report.schema
    assert (s["pipes"].kind, s["pipes"].sep, s["pipes"].max_tokens) == ("multi", "|", 4)
    assert (s["semis"].kind, s["semis"].sep, s["semis"].max_tokens) == ("multi", ";", 3)
    assert (s["commas"].kind, s["commas"].sep, s["commas"].max_tokens) == ("multi", ",", 5)
    assert (s["long"].kind, s["long"].max_tokens) == ("multi", 6)        # 8 seen, capped at 6
    assert s["minority"].kind == "categorical" and s["single"].kind == "categorical"
    assert s["lists"].kind == "multi" and s["lists"].max_tokens == 2
    assert "free_text" not in s.names and "identifier" in report.dropped["free_text"]


def test_left_out_columns_warn_and_say_why():
    n = 50
    frame = pd.DataFrame({"id": [f"row{i}" for i in range(n)], "empty": [np.nan] * n,
                          "when": pd.date_range("2024-01-01", periods=n), "x": np.arange(n) % 3,
                          "y": np.arange(n) % 2})
    with pytest.warns(SchemaInferenceWarning) as caught:
        schema = infer_schema(frame, "y")
    assert schema.names == ["x"]
    text = " ".join(str(w.message) for w in caught)
    assert "'id'" in text and "distinct" in text and "'empty'" in text and "empty" in text and "'when'" in text
    # Few values, all distinct: too few to call an identifier.
    with pytest.warns(SchemaInferenceWarning):        # the empty and the date column
        assert infer_schema(frame.iloc[:10], "y").names == ["id", "x"]


def test_no_column_left_and_label_missing():
    with pytest.raises(ConfigError, match="no column is left to learn from"):
        infer_schema(pd.DataFrame({"e": [None] * 3, "y": [0, 1, 0]}), "y")
    with pytest.raises(ColumnNotFoundError, match=r"label column 'click' is not in the frame"):
        infer_schema(pd.DataFrame({"a": [1]}), "click")


def test_inference_looks_at_the_first_sample_rows_only():
    frame = pd.DataFrame({"a": list(np.arange(50) % 3) + list(range(100, 150)), "y": [0, 1] * 50})
    assert infer_schema(frame, "y", sample_rows=50)["a"].kind == "categorical"
    assert infer_schema(frame, "y")["a"].kind == "numeric"
    report = infer_schema_report(frame, "y", sample_rows=50, source="t.csv")
    assert report.sample_rows == 50 and "first 50 rows of t.csv" in report.describe()


def test_describe_schema_has_one_line_per_field_and_states_each_treatment():
    schema = Schema((categorical("user"), numeric("age"), numeric("price", "bucket", buckets=(10, 100)),
                     numeric("count", "log"), multi_valued("tags", max_tokens=4, sep=";")), label="click")
    lines = describe_schema(schema).splitlines()
    assert len(lines) == len(schema) + 1 and lines[-1].strip() == "label: click"
    by_name = {ln.split()[0]: ln for ln in lines[:-1]}
    assert set(by_name) == set(schema.names)
    assert "categorical" in by_name["user"]
    assert "(x - mean) / std" in by_name["age"] and "missing -> its own vector" in by_name["age"]
    assert "10/100 buckets" in by_name["price"] and "missing -> its own id" in by_name["price"]
    assert "ln(x)" in by_name["count"]
    assert "split on ';'" in by_name["tags"] and "first 4" in by_name["tags"]


# -- schema files ----------------------------------------------------------------------------------------------

def test_save_and_load_schema_round_trip(tmp_path):
    schema = Schema((categorical("user", min_count=3), numeric("age", "bucket", buckets=(5, 50)),
                     numeric("price"), multi_valued("tags", max_tokens=4, sep=";")), label="click")
    path = save_schema(schema, tmp_path / "schema.yaml")
    spec = load_schema(path)
    assert spec.others == "drop" and spec.to_schema() == schema
    # As a schema for a frame: exactly the saved schema, whatever other columns the frame has.
    frame = pd.DataFrame({"user": ["a"], "age": [1], "price": [1.0], "tags": ["x;y"], "extra": [1], "click": [1]})
    assert infer_schema_report(frame, None, spec=spec).schema == schema


def test_partial_schema_overrides_listed_columns_and_infers_the_rest(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("fields:\n  age: {kind: numeric, treatment: bucket, buckets: [4]}\n  weekday: numeric\n"
                    "drop: [zip]\n")
    frame = table()
    report = infer_schema_report(frame, "click", spec=load_schema(path))
    s = report.schema
    assert s["age"].treatment == "bucket" and s["age"].buckets == (4,)
    assert s["weekday"].kind == "numeric"                  # inference alone says categorical
    assert "zip" not in s.names and "drop" in report.dropped["zip"]
    assert s["genres"].kind == "multi" and s["user"].kind == "categorical"       # still inferred
    assert s.names == [c for c in frame.columns if c not in ("zip", "click")]   # the file's order


SCHEMA_ERRORS = [
    ("fields: [{name: a, kind: numric}]\n", ConfigError, r"field 'a' has kind 'numric'; choose one of"),
    ("fields: [{name: a, colour: red}]\n", ConfigError, r"field 'a' has unknown key\(s\) \['colour'\]"),
    ("felds: []\n", ConfigError, r"unknown key\(s\) \['felds'\]; a schema has \['label', 'fields', 'drop', 'others'\]"),
    ("fields:\n  - {name: a\n", InputFileError, r"is not valid YAML at line \d+, column \d+"),
    ("label: y\nlabel: z\n", InputFileError, r"not valid YAML at line 2, column 1: key 'label' is given twice"),
    ("fields: [{name: a, kind: categorical, treatment: log}]\n", ConfigError, "only numeric fields take"),
    ("fields: [{name: a, kind: multi, max_tokens: 2.5}]\n", ConfigError, "max_tokens"),
    ("fields: [a]\ndrop: [a]\n", ConfigError, r"both listed as fields and under 'drop'"),
    ("others: maybe\n", ConfigError, r"'others' must be one of \['infer', 'drop'\]"),
    ("", ConfigError, "is empty"),
]


@pytest.mark.parametrize("text,error,message", SCHEMA_ERRORS)
def test_bad_schema_files(tmp_path, text, error, message):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(error, match=message) as info:
        load_schema(path)
    assert "s.yaml" in str(info.value)


def test_schema_file_missing_and_columns_it_names_that_the_data_lacks(tmp_path):
    with pytest.raises(InputFileNotFoundError, match="does not exist"):
        load_schema(tmp_path / "none.yaml")
    spec = SchemaSpec.from_dict({"fields": [{"name": "agee", "kind": "numeric"}]}, source="s.yaml")
    with pytest.raises(ColumnNotFoundError, match=r"s\.yaml lists field\(s\) \['agee'\], which t\.csv does not have"):
        infer_schema_report(table(n=10), "click", spec=spec, source="t.csv")
    with pytest.raises(ConfigError, match="the label is given twice"):
        infer_schema_report(table(n=10), "click", spec=SchemaSpec(label="flag"))


# -- splits ----------------------------------------------------------------------------------------------------

def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_random_split_is_seeded_complete_and_described(tmp_path):
    frame = table(n=500).assign(row=lambda f: [f"r{i}" for i in range(len(f))])
    path = write(frame, tmp_path / "train.csv", "csv")
    before = digest(path)
    a = file_splits(path, label="click", seed=3)
    b = file_splits(path, label="click", seed=3)
    c = file_splits(path, label="click", seed=4)
    assert digest(path) == before                          # the user's file is only read
    for name in ("train", "valid", "test"):
        pd.testing.assert_frame_equal(a.splits[name], b.splits[name])
    assert not a.test.equals(c.test)
    assert (len(a.train), len(a.valid), len(a.test)) == (400, 50, 50)
    # Every row once, across the three parts (rows told apart by five of their columns together).
    key = lambda f: f[["user", "age", "price", "weekday", "zip"]].apply(  # noqa: E731
        lambda r: "/".join(map(str, r)), axis=1)
    together = pd.concat([key(a.train), key(a.valid), key(a.test)])
    assert sorted(together) == sorted(key(frame))
    text = a.describe()
    assert "split train.csv 80/10/10 (train/valid/test) with seed 3" in text
    assert "row: not used (an identifier" in text          # the identifier column, with why
    assert a.meta["split"]["fractions"] == [0.8, 0.1, 0.1] and a.meta["split"]["seed"] == 3
    d = file_splits(path, label="click", fractions=(0.5, 0.25, 0.25))
    assert (len(d.train), len(d.valid), len(d.test)) == (250, 125, 125)


def test_valid_and_test_files_are_used_and_checked(tmp_path):
    frame = table(n=400)
    train = write(frame.iloc[:300], tmp_path / "train.csv", "csv")
    valid = write(frame.iloc[300:350], tmp_path / "valid.parquet", "parquet")
    test = write(frame.iloc[350:].drop(columns=["flag"]), tmp_path / "test.csv", "csv")
    s = file_splits(train, valid, label="click", schema={"drop": ["flag"]})
    assert len(s.valid) == 50 and len(s.train) + len(s.test) == 300
    assert s.split.startswith("no test file given (valid from its file): split train.csv 90/10 (train/test)")
    with pytest.raises(ColumnNotFoundError, match=r"test\.csv \(test file\) has no column\(s\) \['flag'\], which the "
                                                  r"schema of train\.csv needs"):
        file_splits(train, valid, test, label="click")
    s = file_splits(train, valid, test, label="click", schema={"drop": ["flag"]})
    assert s.split is None and (len(s.train), len(s.valid), len(s.test)) == (300, 50, 50)
    # Codes with leading zeros in the training file stay codes in the others, so their ids agree.
    enc = FieldEncoder(s.schema).fit(s.train)
    assert bool((enc.transform(s.test).ids[:, s.schema.names.index("zip")] > 2).all())
    no_label = write(frame.iloc[350:].drop(columns=["click"]), tmp_path / "nolabel.csv", "csv")
    with pytest.raises(ColumnNotFoundError, match=r"nolabel\.csv \(test file\) has no label column \['click'\]"):
        file_splits(train, valid, no_label, label="click")


@pytest.mark.parametrize("values,positive,fmt,expect", [
    (["yes", "no"], None, "csv", "yes"), (["True", "False"], None, "csv", "True"), (["dog", "cat"], None, "csv", "dog"),
    (["dog", "cat"], "cat", "csv", "cat"), ([True, False], None, "parquet", True), ([2, 1], 2, "csv", 2.0)])
def test_binary_labels_are_mapped_and_the_positive_named(tmp_path, values, positive, fmt, expect):
    n = 60
    frame = pd.DataFrame({"a": [f"v{i % 4}" for i in range(n)], "y": [values[int(i % 3 != 0)] for i in range(n)]})
    path = write(frame, tmp_path / f"t.{fmt}", fmt)
    s = file_splits(path, label="y", positive=positive)
    assert s.label_encoding.positive == expect
    assert f"{expect!r} -> 1 (positive)" in s.describe()
    whole = pd.concat([s.train, s.valid, s.test])
    assert set(whole["y"]) == {0.0, 1.0}
    # The rows labelled 1 are exactly those whose label was the positive value.
    original = values[0] if values[0] == expect else values[1]
    assert int(whole["y"].sum()) == int((frame["y"] == original).sum())


LABEL_ERRORS = [
    ([0.5, 1.5, 2.5, 3.5], {}, DataError, r"holds 4 distinct values .*task='regression'"),
    (["a", "b", "c"], {}, DataError, r"holds 3 distinct values .*needs two"),
    ([1, 2], {}, DataError, r"holds the numbers 1 and 2; a binary task needs 0/1: pass positive="),
    (["a"], {}, DataError, r"holds a single value \('a'\)"),
    (["a", "b"], {"task": "regression"}, DataError, r"a regression task needs numbers"),
    (["a", "b"], {"positive": "c"}, ConfigError, r"option 'positive' is 'c'"),
]


@pytest.mark.parametrize("values,options,error,message", LABEL_ERRORS)
def test_labels_that_do_not_fit_the_task(tmp_path, values, options, error, message):
    frame = pd.DataFrame({"a": [f"v{i % 3}" for i in range(40)], "y": [values[i % len(values)] for i in range(40)]})
    path = write(frame, tmp_path / "t.csv", "csv")
    with pytest.raises(error, match=message) as info:
        file_splits(path, label="y", **options)
    assert "t.csv" in str(info.value) or error is ConfigError


def test_regression_labels_and_label_errors_naming_file_and_line(tmp_path):
    frame = pd.DataFrame({"a": [f"v{i % 3}" for i in range(40)], "y": np.linspace(-1, 1, 40)})
    path = write(frame, tmp_path / "t.csv", "csv")
    s = file_splits(path, label="y", task="regression")
    np.testing.assert_allclose(np.sort(pd.concat([s.train, s.valid, s.test])["y"]), frame["y"])
    gap = tmp_path / "gap.csv"
    gap.write_text("a,y\nx,1\ny,\nz,0\n")
    with pytest.raises(DataError, match=r"label column 'y' of .*gap\.csv is missing at data row 2 \(line 3\)"):
        file_splits(gap, label="y")
    train = write(pd.DataFrame({"a": list("xyzxyzxyzx"), "y": ["no", "yes"] * 5}), tmp_path / "tr.csv", "csv")
    other = tmp_path / "va.csv"
    other.write_text("a,y\nx,yes\ny,maybe\n")
    with pytest.raises(DataError, match=r"va\.csv holds 'maybe' at data row 2 \(line 3\), which the training file's "
                                        r"labels \('no', 'yes'\) do not have"):
        file_splits(train, other, other, label="y")


def test_numeric_field_that_another_file_holds_as_text(tmp_path):
    train = write(pd.DataFrame({"x": np.linspace(0, 1, 30), "y": [0, 1] * 15}), tmp_path / "tr.csv", "csv")
    valid = tmp_path / "va.csv"
    valid.write_text("x,y\n0.5,1\nabc,0\n")
    with pytest.raises(DataError, match=r"column 'x' of .*va\.csv holds 'abc' at data row 2 \(line 3\), but it is a "
                                        r"numeric field"):
        file_splits(train, valid, valid, label="y")


def test_too_few_rows_to_split_and_bad_options(tmp_path):
    path = write(pd.DataFrame({"a": list("xyzxy"), "y": [0, 1, 0, 1, 0]}), tmp_path / "t.csv", "csv")
    with pytest.raises(DataError, match=r"has 5 rows: too few to cut a valid split of 10% from it"):
        file_splits(path, label="y")
    with pytest.raises(ConfigError, match="fractions"):
        file_splits(path, label="y", fractions=(0.5, 0.5, 0.5))
    with pytest.raises(ConfigError, match="task"):
        file_splits(path, label="y", task="multiclass")
    with pytest.raises(ConfigError, match="no label column"):
        file_splits(path)


def test_every_error_is_in_the_fgraph_family(tmp_path):
    """What the user gives wrong never surfaces as a raw pandas, pyarrow or csv error."""
    bad = [b"", b"a,b\n1", b'"a', b"\xff\xfe", b"a,b\n1,2,3,4\n", b"PAR1garbagePAR1"]
    for k, content in enumerate(bad):
        for suffix in (".csv", ".parquet"):
            path = tmp_path / f"f{k}{suffix}"
            path.write_bytes(content)
            with pytest.raises(FgraphError):
                file_splits(path, label="b")
