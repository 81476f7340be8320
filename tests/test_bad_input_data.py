"""Bad input to the data layer (encoder, schema, loader, data-set files): each case is a clear error that
names the input, or a documented behaviour whose result is checked."""
import gzip
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from fgraph.data import (EncodedData, FeatureSpace, FieldEncoder, FieldLoader, Schema, UnknownValuesWarning,
                         categorical, multi_valued, numeric)
from fgraph.data.space import MISSING, NUM_RESERVED, PAD, UNKNOWN
from fgraph.errors import (CheckpointError, ColumnNotFoundError, ConfigError, DataError, FgraphError,
                           InputFileError, InputFileNotFoundError)


def fitted(frame, *fields, **kw):
    return FieldEncoder(Schema(tuple(fields), label="y"), **kw).fit(frame)


# ----------------------------------------------------------------------------------------------------------
# fingerprint
# ----------------------------------------------------------------------------------------------------------

def test_fingerprint_tells_apart_same_size_vocabularies():
    a = fitted(pd.DataFrame({"c": ["x", "y", "y"]}), categorical("c"))
    b = fitted(pd.DataFrame({"c": ["x", "z", "z"]}), categorical("c"))   # same size, other value
    c = fitted(pd.DataFrame({"c": ["x", "x", "y"]}), categorical("c"))   # same values, other id order
    assert a.space_.to_dict() == b.space_.to_dict() == c.space_.to_dict()
    prints = {a.fingerprint(), b.fingerprint(), c.fingerprint()}
    assert len(prints) == 3 and all(len(p) == 64 for p in prints)
    # It is a function of the fitted state only: a refit on the same data and a reload give the same one.
    assert fitted(pd.DataFrame({"c": ["y", "x", "y"]}), categorical("c")).fingerprint() == a.fingerprint()
    assert FieldEncoder.from_state_dict(a.state_dict()).fingerprint() == a.fingerprint()


def test_fingerprint_covers_scalers_and_bucket_ranges():
    s1 = fitted(pd.DataFrame({"n": [1.0, 2.0]}), numeric("n"))
    s2 = fitted(pd.DataFrame({"n": [1.0, 3.0]}), numeric("n"))
    b1 = fitted(pd.DataFrame({"n": [1.0, 2.0]}), numeric("n", "bucket", buckets=(4,)))
    b2 = fitted(pd.DataFrame({"n": [1.0, 3.0]}), numeric("n", "bucket", buckets=(4,)))
    assert s1.fingerprint() != s2.fingerprint()
    assert b1.fingerprint() != b2.fingerprint()


# ----------------------------------------------------------------------------------------------------------
# large integer ids stay exact
# ----------------------------------------------------------------------------------------------------------

BIG = [2 ** 53, 2 ** 53 + 1, 2 ** 62, 2 ** 63 - 1, -2 ** 63]


@pytest.mark.parametrize("dtype", ["int64", "Int64", object])
def test_large_integer_ids_keep_their_exact_values(dtype):
    col = pd.Series(BIG, dtype=dtype)
    enc = fitted(pd.DataFrame({"c": col}), categorical("c"))
    # Five distinct ids, each spelled as its exact decimal (float64 would merge 2**53 and 2**53 + 1 and
    # write 2**62 as '4.611686018427388e+18').
    assert sorted(enc.vocabularies_["c"]) == sorted(str(v) for v in BIG)
    ids = enc.transform(pd.DataFrame({"c": col})).ids[:, 0].tolist()
    assert len(set(ids)) == 5 and min(ids) >= NUM_RESERVED


def test_uint64_and_nullable_ids_and_mixed_forms_of_one_id():
    enc = fitted(pd.DataFrame({"c": pd.Series([2 ** 64 - 1, 2 ** 63 + 1], dtype="uint64")}), categorical("c"))
    assert sorted(enc.vocabularies_["c"]) == ["18446744073709551615", "9223372036854775809"]
    # The same id given as a nullable integer (with a gap), a Python int in an object column and a string.
    forms = [pd.Series([2 ** 63 + 1, None], dtype="UInt64"), pd.Series([2 ** 63 + 1, None], dtype=object),
             pd.Series(["9223372036854775809", None])]
    expected = enc.transform(pd.DataFrame({"c": forms[0]})).ids[:, 0].tolist()
    assert expected[0] >= NUM_RESERVED and expected[1] == MISSING
    for col in forms[1:]:
        assert enc.transform(pd.DataFrame({"c": col})).ids[:, 0].tolist() == expected


def test_integral_floats_map_to_ints_only_while_exact():
    enc = fitted(pd.DataFrame({"c": [3, 2 ** 53 + 1]}), categorical("c"))
    ids = enc.transform(pd.DataFrame({"c": [3.0, float(2 ** 53 + 1)]})).ids[:, 0].tolist()
    assert ids[0] == id_of(enc, "c", "3")
    # float(2**53 + 1) is 2**53: a float that large stands for several integers, so it is not matched to one.
    assert ids[1] == UNKNOWN
    assert fitted(pd.DataFrame({"c": [1e20]}), categorical("c")).vocabularies_["c"] == ["1e+20"]


def test_large_integer_tokens_of_multi_valued_fields_stay_exact():
    enc = fitted(pd.DataFrame({"m": [[2 ** 53, 2 ** 53 + 1], [2 ** 62]]}), multi_valued("m"))
    assert sorted(enc.vocabularies_["m"]) == sorted(["9007199254740992", "9007199254740993",
                                                     "4611686018427387904"])


def id_of(enc, node, value):
    return enc.vocabularies_[node].index(value) + NUM_RESERVED


# ----------------------------------------------------------------------------------------------------------
# +-inf in numeric columns: refused at fit and at transform
# ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("treatment", ["scale", "bucket", "log"])
def test_infinite_values_are_refused_at_fit_naming_column_row_and_count(treatment):
    frame = pd.DataFrame({"price": [1.0, np.inf, 3.0, -np.inf]})
    with pytest.raises(DataError, match=r"column 'price' holds inf at row 1 \(2 infinite.*NaN"):
        fitted(frame, numeric("price", treatment))


@pytest.mark.parametrize("treatment", ["scale", "bucket", "log"])
def test_infinite_values_are_refused_at_transform(treatment):
    enc = fitted(pd.DataFrame({"price": [1.0, 2.0, 3.0]}), numeric("price", treatment))
    frame = pd.DataFrame({"price": [1.0, 2.0, -np.inf]}, index=["a", "b", "c"])
    with pytest.raises(DataError, match=r"column 'price' holds -inf at row 'c' \(position 2\)"):
        enc.transform(frame)
    # The text "inf" in an object column is parsed, and refused the same way.
    with pytest.raises(DataError, match=r"column 'price' holds inf at row 1"):
        enc.transform(pd.DataFrame({"price": ["1", "inf"]}))
    # NaN is the documented way to say "missing": id 0.
    assert enc.transform(pd.DataFrame({"price": [np.nan]})).ids[0, 0].item() == MISSING


def test_values_whose_scaled_value_overflows_are_refused():
    with pytest.raises(DataError, match=r"column 'x'.*too large to scale"):
        fitted(pd.DataFrame({"x": [1e308, 1e308, -1e308]}), numeric("x"))
    enc = fitted(pd.DataFrame({"x": [0.0, 1e-30]}), numeric("x"))
    with pytest.raises(DataError, match=r"column 'x'.*10000000000.0 at row 1 scales to.*float32"):
        enc.transform(pd.DataFrame({"x": [0.0, 1e10]}))
    with pytest.raises(DataError, match=r"column 'x'.*too wide"):
        fitted(pd.DataFrame({"x": [1e308, -1e308]}), numeric("x", "bucket"))


def test_bucket_column_nan_and_far_values_at_transform():
    enc = fitted(pd.DataFrame({"x": [0.0, 4.0]}), numeric("x", "bucket", buckets=(4,)))
    ids = enc.transform(pd.DataFrame({"x": [np.nan, 1.0, 1e308, -1e308]})).ids[:, 0].tolist()
    # NaN is missing; values far outside the training range clip to the end buckets (no overflow).
    assert ids == [MISSING, NUM_RESERVED + 1, NUM_RESERVED + 3, NUM_RESERVED]


def test_log_column_keeps_large_negative_values_apart():
    # Values <= 2 are kept (floored); huge ones used to wrap around through int64.
    enc = fitted(pd.DataFrame({"x": [-1e30, -5.0, 1.0]}), numeric("x", "log"))
    assert sorted(enc.vocabularies_["x"]) == sorted(["-1e+30", "-5", "1"])


def test_infinite_floats_in_a_categorical_column_are_tokens():
    enc = fitted(pd.DataFrame({"c": [np.inf, -np.inf, 1.0]}), categorical("c"))
    assert sorted(enc.vocabularies_["c"]) == ["-inf", "1", "inf"]
    ids = enc.transform(pd.DataFrame({"c": ["inf", "-inf"]})).ids[:, 0].tolist()
    assert ids == [id_of(enc, "c", "inf"), id_of(enc, "c", "-inf")]


# ----------------------------------------------------------------------------------------------------------
# categories whose type changes between fit and transform
# ----------------------------------------------------------------------------------------------------------

def test_one_category_in_every_spelling():
    enc = fitted(pd.DataFrame({"c": [1.0, 2.5, 1234]}), categorical("c"))
    one, two_half, n1234 = (id_of(enc, "c", v) for v in ("1", "2.5", "1234"))
    col = pd.Series([1, 1.0, "1", "1.0", " 1 ", "+1.0", "2.50", 2.5, "1234", "01234", "1e0"], dtype=object)
    ids = enc.transform(pd.DataFrame({"c": col})).ids[:, 0].tolist()
    # A digit-only string keeps its leading zero ("01234" is a code, not 1234), and only plain decimals
    # with a point are read as numbers ("1e0" stays text).
    assert ids == [one] * 6 + [two_half] * 2 + [n1234, UNKNOWN, UNKNOWN]


def test_a_decimal_string_too_long_for_a_float_stays_text():
    huge = "1" * 400 + ".0"
    enc = fitted(pd.DataFrame({"c": [huge, np.inf]}), categorical("c"))
    assert sorted(enc.vocabularies_["c"]) == sorted([huge, "inf"])


def test_float_fitted_category_is_found_from_its_string():
    enc = fitted(pd.DataFrame({"c": [1.0, 2.0, 0.5]}), categorical("c"))
    ids = enc.transform(pd.DataFrame({"c": ["1.0", "2", "0.50", ".5"]})).ids[:, 0].tolist()
    assert ids == [id_of(enc, "c", "1"), id_of(enc, "c", "2"), id_of(enc, "c", "0.5"), id_of(enc, "c", "0.5")]


@pytest.mark.parametrize("cell, kind", [(["x", "y"], "list"), (("x",), "tuple"), ({"x"}, "set"),
                                        ({"k": 1}, "dict"), (np.array([1, 2]), "ndarray")])
def test_containers_in_a_categorical_column_are_refused(cell, kind):
    col = pd.Series(["a", "b", None], dtype=object, index=[10, 11, 12])
    col[12] = cell
    with pytest.raises(DataError, match=rf"column 'tags' holds a {kind} at row 12 \(position 2\).*"
                                        rf"multi_valued\('tags'\)"):
        fitted(pd.DataFrame({"tags": col}), categorical("tags"))


def test_nested_lists_in_a_multi_valued_column_are_refused():
    with pytest.raises(DataError, match=r"column 'tags' holds a list inside the list at row 1"):
        fitted(pd.DataFrame({"tags": [["a"], ["b", ["c"]]]}), multi_valued("tags"))
    with pytest.raises(DataError, match=r"column 'tags' holds a dict at row 0"):
        fitted(pd.DataFrame({"tags": [{"a": 1}]}), multi_valued("tags"))


def test_set_tokens_are_sorted_so_max_tokens_keeps_the_same_ones():
    enc = fitted(pd.DataFrame({"tags": [{"c", "a", "b"}]}), multi_valued("tags", max_tokens=2))
    assert enc.vocabularies_["tags"] == ["a", "b"]


def transform_warnings(enc, frame):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        enc.transform(frame)
    return [w for w in caught if issubclass(w.category, UnknownValuesWarning)]


def test_mostly_unknown_column_warns_with_name_share_and_hint():
    enc = fitted(pd.DataFrame({"city": [f"city{i}" for i in range(30)]}), categorical("city"))
    caught = transform_warnings(enc, pd.DataFrame({"city": list(range(30))}))
    assert len(caught) == 1
    msg = str(caught[0].message)
    assert "column 'city'" in msg and "30 of 30" in msg and "100%" in msg and "fitted on strings, given numbers" in msg
    assert caught[0].filename == __file__  # it points at the caller's line, not at fgraph or scikit-learn

    codes = fitted(pd.DataFrame({"city": list(range(30))}), categorical("city"))
    msg = str(transform_warnings(codes, pd.DataFrame({"city": [f"x{i}" for i in range(30)]}))[0].message)
    assert "fitted on numbers, given strings" in msg


def test_unknown_warning_thresholds():
    # Every training value repeats, so fit expects no unseen values (Good-Turing share 0).
    enc = fitted(pd.DataFrame({"c": [f"v{i}" for i in range(40)] * 3}), categorical("c"))
    assert enc.unseen_share_["c"] == 0.0
    # Half unknown is not "most"; 19 values are too few to judge; missing values do not count.
    assert not transform_warnings(enc, pd.DataFrame({"c": [f"v{i}" for i in range(20)] + ["new"] * 20}))
    assert not transform_warnings(enc, pd.DataFrame({"c": ["new"] * 19}))
    assert not transform_warnings(enc, pd.DataFrame({"c": ["v1"] * 15 + ["new"] * 10 + [None] * 30}))
    assert transform_warnings(enc, pd.DataFrame({"c": ["v1"] * 9 + ["new"] * 11}))
    # handle_unknown="rare" sends them to the rare id, but they are still values fit never saw.
    rare = fitted(pd.DataFrame({"c": [f"v{i}" for i in range(40)] * 2}), categorical("c"), handle_unknown="rare")
    assert transform_warnings(rare, pd.DataFrame({"c": ["new"] * 30}))


def test_a_long_tailed_column_raises_the_warning_bar():
    # Half of the training values are seen once: about half of any new frame is expected to be unseen
    # (hashed ids), so 60% unknown is no sign of a type change; all-unknown still is.
    tail = [f"v{i}" for i in range(20)] * 2 + [f"once{i}" for i in range(40)]
    enc = fitted(pd.DataFrame({"c": tail}), categorical("c"))
    assert enc.unseen_share_["c"] == pytest.approx(0.5)
    assert not transform_warnings(enc, pd.DataFrame({"c": ["v1"] * 40 + [f"new{i}" for i in range(60)]}))
    assert transform_warnings(enc, pd.DataFrame({"c": [f"new{i}" for i in range(100)]}))
    # The estimate survives save/load, and does not change the fingerprint's meaning-bearing parts.
    again = FieldEncoder.from_state_dict(enc.state_dict())
    assert again.unseen_share_ == enc.unseen_share_ and again.fingerprint() == enc.fingerprint()


def test_unknown_warning_for_multi_valued_tokens():
    enc = fitted(pd.DataFrame({"m": ["a|b", "c"]}), multi_valued("m"))
    caught = transform_warnings(enc, pd.DataFrame({"m": ["x|y"] * 15}))
    assert caught and "column 'm'" in str(caught[0].message)


# ----------------------------------------------------------------------------------------------------------
# per-field options
# ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("option, bad", [("min_count", 1.5), ("min_count", 1.9), ("min_count", True),
                                         ("min_count", 0), ("max_tokens", 2.5), ("max_tokens", False),
                                         ("max_tokens", 0)])
def test_field_counts_must_be_integers_at_least_one(option, bad):
    with pytest.raises(ConfigError, match=rf"field 'tags' option '{option}' must be an integer >= 1, "
                                          rf"got {bad!r}"):
        multi_valued("tags", **{option: bad})


@pytest.mark.parametrize("bad", [(10, 2.5), (True,), (0,), "abc"])
def test_bucket_counts_must_be_integers_at_least_one(bad):
    with pytest.raises(ConfigError, match=r"field 'price' option 'buckets'"):
        numeric("price", "bucket", buckets=bad)


def test_field_options_accepted_forms():
    # An integral float is taken as the integer (the rule of every fgraph option), one count as one
    # granularity.
    assert categorical("a", min_count=2.0).min_count == 2
    assert numeric("a", "bucket", buckets=10).buckets == (10,)
    with pytest.raises(ConfigError, match=r"field 'a' option 'sep'"):
        multi_valued("a", sep="")


def test_encoder_min_count_is_checked_at_fit():
    for bad in (1.5, 0, True, "many"):
        with pytest.raises(ConfigError, match=r"FieldEncoder option 'min_count'"):
            fitted(pd.DataFrame({"c": ["x"]}), categorical("c"), min_count=bad)
    with pytest.raises(ConfigError, match="handle_unknown"):
        fitted(pd.DataFrame({"c": ["x"]}), categorical("c"), handle_unknown="error")


# ----------------------------------------------------------------------------------------------------------
# the frame: duplicate and missing columns, labels
# ----------------------------------------------------------------------------------------------------------

def test_duplicate_column_names_are_refused_by_name():
    frame = pd.DataFrame([["a", "b", 1]], columns=["city", "city", "y"])
    with pytest.raises(DataError, match=r"several columns named \['city'\]"):
        fitted(frame, categorical("city"))
    enc = fitted(pd.DataFrame({"city": ["a"]}), categorical("city"))
    with pytest.raises(DataError, match=r"several columns named \['y'\]"):
        enc.transform(pd.DataFrame([["a", 1, 0]], columns=["city", "y", "y"]))
    # Columns the schema does not read may repeat.
    extra = pd.DataFrame([["a", 1, 2]], columns=["city", "note", "note"])
    assert enc.transform(extra).ids[0, 0].item() == id_of(enc, "city", "a")


def test_missing_columns_raise_column_not_found():
    enc = fitted(pd.DataFrame({"city": ["a"]}), categorical("city"))
    with pytest.raises(ColumnNotFoundError, match=r"\['city'\].*missing"):
        enc.transform(pd.DataFrame({"town": ["a"]}))
    assert issubclass(ColumnNotFoundError, KeyError)
    with pytest.raises(ColumnNotFoundError, match="label column 'y'"):
        enc.schema.check_frame(pd.DataFrame({"city": ["a"]}), require_label=True)
    with pytest.raises(TypeError, match="DataFrame"):
        enc.schema.check_frame({"city": ["a"]})


@pytest.mark.parametrize("labels, match", [
    (["1", "yes"], r"label column 'y' has a non-numeric value 'yes' at row 1"),
    ([1, None], r"label column 'y' has a missing value at row 1"),
    (["1", "  "], r"label column 'y' has a missing value at row 1"),
    ([1, np.inf], r"label column 'y' holds inf at row 1"),
    ([0, -np.inf], r"label column 'y' holds -inf at row 1"),
    ([1, 1e39], r"label column 'y' holds 1e\+39 at row 1, beyond float32"),
])
def test_bad_labels_are_refused_naming_column_and_row(labels, match):
    enc = fitted(pd.DataFrame({"c": ["a", "b"]}), categorical("c"))
    with pytest.raises(DataError, match=match):
        enc.transform(pd.DataFrame({"c": ["a", "b"], "y": pd.Series(labels, dtype=object)}))


def test_label_strings_and_booleans_are_read_as_numbers():
    enc = fitted(pd.DataFrame({"c": ["a", "b"]}), categorical("c"))
    for labels in (["0", " 1 "], [False, True], pd.Series([False, True], dtype=object)):
        y = enc.transform(pd.DataFrame({"c": ["a", "b"], "y": labels})).y
        assert y.tolist() == [0.0, 1.0]


# ----------------------------------------------------------------------------------------------------------
# encoder.json: truncated, corrupt, foreign
# ----------------------------------------------------------------------------------------------------------

def small_encoder():
    return fitted(pd.DataFrame({"c": ["a", "b", "a"], "n": [1.0, 2.0, 3.0]}), categorical("c"), numeric("n"))


@pytest.mark.parametrize("content, match", [
    (b"", "is empty"),
    (b"  \n", "is empty"),
    (None, r"not valid JSON \(.* line 1, column"),               # the real file cut in the middle
    (b'{"format": 1, "schema": {', "not valid JSON"),
    (b"\xff\xfe{}", r"not UTF-8 text \(byte b'\\xff'"),
    (b"[1, 2, 3]", "must be a dict, got list"),
    (b'"encoder"', "must be a dict, got str"),
    (b'{"format": 7}', "unsupported encoder format 7"),
    (b'{"format": 1, "schema": {}}', r"lacks the key\(s\) \['params', 'space'"),
])
def test_broken_encoder_files_name_the_file(tmp_path, content, match):
    path = tmp_path / "encoder.json"
    small_encoder().save(path)
    path.write_bytes(path.read_bytes()[:40] if content is None else content)
    with pytest.raises(InputFileError, match=match) as info:
        FieldEncoder.load(path)
    assert str(path) in str(info.value)


def test_missing_encoder_file(tmp_path):
    with pytest.raises(InputFileNotFoundError, match=r"encoder file .*nope\.json does not exist"):
        FieldEncoder.load(tmp_path / "nope.json")
    with pytest.raises(InputFileError, match="cannot read encoder file"):
        FieldEncoder.load(tmp_path)  # a directory
    with pytest.raises(InputFileNotFoundError, match="does not exist"):
        small_encoder().save(tmp_path / "no" / "such" / "encoder.json")


def edited_state(edit):
    state = json.loads(json.dumps(small_encoder().state_dict()))
    edit(state)
    return state


@pytest.mark.parametrize("edit, match", [
    (lambda s: s["vocabularies"]["c"].pop(), r"vocabulary sizes differ for fields \['c'\]"),
    (lambda s: s["vocabularies"].pop("c"), "no vocabularies entry for field 'c'"),
    (lambda s: s["scalers"].pop("n"), "no scalers entry for field 'n'"),
    (lambda s: s["scalers"].update(n=[0.0, "x"]), "'scalers' must map field names to pairs of finite numbers"),
    (lambda s: s["scalers"].update(n=[0.0, 0.0]), "standard deviation <= 0"),
    (lambda s: s["vocabularies"].update(c=[1, 2]), "'vocabularies' must map field names to lists of strings"),
    (lambda s: s["schema"]["fields"][0].update(min_count=1.5), "min_count"),
    (lambda s: s["schema"].pop("fields"), "malformed"),
    (lambda s: s["params"].update(min_count=0), "min_count"),
    (lambda s: s["space"].update(names=["c"]), "malformed"),
])
def test_from_state_dict_refuses_inconsistent_states(edit, match):
    with pytest.raises(CheckpointError, match=match):
        FieldEncoder.from_state_dict(edited_state(edit))


def test_from_state_dict_round_trip_is_intact():
    enc = small_encoder()
    frame = pd.DataFrame({"c": ["b", "a", "zz"], "n": [2.0, np.nan, 9.0]})
    again = FieldEncoder.from_state_dict(json.loads(json.dumps(enc.state_dict())))
    assert torch.equal(again.transform(frame).ids, enc.transform(frame).ids)
    assert torch.equal(again.transform(frame).values, enc.transform(frame).values)
    assert again.fingerprint() == enc.fingerprint()


# ----------------------------------------------------------------------------------------------------------
# EncodedData that does not fit its space
# ----------------------------------------------------------------------------------------------------------

def hand_made(ids, bags=None, y=None, values=None):
    space = FeatureSpace(["user", "item", "tags"], ["id", "id", "bag"], [5, 4, 6], ["user", "item", "tags"],
                         {"tags": 2})
    ids = torch.tensor(ids, dtype=torch.int32)
    if bags is None:
        bags = torch.stack([ids[:, 2], torch.full_like(ids[:, 2], PAD)], 1)[:, None, :]
    return EncodedData(ids, values, torch.as_tensor(bags, dtype=torch.int32), y, space)


def test_ids_past_the_vocabulary_are_refused_by_the_loader():
    good = hand_made([[0, 1, 3], [4, 3, 5]])
    assert len(list(FieldLoader(good, batch_size=1))) == 2
    with pytest.raises(DataError, match=r"field 'item': id 4 at row 1 is outside its vocabulary 0\.\.3"):
        FieldLoader(hand_made([[0, 1, 3], [1, 4, 2], [1, 9, 2]]))
    with pytest.raises(DataError, match=r"field 'user': id -1 at row 0"):
        FieldLoader(hand_made([[-1, 1, 3]]))
    bags = torch.tensor([[[3, 6]], [[3, PAD]]])
    with pytest.raises(DataError, match=r"field 'tags': bag token 6 at row 0"):
        FieldLoader(hand_made([[0, 1, 3], [0, 1, 3]], bags=bags))
    with pytest.raises(DataError, match=r"field 'tags': bag token -2 at row 1"):
        FieldLoader(hand_made([[0, 1, 3], [0, 1, 3]], bags=torch.tensor([[[3, PAD]], [[3, -2]]])))


def test_another_encoders_output_is_refused():
    small = fitted(pd.DataFrame({"c": list("ab")}), categorical("c"))
    large = fitted(pd.DataFrame({"c": list("abcdefgh")}), categorical("c"))
    data = large.transform(pd.DataFrame({"c": list("abcdefgh")}))
    data.space = small.space_
    with pytest.raises(DataError, match=r"field 'c': id \d+ at row \d+ is outside its vocabulary 0\.\.4"):
        FieldLoader(data)


def test_mismatched_shapes_are_refused():
    ids = [[0, 1, 3], [4, 3, 5]]
    with pytest.raises(DataError, match=r"y has shape \(3,\), expected \(2,\)"):
        FieldLoader(hand_made(ids, y=torch.zeros(3)))
    with pytest.raises(DataError, match=r"values has shape \(2, 2\), expected \(2, 3\)"):
        FieldLoader(hand_made(ids, values=torch.ones(2, 2)))
    with pytest.raises(DataError, match=r"ids must be a \(rows, 3\) tensor"):
        EncodedData(torch.zeros(2, 2, dtype=torch.int32), None, None, None, hand_made(ids).space).validate()
    with pytest.raises(DataError, match="integer tensor"):
        EncodedData(torch.zeros(2, 3), None, torch.zeros(2, 1, 2, dtype=torch.int32), None,
                    hand_made(ids).space).validate()
    with pytest.raises(DataError, match="y holds a NaN or infinite value at row 1"):
        FieldLoader(hand_made(ids, y=torch.tensor([0.0, float("nan")])))


def test_loader_options_are_checked():
    data = hand_made([[0, 1, 3]])
    with pytest.raises(ConfigError, match="batch_size"):
        FieldLoader(data, batch_size=1000.7)
    with pytest.raises(ConfigError, match="shuffle"):
        FieldLoader(data, shuffle="maybe")
    assert FieldLoader(data, shuffle="no").shuffle is False


# ----------------------------------------------------------------------------------------------------------
# data files read by the builders
# ----------------------------------------------------------------------------------------------------------

from fgraph.data.datasets import avazu, criteo, frappe, movielens100k  # noqa: E402

CRITEO_LINE = "\t".join(["1"] + [str(i) for i in range(13)] + [f"c{i:02d}" for i in range(26)])
CRITEO_GOOD = (CRITEO_LINE + "\n") * 10


def write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_criteo_good_file_reads_every_row(tmp_path):
    d = criteo(path=write(tmp_path / "train.txt", CRITEO_GOOD.encode()))
    assert d.meta["all_rows"] == 10
    # Blank lines are skipped, and a last line without its newline is fine when it is complete.
    d = criteo(path=write(tmp_path / "t2.txt", (CRITEO_GOOD + "\n" + CRITEO_LINE).encode()))
    assert d.meta["all_rows"] == 11


CRITEO_CASES = [
    ("train.txt", b"", r"train\.txt: the file is empty \(0 bytes\)"),
    ("train.txt", (CRITEO_GOOD + CRITEO_LINE[:40]).encode(),
     r"train\.txt: line 11 has 17 field\(s\).*expected 40.*cut mid-line"),
    ("train.txt", (CRITEO_GOOD[:200] + "\n" + CRITEO_GOOD).encode(), r"train\.txt: line 2 has 23 field"),
    ("train.txt", (CRITEO_LINE + "\textra\n" + CRITEO_GOOD).encode(), r"line 1 has 41 field\(s\)"),
    ("train.txt", (CRITEO_GOOD + CRITEO_LINE.replace("c05", "c\xe905") + "\n").encode("latin-1"),
     r"train\.txt: not utf-8 text: line 11 holds the byte\(s\) b'\\xe9'"),
    ("train.txt", (CRITEO_GOOD + "x" + CRITEO_LINE[1:] + "\n").encode(), r"line 11, column 'label': 'x' is not"),
    ("train.txt.gz", gzip.compress(CRITEO_GOOD.encode() * 50)[:100], r"train\.txt\.gz: .*corrupt or truncated"),
    ("train.txt.gz", b"this is not gzip", r"train\.txt\.gz: .*corrupt or truncated"),
    ("train.txt.gz", gzip.compress(b""), r"train\.txt\.gz: the file holds no data rows"),
]


@pytest.mark.parametrize("chunksize", [1_000_000, 3])
@pytest.mark.parametrize("name, data, match", CRITEO_CASES, ids=[
    "zero-bytes", "cut-mid-line", "cut-mid-file", "long-first-line", "latin-1", "text-label", "truncated-gz",
    "not-gz", "empty-gz"])
def test_broken_criteo_files_name_the_file_and_line(tmp_path, name, data, match, chunksize):
    path = write(tmp_path / name, data)
    with pytest.raises(InputFileError, match=match):
        criteo(path=path, chunksize=chunksize)


def test_criteo_head_of_a_cut_file_can_still_be_read(tmp_path):
    path = write(tmp_path / "train.txt", (CRITEO_GOOD + CRITEO_LINE[:40]).encode())
    # nrows stops before the damaged line: those rows are whole, so they are read.
    assert criteo(path=path, nrows=10).meta["all_rows"] == 10
    with pytest.raises(InputFileError, match="line 11"):
        criteo(path=path, nrows=11)


def test_missing_data_file_is_input_file_not_found(tmp_path):
    with pytest.raises(InputFileNotFoundError, match="no file at path"):
        criteo(path=tmp_path / "nothing.txt")
    with pytest.raises(FileNotFoundError):  # still the builtin
        criteo(path=tmp_path / "nothing.txt")


AVAZU_HEADER = "id,click,hour,C1,site_id\n"
AVAZU_ROW = "1,0,14102100,1005,abc\n"


@pytest.mark.parametrize("data, match", [
    (b"", r"tr\.csv: the file is empty \(0 bytes\)"),
    (AVAZU_HEADER.encode(), "holds no data rows"),
    ((AVAZU_HEADER + AVAZU_ROW * 3 + "1,0,1410").encode(), r"line 5 has 3 field\(s\).*expected 5 \(as on line 1\)"),
])
def test_broken_avazu_files(tmp_path, data, match):
    path = write(tmp_path / "tr.csv", data)
    with pytest.raises(InputFileError, match=match):
        avazu(path=path)


def tiny_movielens(folder):
    write(folder / "u.genre", b"unknown|0\nAction|1\n")
    write(folder / "u.item", b"1|Toy|01-Jan-1995||http://x|0|1\n2|Heat|01-Jan-1960||http://y|1|0\n")
    write(folder / "u.user", b"1|24|M|technician|85711\n2|53|F|other|94043\n")
    write(folder / "u.data.gz", gzip.compress(b"1\t1\t5\t881250949\n2\t2\t1\t881250950\n1\t2\t4\t881250951\n"))


def test_movielens_tiny_folder_reads_and_a_cut_file_is_named(tmp_path):
    tiny_movielens(tmp_path)
    assert movielens100k(tmp_path).meta["all_rows"] == 3
    write(tmp_path / "u.user", b"1|24|M|technician|85711\n2|53|F")
    with pytest.raises(InputFileError, match=r"u\.user: line 2 has 3 field\(s\) separated by '\|', expected 5"):
        movielens100k(tmp_path)
    tiny_movielens(tmp_path)
    ratings = "".join(f"1\t2\t{1 + i % 5}\t{881250949 + i * 7919}\n" for i in range(2000)).encode()
    whole = gzip.compress(ratings)
    write(tmp_path / "u.data.gz", whole[: len(whole) // 2])
    with pytest.raises(InputFileError, match=r"u\.data\.gz: .*corrupt or truncated"):
        movielens100k(tmp_path)
    write(tmp_path / "u.data.gz", b"")
    with pytest.raises(InputFileError, match=r"u\.data\.gz: the file is empty \(0 bytes\)"):
        movielens100k(tmp_path)
    tiny_movielens(tmp_path)
    write(tmp_path / "u.user", b"1|24|M|technician|85711\n2|old|F|other|94043\n")
    with pytest.raises(InputFileError, match=r"u\.user: line 2, column 'age': 'old' is not an integer"):
        movielens100k(tmp_path)
    tiny_movielens(tmp_path)
    write(tmp_path / "u.data.gz", gzip.compress(b"1\t1\t5\t881250949\n3\t1\t5\t881250949\n"))
    with pytest.raises(InputFileError, match=r"u\.data\.gz: 1 rating\(s\) name a user_id missing from u\.user"):
        movielens100k(tmp_path)
    tiny_movielens(tmp_path)
    write(tmp_path / "u.data.gz", gzip.compress(b"1\t9\t5\t881250949\n"))
    with pytest.raises(InputFileError, match=r"item_id missing from u\.item \(e\.g\. 9\)"):
        movielens100k(tmp_path)


FRAPPE_RAW = ("user\titem\tcnt\tdaytime\tweekday\tisweekend\thomework\tcost\tweather\tcountry\tcity\n"
              "0\t0\t3\tmorning\tsunday\tweekend\tunknown\tfree\tsunny\tSpain\t0\n"
              "1\t1\t1\tevening\tmonday\tworkday\thome\tpaid\trainy\tIndia\t5\n")
FRAPPE_ROW0 = "1 0:1 2:1 4:1 6:1 8:1 10:1 12:1 14:1 16:1 18:1\n"


def tiny_frappe(folder, valid: bytes, raw: bytes = FRAPPE_RAW.encode()):
    write(folder / "raw" / "frappe.csv.gz", gzip.compress(raw))
    write(folder / "frappe.validation.libfm.gz", valid)
    write(folder / "frappe.test.libfm.gz", gzip.compress(b"-1 1:1 2:1 5:1 7:1 9:1 11:1 13:1 15:1 17:1 19:1\n"))


def test_broken_frappe_files_are_named(tmp_path):
    tiny_frappe(tmp_path, gzip.compress(FRAPPE_ROW0.encode()))
    assert len(frappe(tmp_path).valid) == 1
    tiny_frappe(tmp_path, gzip.compress(FRAPPE_ROW0.encode() * 100)[:30])
    with pytest.raises(InputFileError, match=r"frappe\.validation\.libfm\.gz: .*corrupt or truncated"):
        frappe(tmp_path)
    tiny_frappe(tmp_path, gzip.compress((FRAPPE_ROW0 + FRAPPE_ROW0[:20]).encode()))
    with pytest.raises(InputFileError, match=r"validation\.libfm\.gz: line 2 has 5 feature\(s\)"):
        frappe(tmp_path)
    tiny_frappe(tmp_path, b"")
    with pytest.raises(InputFileError, match="holds no lines"):
        frappe(tmp_path)
    tiny_frappe(tmp_path, gzip.compress(FRAPPE_ROW0.encode()), raw=FRAPPE_RAW.encode()[:-20])
    with pytest.raises(InputFileError, match=r"frappe\.csv\.gz: line 3 has \d+ field\(s\) separated by '\\t', "
                                             r"expected 11"):
        frappe(tmp_path)


# ----------------------------------------------------------------------------------------------------------
# other inputs a tired user gives: documented behaviour, data intact
# ----------------------------------------------------------------------------------------------------------

def test_blank_strings_are_missing_and_strings_are_literal():
    enc = fitted(pd.DataFrame({"c": ["a", "nan", "None"]}), categorical("c"))
    ids = enc.transform(pd.DataFrame({"c": ["", "   ", "\t", None, np.nan, "nan", "None", " a "]})).ids[:, 0]
    # Blank cells are missing; the words "nan" and "None" are ordinary values (pandas' read_csv turns them
    # into NaN on its own when asked to).
    assert ids.tolist() == [MISSING] * 5 + [id_of(enc, "c", "nan"), id_of(enc, "c", "None"), id_of(enc, "c", "a")]


def test_booleans_are_their_own_categories():
    enc = fitted(pd.DataFrame({"c": [True, False, True]}), categorical("c"))
    assert sorted(enc.vocabularies_["c"]) == ["False", "True"]
    # True is "True", never the integer 1, in a bool column, an object column or as text.
    ids = enc.transform(pd.DataFrame({"c": pd.Series([True, "True", 1, pd.NA], dtype=object)})).ids[:, 0]
    assert ids.tolist() == [id_of(enc, "c", "True")] * 2 + [UNKNOWN, MISSING]
    nullable = enc.transform(pd.DataFrame({"c": pd.array([False, None], dtype="boolean")})).ids[:, 0]
    assert nullable.tolist() == [id_of(enc, "c", "False"), MISSING]
    # In a numeric column a boolean is 1.0 or 0.0.
    num = fitted(pd.DataFrame({"n": [True, False]}), numeric("n"))
    assert num.scalers_["n"] == (0.5, 0.5)


def test_unused_categories_of_a_categorical_dtype_are_not_learned():
    col = pd.Categorical(["u", "v", "u"], categories=["u", "v", "never", "1.0"])
    enc = fitted(pd.DataFrame({"c": col}), categorical("c"))
    assert enc.vocabularies_["c"] == ["u", "v"]
    # A categorical column at transform time reads like its plain values.
    ids = enc.transform(pd.DataFrame({"c": pd.Categorical(["v", "never", None], categories=["v", "never"])}))
    assert ids.ids[:, 0].tolist() == [id_of(enc, "c", "v"), UNKNOWN, MISSING]


def test_non_unique_index_encodes_by_position_and_errors_give_the_position():
    frame = pd.DataFrame({"c": ["a", "b", "c"], "n": [1.0, 2.0, 3.0], "y": [0, 1, 0]}, index=[7, 7, 7])
    enc = fitted(frame, categorical("c"), numeric("n"))
    data = enc.transform(frame)
    assert data.ids[:, 0].tolist() == [id_of(enc, "c", v) for v in "abc"] and data.y.tolist() == [0, 1, 0]
    bad = frame.assign(n=[1.0, 2.0, np.inf])
    with pytest.raises(DataError, match=r"row 7 \(position 2\)"):
        enc.transform(bad)


def test_very_long_and_unicode_strings_are_kept_whole(tmp_path):
    long_a, long_b = "x" * 100_000 + "a", "x" * 100_000 + "b"
    # The last two: an emoji, and two lone surrogates that JSON escapes would read back as that emoji.
    odd = ["ville-\u00e9\u4e2d", "\U0001F600", "\ud83d\ude00"]
    # object dtype: pandas 3's pyarrow-backed strings cannot hold lone surrogates at all (pandas itself
    # refuses the frame), so only a Python-object column can bring them to the encoder.
    enc = fitted(pd.DataFrame({"c": pd.Series([long_a, long_b] + odd, dtype=object)}), categorical("c"))
    assert set(enc.vocabularies_["c"]) == {long_a, long_b, *odd}
    enc.save(tmp_path / "enc.json")
    again = FieldEncoder.load(tmp_path / "enc.json")
    assert again.vocabularies_ == enc.vocabularies_ and again.fingerprint() == enc.fingerprint()


def test_float32_and_float64_columns_agree():
    enc = fitted(pd.DataFrame({"c": np.array([0.1, 2.5, 3.0])}), categorical("c"))
    ids = enc.transform(pd.DataFrame({"c": np.array([0.1, 2.5, 3.0], dtype=np.float32)})).ids[:, 0]
    assert ids.tolist() == [id_of(enc, "c", v) for v in ("0.1", "2.5", "3")]


def test_input_frame_is_left_intact_after_a_refusal():
    frame = pd.DataFrame({"c": ["a", "b"], "n": [1.0, np.inf]})
    before = frame.copy(deep=True)
    with pytest.raises(DataError):
        fitted(frame, categorical("c"), numeric("n"))
    pd.testing.assert_frame_equal(frame, before)


def test_every_data_error_is_an_fgraph_error():
    # The CLI prints FgraphError subclasses as one line; these also keep their builtin bases.
    assert issubclass(DataError, (FgraphError, ValueError)) and issubclass(InputFileError, ValueError)
    assert issubclass(InputFileNotFoundError, FileNotFoundError)


# ----------------------------------------------------------------------------------------------------------
# more file and option faults
# ----------------------------------------------------------------------------------------------------------

def criteo_with(tmp_path, line_no: int, edit) -> object:
    lines = [CRITEO_LINE] * 5
    cells = lines[line_no - 1].split("\t")
    edit(cells)
    lines[line_no - 1] = "\t".join(cells)
    return write(tmp_path / "train.txt", ("\n".join(lines) + "\n").encode())


@pytest.mark.parametrize("chunksize", [1_000_000, 2])
def test_criteo_cells_of_the_wrong_type_name_line_and_column(tmp_path, chunksize):
    path = criteo_with(tmp_path, 3, lambda c: c.__setitem__(1, "abc"))
    with pytest.raises(InputFileError, match=r"train\.txt: line 3, column 'I1': 'abc' is not a number"):
        criteo(path=path, chunksize=chunksize)
    path = criteo_with(tmp_path, 2, lambda c: c.__setitem__(0, "300"))
    with pytest.raises(InputFileError, match=r"line 2, column 'label': '300' is not an integer in int8's range"):
        criteo(path=path, chunksize=chunksize)


def test_criteo_file_with_a_header_line(tmp_path):
    header = "\t".join(["label"] + [f"I{i}" for i in range(1, 14)] + [f"C{i}" for i in range(1, 27)])
    path = write(tmp_path / "train.txt", (header + "\n" + CRITEO_GOOD).encode())
    with pytest.raises(InputFileError, match=r"line 1, column 'label': 'label'.*is line 1 a header"):
        criteo(path=path)


def test_duplicate_header_names_are_refused(tmp_path):
    path = write(tmp_path / "tr.csv", ("id,click,hour,C1,C1\n" + "1,0,14102100,1005,abc\n" * 3).encode())
    with pytest.raises(InputFileError, match=r"tr\.csv: the header names the column\(s\) \['C1'\] more than once"):
        avazu(path=path)


@pytest.mark.parametrize("option, value", [("nrows", 2.5), ("nrows", 0), ("chunksize", 0), ("chunksize", 1.5)])
def test_criteo_read_options(tmp_path, option, value):
    path = write(tmp_path / "train.txt", CRITEO_GOOD.encode())
    with pytest.raises(ConfigError, match=rf"'{option}' must be an integer >= 1, got {value!r}"):
        criteo(path=path, **{option: value})


@pytest.mark.parametrize("option, value", [("seed", -1), ("n_samples", 600.5), ("n_samples", 5),
                                           ("cardinality", 1), ("noise", -0.1), ("triple", (0, 1, 99))])
def test_synthetic_options_are_checked(option, value):
    from fgraph.data.datasets import synthetic

    with pytest.raises(ConfigError, match=rf"synthetic option '{option}'.*{value!r}".replace("(", r"\(")
                       .replace(")", r"\)")):
        synthetic(**{option: value})


def test_not_a_frame_is_an_fgraph_error_and_a_type_error():
    with pytest.raises(FgraphError, match="expected a pandas DataFrame, got dict") as info:
        fitted({"c": ["a"]}, categorical("c"))
    assert isinstance(info.value, TypeError)
