"""FieldEncoder behaviour, checked against hand-made frames and reference computations."""
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import StandardScaler

from fgraph.data import EncodedData, FieldEncoder, Schema, categorical, multi_valued, numeric
from fgraph.data.space import MISSING, NUM_RESERVED, PAD, RARE, UNKNOWN


def cat_schema(*names, label="y", **kw):
    return Schema(tuple(categorical(n, **kw) for n in names), label=label)


def fit_one(field, values, **enc_kw):
    """Fit an encoder with the single field ``field`` on the column ``values``."""
    enc = FieldEncoder(Schema((field,), label="y"), **enc_kw)
    return enc.fit(pd.DataFrame({field.name: values}))


def encode(enc, name, values):
    return enc.transform(pd.DataFrame({name: values}))


def ids_of(enc, name, values, node=0):
    return encode(enc, name, values).ids[:, node].tolist()


def id_map(enc, node):
    """{value: id} as the encoder stores it (known values from id 3 on)."""
    return {v: i + NUM_RESERVED for i, v in enumerate(enc.vocabularies_[node])}


# ----------------------------------------------------------------------------------------------------------
# scikit-learn conventions
# ----------------------------------------------------------------------------------------------------------

def test_fit_returns_self_and_params_are_kept_verbatim():
    schema = cat_schema("a")
    enc = FieldEncoder(schema, min_count=2, handle_unknown="rare")
    assert enc.get_params() == {"schema": schema, "min_count": 2, "handle_unknown": "rare"}
    # Nothing is learned (no trailing-underscore attribute) before fit.
    assert not [k for k in vars(enc) if k.endswith("_") and not k.startswith("_")]
    out = enc.fit(pd.DataFrame({"a": ["x", "x", "y"]}))
    assert out is enc
    learned = {k for k in vars(enc) if k.endswith("_") and not k.startswith("_")}
    assert {"space_", "vocabularies_", "rare_values_", "scalers_", "bucket_ranges_"} <= learned
    # fit did not touch the parameters.
    assert enc.get_params() == {"schema": schema, "min_count": 2, "handle_unknown": "rare"}


def test_transform_before_fit_raises_not_fitted():
    enc = FieldEncoder(cat_schema("a"))
    with pytest.raises(NotFittedError):
        enc.transform(pd.DataFrame({"a": ["x"]}))


def test_clone_gives_an_unfitted_copy_with_the_same_params():
    enc = FieldEncoder(cat_schema("a"), min_count=3, handle_unknown="rare").fit(pd.DataFrame({"a": list("xxxy")}))
    twin = clone(enc)
    assert twin is not enc
    assert twin.get_params() == enc.get_params()
    with pytest.raises(NotFittedError):
        twin.transform(pd.DataFrame({"a": ["x"]}))
    frame = pd.DataFrame({"a": list("xxxyz")})
    assert torch.equal(twin.fit(frame).transform(frame).ids, enc.fit(frame).transform(frame).ids)


def test_fit_transform_equals_fit_then_transform():
    frame = pd.DataFrame({"a": list("xyzxx"), "b": [1, 2, 2, 3, 1]})
    schema = cat_schema("a", "b")
    a = FieldEncoder(schema).fit_transform(frame)
    b = FieldEncoder(schema).fit(frame).transform(frame)
    assert torch.equal(a.ids, b.ids)
    assert list(FieldEncoder(schema).fit(frame).get_feature_names_out()) == ["a", "b"]


# ----------------------------------------------------------------------------------------------------------
# categorical vocabularies and reserved ids
# ----------------------------------------------------------------------------------------------------------

def test_vocabulary_is_per_field_most_frequent_first_from_id_3():
    frame = pd.DataFrame({"a": ["p", "q", "q", "r", "q", "r"], "b": ["r", "p", "p", "s", "s", "s"]})
    enc = FieldEncoder(cat_schema("a", "b")).fit(frame)
    # Reference: counts sorted by (-count, value).
    for col in ("a", "b"):
        counts = frame[col].value_counts()
        ref = sorted(counts.index, key=lambda v: (-counts[v], v))
        assert enc.vocabularies_[col] == ref
    data = enc.transform(frame)
    for k, col in enumerate(("a", "b")):
        m = id_map(enc, col)
        assert data.ids[:, k].tolist() == [m[v] for v in frame[col]]
    assert enc.space_.cardinalities == [NUM_RESERVED + 3, NUM_RESERVED + 3]
    assert data.ids.dtype == torch.int32 and data.ids.shape == (6, 2)
    assert data.values is None and data.bags is None


def test_vocabulary_does_not_depend_on_row_order():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.choice(list("abcdef"), size=60)})
    shuffled = frame.sample(frac=1.0, random_state=1).reset_index(drop=True)
    e1 = FieldEncoder(cat_schema("a")).fit(frame)
    e2 = FieldEncoder(cat_schema("a")).fit(shuffled)
    assert e1.vocabularies_ == e2.vocabularies_


def test_missing_values_get_id_0():
    train = pd.DataFrame({"a": ["x", "y", None, "", "   ", np.nan]})
    enc = FieldEncoder(cat_schema("a")).fit(train)
    assert set(enc.vocabularies_["a"]) == {"x", "y"}
    got = ids_of(enc, "a", ["x", None, np.nan, "", " \t ", "y"])
    m = id_map(enc, "a")
    assert got == [m["x"], MISSING, MISSING, MISSING, MISSING, m["y"]]
    # Missing in a float column (NaN) too.
    enc_num = fit_one(categorical("n"), [1.0, np.nan, 2.0])
    assert ids_of(enc_num, "n", [np.nan])[0] == MISSING


def test_unseen_values_map_to_unknown_never_to_a_known_id():
    enc = FieldEncoder(cat_schema("a")).fit(pd.DataFrame({"a": ["x", "y", "y"]}))
    got = ids_of(enc, "a", ["z", "X", "y ", "xy", "0", "1", "2"])
    m = id_map(enc, "a")
    # "y " is stripped to "y"; everything else was never seen.
    assert got == [UNKNOWN, UNKNOWN, m["y"], UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN]


def test_handle_unknown_rare_maps_unseen_values_to_rare():
    train = pd.DataFrame({"a": ["x", "x", "y"]})
    enc = FieldEncoder(cat_schema("a"), handle_unknown="rare").fit(train)
    m = id_map(enc, "a")
    assert ids_of(enc, "a", ["never", "x", None]) == [RARE, m["x"], MISSING]


def test_min_count_sends_infrequent_values_to_rare():
    train = pd.DataFrame({"a": ["x"] * 3 + ["y"] * 2 + ["z"]})
    enc = FieldEncoder(cat_schema("a"), min_count=2).fit(train)
    assert enc.vocabularies_["a"] == ["x", "y"]
    assert enc.rare_values_["a"] == ["z"]
    m = id_map(enc, "a")
    # Rare training value -> 2, unseen value -> 1 (not 2), frequent values keep their own ids.
    assert ids_of(enc, "a", ["x", "y", "z", "w"]) == [m["x"], m["y"], RARE, UNKNOWN]
    assert enc.space_.cardinalities == [NUM_RESERVED + 2]

    enc3 = FieldEncoder(cat_schema("a"), min_count=3).fit(train)
    assert enc3.vocabularies_["a"] == ["x"]
    assert ids_of(enc3, "a", ["y", "z"]) == [RARE, RARE]


def test_field_min_count_overrides_the_encoder_min_count():
    train = pd.DataFrame({"a": ["x", "x", "y"], "b": ["x", "x", "y"]})
    schema = Schema((categorical("a", min_count=1), categorical("b")), label="y")
    enc = FieldEncoder(schema, min_count=2).fit(train)
    assert enc.vocabularies_["a"] == ["x", "y"]  # the field's own min_count=1 wins
    assert enc.vocabularies_["b"] == ["x"]       # the encoder's min_count=2
    data = enc.transform(pd.DataFrame({"a": ["y"], "b": ["y"]}))
    assert data.ids[0].tolist() == [id_map(enc, "a")["y"], RARE]

    schema2 = Schema((categorical("a", min_count=3),), label="y")
    enc2 = FieldEncoder(schema2, min_count=1).fit(train)
    assert enc2.vocabularies_["a"] == [] and ids_of(enc2, "a", ["x", "q"]) == [RARE, UNKNOWN]


def test_same_value_as_int_float_or_string_gets_the_same_id():
    enc = fit_one(categorical("a"), [3, 3, 4, 7])
    m = {**id_map(enc, "a"), None: MISSING, "?": UNKNOWN}
    # (column, what each row should map to)
    forms = [
        (pd.Series([3, 4], dtype="int64"), ["3", "4"]),
        (pd.Series([3.0, np.nan, 4.0]), ["3", None, "4"]),              # a float column because of the gap
        (pd.Series(["3", "4"]), ["3", "4"]),
        (pd.Series([" 3", "4 "]), ["3", "4"]),
        (pd.Series([3, "4"], dtype=object), ["3", "4"]),
        (pd.Series([3.0, 4.0, 2.5]), ["3", "4", "?"]),                  # integral floats beside a fraction
        (pd.Series([3.0, "x", 4.0], dtype=object), ["3", "?", "4"]),    # Python floats in an object column
        (pd.Series([np.int64(3), np.float64(4.0)], dtype=object), ["3", "4"]),
    ]
    for col, expected in forms:
        assert ids_of(enc, "a", col) == [m[e] for e in expected], col.tolist()
    # Fitted on a float column with a gap, ints and strings at transform time find the same ids.
    enc_f = fit_one(categorical("a"), [3.0, np.nan, 4.0, 4.0])
    mf = id_map(enc_f, "a")
    assert ids_of(enc_f, "a", pd.Series([3, 4])) == ids_of(enc_f, "a", pd.Series(["3", "4"])) \
        == [mf["3"], mf["4"]]


def test_the_id_of_a_value_does_not_depend_on_the_other_rows():
    """Encoding rows one at a time or all together gives the same ids (whatever dtype pandas infers)."""
    enc = fit_one(categorical("a"), [1, 2, 2, 3, 5])
    column = [1.0, 2.5, np.nan, 3, "5", "abc", None, 2]
    together = ids_of(enc, "a", pd.Series(column, dtype=object))
    alone = [ids_of(enc, "a", pd.Series([v]))[0] for v in column]
    assert together == alone
    m = id_map(enc, "a")
    assert together == [m["1"], UNKNOWN, MISSING, m["3"], m["5"], UNKNOWN, MISSING, m["2"]]


def test_boolean_and_pandas_categorical_columns():
    enc = fit_one(categorical("a"), pd.Series([True, False, True]))
    m = id_map(enc, "a")
    assert ids_of(enc, "a", pd.Series([False, True])) == [m["False"], m["True"]]
    cat = pd.Series(pd.Categorical(["u", "v", None, "u"]))
    enc_c = fit_one(categorical("c"), cat)
    mc = id_map(enc_c, "c")
    # A categorical dtype and plain strings encode the same way.
    assert ids_of(enc_c, "c", cat) == ids_of(enc_c, "c", ["u", "v", None, "u"]) == [mc["u"], mc["v"], MISSING, mc["u"]]


# ----------------------------------------------------------------------------------------------------------
# numeric treatments
# ----------------------------------------------------------------------------------------------------------

def test_numeric_scale_matches_standard_scaler():
    train = np.array([1.0, 4.0, np.nan, 10.0, -2.0, 7.5])
    enc = fit_one(numeric("x", "scale"), train)
    assert enc.space_.kinds == ["scaled"] and enc.space_.cardinalities == [2]
    test = np.array([np.nan, 0.0, 4.0, 100.0, -3.5])
    data = encode(enc, "x", test)
    present = ~np.isnan(test)
    assert data.ids[:, 0].tolist() == [int(p) for p in present]  # 1 present, 0 missing
    ref = StandardScaler().fit(train[~np.isnan(train)].reshape(-1, 1)).transform(
        np.nan_to_num(test).reshape(-1, 1)).ravel()
    expected = np.where(present, ref, 1.0)
    np.testing.assert_allclose(data.values[:, 0].numpy(), expected, rtol=1e-6, atol=1e-6)
    assert data.values.dtype == torch.float32


def test_numeric_scale_constant_column_does_not_divide_by_zero():
    enc = fit_one(numeric("x"), [5.0, 5.0, 5.0])
    vals = encode(enc, "x", [5.0, 6.0]).values[:, 0]
    assert torch.isfinite(vals).all()
    assert vals.tolist() == [0.0, 1.0]


def test_numeric_scale_mixed_with_categorical_values_are_one_elsewhere():
    schema = Schema((categorical("c"), numeric("x")), label="y")
    frame = pd.DataFrame({"c": ["a", "b", "a"], "x": [1.0, 2.0, 3.0]})
    data = FieldEncoder(schema).fit(frame).transform(frame)
    assert data.values.shape == (3, 2)
    assert torch.equal(data.values[:, 0], torch.ones(3))


@pytest.mark.parametrize("buckets", [(1,), (4,), (3, 10)])
def test_numeric_bucket_ids_match_equal_width_reference(buckets):
    train = np.array([2.0, 3.5, np.nan, 7.0, 10.0, 4.2, 9.99])
    enc = fit_one(numeric("x", "bucket", buckets=buckets), train)
    assert enc.space_.names == [f"x_b{b}" for b in buckets]
    assert enc.space_.sources == ["x"] * len(buckets)
    assert enc.space_.cardinalities == [NUM_RESERVED + b for b in buckets]
    lo, hi = np.nanmin(train), np.nanmax(train)
    test = np.array([2.0, 3.0, 5.9, 6.0, 10.0, np.nan, -100.0, 1e6, 8.4])
    data = encode(enc, "x", test)
    for k, b in enumerate(buckets):
        width = (hi - lo) / b
        ref = np.clip(np.floor((np.nan_to_num(test, nan=lo) - lo) / width), 0, b - 1) + NUM_RESERVED
        ref = np.where(np.isnan(test), MISSING, ref)
        assert data.ids[:, k].tolist() == ref.astype(int).tolist()
    # Out-of-range values clip to the end buckets.
    assert data.ids[6].tolist() == [NUM_RESERVED] * len(buckets)
    assert data.ids[7].tolist() == [NUM_RESERVED + b - 1 for b in buckets]
    assert data.ids[5].tolist() == [MISSING] * len(buckets)


def test_numeric_bucket_node_names_clashing_with_a_field_are_rejected():
    schema = Schema((numeric("x", "bucket", buckets=(2,)), categorical("x_b2")), label="y")
    with pytest.raises(ValueError, match="x_b2"):
        FieldEncoder(schema).fit(pd.DataFrame({"x": [1.0, 2.0], "x_b2": ["a", "b"]}))


def criteo_reference(x: float) -> int:
    return int(math.floor(math.log(x) ** 2)) if x > 2 else int(math.floor(x))


def test_numeric_log_matches_the_criteo_transform():
    assert [criteo_reference(v) for v in (1, 3, 100)] == [1, 1, 21]  # the reference itself
    train = [0.0, 1.0, 1.5, 2.0, 3.0, 100.0, 150.0, 1000.0, np.nan]
    enc = fit_one(numeric("x", "log"), train)
    assert enc.space_.kinds == ["id"]
    expected_vocab = {str(criteo_reference(v)) for v in train if not np.isnan(v)}
    assert set(enc.vocabularies_["x"]) == expected_vocab
    m = id_map(enc, "x")
    test = [1.0, 3.0, 100.0, 0.5, 2.5, 120.0, np.nan, 1e9]
    got = ids_of(enc, "x", test)
    for v, i in zip(test, got):
        if np.isnan(v):
            assert i == MISSING
        else:
            assert i == m.get(str(criteo_reference(v)), UNKNOWN), v
    # 1 and 3 share a Criteo bucket (both 1); 1e9 -> floor(log(1e9)^2) = 429 was never seen.
    assert got[0] == got[1] == m["1"]
    assert got[-1] == UNKNOWN


def test_numeric_with_text_names_column_and_value():
    enc = FieldEncoder(Schema((numeric("age"),), label="y"))
    with pytest.raises(ValueError, match=r"age.*'abc'|'abc'.*age"):
        enc.fit(pd.DataFrame({"age": ["1", "abc", "3"]}))
    enc.fit(pd.DataFrame({"age": [1.0, 2.0]}))
    with pytest.raises(ValueError, match=r"age.*'oops'|'oops'.*age"):
        enc.transform(pd.DataFrame({"age": [1, "oops"]}))


def test_numeric_strings_and_blanks_are_parsed():
    enc = fit_one(numeric("x"), pd.Series(["1", " 3 ", "", None], dtype=object))
    mean, std = enc.scalers_["x"]
    assert mean == pytest.approx(2.0) and std == pytest.approx(1.0)
    assert encode(enc, "x", pd.Series(["", "3"], dtype=object)).ids[:, 0].tolist() == [0, 1]


# ----------------------------------------------------------------------------------------------------------
# multi-valued fields
# ----------------------------------------------------------------------------------------------------------

def test_multi_valued_bags_from_strings_and_lists():
    field = multi_valued("g", max_tokens=3)
    train = pd.Series(["a|b", "b|c|d", ["a", "b"], "b"], dtype=object)
    enc = fit_one(field, train)
    assert enc.space_.kinds == ["bag"] and enc.space_.max_tokens == {"g": 3}
    assert enc.vocabularies_["g"][0] == "b"  # the most frequent token
    m = id_map(enc, "g")
    test = pd.Series(["a|b", ["a", "b"], ("c",), "d|a|c|b", [], np.nan, "", "zz|a", None], dtype=object)
    data = encode(enc, "g", test)
    assert data.bags.shape == (len(test), 1, 3) and data.bags.dtype == torch.int32
    bags = data.bags[:, 0].tolist()
    assert bags[0] == bags[1] == [m["a"], m["b"], PAD]
    assert bags[2] == [m["c"], PAD, PAD]
    assert bags[3] == [m["d"], m["a"], m["c"]]               # first max_tokens kept, in order
    assert bags[4] == bags[5] == bags[6] == bags[8] == [MISSING, PAD, PAD]
    assert bags[7] == [UNKNOWN, m["a"], PAD]
    # The id column of a bag node holds its first token.
    assert data.ids[:, 0].tolist() == [b[0] for b in bags]


def test_multi_valued_truncation_happens_before_counting():
    # "z" only ever appears past max_tokens, so it is not in the vocabulary.
    enc = fit_one(multi_valued("g", max_tokens=2), ["a|b|z", "b|a|z"])
    assert sorted(enc.vocabularies_["g"]) == ["a", "b"]


def test_multi_valued_custom_sep_min_count_and_numbers():
    enc = fit_one(multi_valued("g", sep=",", max_tokens=4), ["1,2,2", "2, 3", [2.0, 1]], min_count=2)
    # counts: 1 x2, 2 x4, 3 x1 -> "3" is rare
    assert enc.vocabularies_["g"] == ["2", "1"] and enc.rare_values_["g"] == ["3"]
    m = id_map(enc, "g")
    bags = encode(enc, "g", pd.Series(["3,1", [2, 9]], dtype=object)).bags[:, 0].tolist()
    assert bags == [[RARE, m["1"], PAD, PAD], [m["2"], UNKNOWN, PAD, PAD]]


def test_several_bag_fields_are_padded_to_the_longest():
    schema = Schema((multi_valued("g", max_tokens=2), categorical("c"), multi_valued("h", max_tokens=4)),
                    label="y")
    frame = pd.DataFrame({"g": ["a|b|c", "a"], "c": ["x", "y"], "h": ["p|q|r|s|t", ""]})
    enc = FieldEncoder(schema).fit(frame)
    data = enc.transform(frame)
    assert enc.space_.bag_positions == [0, 2]
    assert data.bags.shape == (2, 2, 4)
    assert data.bags[0, 0, 2:].tolist() == [PAD, PAD]   # the shorter field stays padded
    assert (data.bags[0, 1] >= NUM_RESERVED).all()
    assert data.bags[1, 1].tolist() == [MISSING, PAD, PAD, PAD]


# ----------------------------------------------------------------------------------------------------------
# labels
# ----------------------------------------------------------------------------------------------------------

def test_label_becomes_float_y_and_absent_label_gives_none():
    frame = pd.DataFrame({"a": ["x", "y", "x"], "y": [1, 0, 1]})
    enc = FieldEncoder(cat_schema("a")).fit(frame)
    data = enc.transform(frame)
    assert isinstance(data, EncodedData)
    assert data.y.dtype == torch.float32 and data.y.tolist() == [1.0, 0.0, 1.0]
    assert data.label_name == "y"
    assert enc.transform(frame.drop(columns="y")).y is None
    # Fitting does not need the label either.
    assert FieldEncoder(cat_schema("a")).fit(frame.drop(columns="y")).transform(frame).y.tolist() == [1, 0, 1]


def test_non_numeric_or_missing_label_is_rejected_by_name():
    enc = FieldEncoder(cat_schema("a", label="clicked")).fit(pd.DataFrame({"a": ["x"]}))
    with pytest.raises(ValueError, match="clicked"):
        enc.transform(pd.DataFrame({"a": ["x", "y"], "clicked": ["yes", "no"]}))
    with pytest.raises(ValueError, match="clicked"):
        enc.transform(pd.DataFrame({"a": ["x", "y"], "clicked": [1.0, np.nan]}))


# ----------------------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------------------

def test_missing_field_column_raises_key_error_naming_it():
    enc = FieldEncoder(cat_schema("a", "user_id"))
    with pytest.raises(KeyError, match="user_id"):
        enc.fit(pd.DataFrame({"a": ["x"]}))
    enc.fit(pd.DataFrame({"a": ["x"], "user_id": ["u"]}))
    with pytest.raises(KeyError, match="user_id"):
        enc.transform(pd.DataFrame({"a": ["x"]}))


def test_empty_frame_raises_value_error():
    enc = FieldEncoder(cat_schema("a"))
    with pytest.raises(ValueError, match="empty"):
        enc.fit(pd.DataFrame({"a": pd.Series([], dtype=object)}))
    enc.fit(pd.DataFrame({"a": ["x"]}))
    with pytest.raises(ValueError, match="empty"):
        enc.transform(pd.DataFrame({"a": pd.Series([], dtype=object)}))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_min_count_raises_naming_min_count(bad):
    with pytest.raises(ValueError, match="min_count"):
        FieldEncoder(cat_schema("a"), min_count=bad).fit(pd.DataFrame({"a": ["x"]}))


def test_field_min_count_zero_and_bad_handle_unknown_are_rejected():
    with pytest.raises(ValueError, match="min_count"):
        categorical("a", min_count=0)
    with pytest.raises(ValueError, match="handle_unknown"):
        FieldEncoder(cat_schema("a"), handle_unknown="error").fit(pd.DataFrame({"a": ["x"]}))


def test_non_frame_input_is_rejected():
    with pytest.raises(TypeError, match="DataFrame"):
        FieldEncoder(cat_schema("a")).fit(np.array([["x"]]))
    enc = FieldEncoder(cat_schema("a")).fit(pd.DataFrame({"a": ["x"]}))
    with pytest.raises(TypeError, match="DataFrame"):
        enc.transform(np.array([["x"]]))


def full_schema():
    return Schema((categorical("c", min_count=2), numeric("s"), numeric("b", "bucket", buckets=(2, 5)),
                   numeric("l", "log"), multi_valued("m", max_tokens=3)), label="y")


def full_frame():
    return pd.DataFrame({
        "c": ["a", "b", "a", None, "c", "a"],
        "s": [1.0, np.nan, 3.0, 4.0, 5.5, -1.0],
        "b": [0.0, 1.0, 2.0, np.nan, 4.0, 10.0],
        "l": [1.0, 50.0, 3.0, np.nan, 1000.0, 2.0],
        "m": ["x|y", ["y", "z"], np.nan, "", "x|x|y|z", ["w"]],
        "y": [1, 0, 0, 1, 1, 0],
    })


def test_input_frame_is_not_modified():
    frame = full_frame()
    before = frame.copy(deep=True)
    enc = FieldEncoder(full_schema()).fit(frame)
    pd.testing.assert_frame_equal(frame, before)
    enc.transform(frame)
    pd.testing.assert_frame_equal(frame, before)
    # Lists inside cells are not mutated either.
    assert frame["m"].iloc[1] == ["y", "z"]
    schema_before = full_schema()
    assert enc.schema == schema_before


# ----------------------------------------------------------------------------------------------------------
# persistence
# ----------------------------------------------------------------------------------------------------------

def assert_same_encoding(a: EncodedData, b: EncodedData):
    for key in ("ids", "values", "bags", "y"):
        ta, tb = getattr(a, key), getattr(b, key)
        assert (ta is None) == (tb is None), key
        if ta is not None:
            assert torch.equal(ta, tb), key
    assert a.space.to_dict() == b.space.to_dict()


def test_save_load_json_round_trip(tmp_path):
    frame = full_frame()
    enc = FieldEncoder(full_schema(), handle_unknown="rare").fit(frame)
    path = tmp_path / "encoder.json"
    enc.save(path)
    json.loads(path.read_text())  # plain JSON
    loaded = FieldEncoder.load(path)
    assert loaded.get_params()["handle_unknown"] == "rare"
    assert loaded.schema == enc.schema
    new = pd.DataFrame({
        "c": ["a", "zzz", "b", None], "s": [2.0, np.nan, 100.0, 0.0], "b": [-5.0, 3.3, np.nan, 11.0],
        "l": [3.0, 1e5, np.nan, 0.0], "m": ["x|q", [], "z|y|x|w", np.nan], "y": [0, 1, 0, 1],
    })
    for f in (frame, new):
        assert_same_encoding(enc.transform(f), loaded.transform(f))


def test_state_dict_survives_torch_save_weights_only(tmp_path):
    frame = full_frame()
    enc = FieldEncoder(full_schema(), min_count=1).fit(frame)
    path = tmp_path / "enc.pt"
    torch.save(enc.state_dict(), path)
    state = torch.load(path, weights_only=True)
    loaded = FieldEncoder.from_state_dict(state)
    assert_same_encoding(enc.transform(frame), loaded.transform(frame))
    assert loaded.vocabularies_ == enc.vocabularies_
    # Exact equality: a float goes through torch.save/load bit for bit. (pytest >= 9.2 refuses
    # ``pytest.approx`` on a dict of tuples, and approximate equality would hide a lossy round trip anyway.)
    assert loaded.scalers_ == enc.scalers_
    assert loaded.bucket_ranges_ == enc.bucket_ranges_
    assert all(type(v) is tuple for v in loaded.scalers_.values())


def test_unknown_state_format_is_rejected():
    state = FieldEncoder(cat_schema("a")).fit(pd.DataFrame({"a": ["x"]})).state_dict()
    state["format"] = 999
    with pytest.raises(ValueError, match="format"):
        FieldEncoder.from_state_dict(state)
