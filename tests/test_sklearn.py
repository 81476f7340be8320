"""The scikit-learn estimators: scikit-learn's own estimator checks, learning known structure in pipelines,
cross-validation and grid search, and the parameter conventions."""
import inspect
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
import torch
from sklearn.base import clone
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from fgraph.errors import ColumnNotFoundError, ConfigError, DataError
from fgraph.sklearn import SKIPPED_CHECKS, FGraphClassifier, FGraphRegressor, expected_failed_checks

pytestmark = pytest.mark.usefixtures("one_thread")

#: Small and quick: scikit-learn's checks fit on a few hundred rows, many times.
FAST = dict(embed_dim=4, epochs=5, batch_size=32, lr=0.05)
CHECKED = [FGraphClassifier(**FAST, validation_fraction=0.2), FGraphRegressor(**FAST, validation_fraction=0.0)]

_SKLEARN_16 = tuple(int(p) for p in sklearn.__version__.split(".")[:2]) >= (1, 6)
_check_options = {}
if _SKLEARN_16:
    _check_options["expected_failed_checks"] = expected_failed_checks
    if "xfail_strict" in inspect.signature(parametrize_with_checks).parameters:
        _check_options["xfail_strict"] = True


@parametrize_with_checks(CHECKED, **_check_options)
def test_scikit_learn_estimator_checks(estimator, check):
    name = getattr(check, "func", check).__name__
    if name in SKIPPED_CHECKS:   # scikit-learn < 1.6 has no expected_failed_checks
        pytest.skip(SKIPPED_CHECKS[name])
    check(estimator)


# -- data with known structure ------------------------------------------------------------------------------------

def xor_frame(n=3000, seed=0, noise=0.1):
    """The label is the XOR of the parities of two categorical columns (flipped for a share ``noise`` of the
    rows), so no column alone says anything; two more columns are pure noise. Labels are "yes"/"no"."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 4, n), rng.integers(0, 4, n)
    y = (a % 2) ^ (b % 2)
    y = np.where(rng.random(n) < noise, 1 - y, y)
    X = pd.DataFrame({"a": [f"a{v}" for v in a], "b": [f"b{v}" for v in b],
                      "noise_int": rng.integers(0, 5, n), "noise_float": rng.normal(size=n)})
    return X, np.where(y == 1, "yes", "no")


def auc(clf, X, y):
    return roc_auc_score(y == clf.classes_[1], clf.predict_proba(X)[:, 1])


def test_classifier_learns_an_interaction_no_single_column_shows():
    X, y = xor_frame()
    X_test, y_test = xor_frame(seed=1)
    clf = FGraphClassifier("fm", embed_dim=4).fit(X, y)
    # 10% of the labels flipped: the best possible AUC is 0.9. A model without interactions has nothing.
    assert auc(clf, X_test, y_test) > 0.85
    linear = FGraphClassifier("lr").fit(X, y)
    assert abs(auc(linear, X_test, y_test) - 0.5) < 0.05
    assert list(clf.classes_) == ["no", "yes"]
    assert set(clf.predict(X_test)) <= {"no", "yes"}
    assert clf.score(X_test, y_test) > 0.85
    proba = clf.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # predict, predict_proba and decision_function agree.
    logit = clf.decision_function(X_test)
    np.testing.assert_array_equal(clf.predict(X_test), clf.classes_[(logit > 0).astype(int)])
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-logit)), rtol=1e-6)


def test_pipeline_and_cross_validation():
    X, y = xor_frame(n=2400)
    pipe = Pipeline([("drop_noise", FunctionTransformer(lambda f: f.drop(columns=["noise_float"]))),
                     ("fgraph", FGraphClassifier(embed_dim=4, epochs=15))])
    scores = cross_val_score(pipe, X, y, cv=KFold(3, shuffle=True, random_state=0), scoring="roc_auc")
    assert scores.shape == (3,) and scores.min() > 0.8


def test_grid_search_picks_the_learning_rate_that_learns_and_sets_nested_options():
    X, y = xor_frame(n=1500)
    grid = GridSearchCV(FGraphClassifier(epochs=8, validation_fraction=0.0),
                        {"lr": [1e-5, 0.03], "model_options__embed_dim": [2, 4]}, cv=2, scoring="roc_auc")
    grid.fit(X, y)
    assert grid.best_params_["lr"] == 0.03          # 1e-5 for 8 epochs leaves the weights near their start
    assert grid.best_score_ > 0.8
    best = grid.best_estimator_
    assert best.model_.hparams["embed_dim"] == grid.best_params_["model_options__embed_dim"]


def test_regressor_learns_a_product_of_two_columns_on_any_scale():
    def frame(n, seed):
        r = np.random.default_rng(seed)
        X = pd.DataFrame({"u": r.normal(size=n), "v": r.normal(size=n), "c": r.choice(list("pqr"), n),
                          "noise": r.normal(size=n)})
        y = X["u"] * X["v"] + (X["c"] == "p") + 0.1 * r.normal(size=n)
        return X, y.to_numpy()

    X, y = frame(3000, 0)
    X_test, y_test = frame(1000, 1)
    reg = FGraphRegressor(embed_dim=4, epochs=40).fit(X, y)
    assert r2_score(y_test, reg.predict(X_test)) > 0.8
    # The target is standardised inside: on another scale the same model comes out, in the target's units.
    big = FGraphRegressor(embed_dim=4, epochs=40).fit(X, 1000 * y + 50)
    np.testing.assert_allclose(big.predict(X_test), 1000 * reg.predict(X_test) + 50, rtol=1e-3, atol=1.0)


# -- inputs --------------------------------------------------------------------------------------------------------

def mixed_frame(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "text": rng.choice(["red", "green", None], n),
        "count": pd.array(rng.integers(0, 4, n), dtype="Int64"),
        "flag": rng.random(n) < 0.3,
        "cat": pd.Categorical(rng.choice(["x", "y"], n)),
        "amount": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
        "tags": ["|".join(rng.choice(list("abcd"), 2, replace=False)) for _ in range(n)],
    })
    X.loc[3, "count"] = pd.NA
    y = ((X["text"] == "red") ^ X["flag"]).astype(int).to_numpy()
    return X, y


def test_mixed_dtypes_frames_numpy_arrays_and_feature_names():
    X, y = mixed_frame()
    clf = FGraphClassifier(**FAST).fit(X, y)
    kinds = {f.name: f.kind for f in clf.schema_.fields}
    assert kinds == {"text": "categorical", "count": "categorical", "flag": "categorical", "cat": "categorical",
                     "amount": "numeric", "tags": "multi"}
    assert list(clf.feature_names_in_) == list(X.columns) and clf.n_features_in_ == 6
    assert clf.predict_proba(X).shape == (len(X), 2)
    assert list(clf.classes_) == [0, 1]

    arr = np.column_stack([np.arange(200) % 3, np.linspace(0, 1, 200)])
    target = (arr[:, 0] == 1).astype(int)
    clf = FGraphClassifier(**FAST).fit(arr, target)
    assert not hasattr(clf, "feature_names_in_") and clf.schema_.names == ["x0", "x1"]
    assert clf.predict(arr).shape == (200,)
    with pytest.raises(ValueError, match="X has 3 features, but FGraphClassifier is expecting 2"):
        clf.predict(np.zeros((2, 3)))


def test_multiclass_and_one_class_targets_are_refused_clearly():
    X, _ = mixed_frame(n=60)
    with pytest.raises(DataError, match="Only binary classification is supported. The type of the target is "
                                        "multiclass"):
        FGraphClassifier(**FAST).fit(X, np.arange(60) % 3)
    with pytest.raises(DataError, match="y has only one class"):
        FGraphClassifier(**FAST).fit(X, np.ones(60))
    with pytest.raises(DataError, match="requires y to be passed"):
        FGraphClassifier(**FAST).fit(X, None)


def test_fit_is_deterministic_given_random_state_and_leaves_the_callers_random_state():
    X, y = mixed_frame()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = FGraphClassifier(**FAST, random_state=7).fit(X, y).predict_proba(X)
    assert torch.equal(torch.get_rng_state(), state)
    b = FGraphClassifier(**FAST, random_state=7).fit(X, y).predict_proba(X)
    c = FGraphClassifier(**FAST, random_state=8).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_early_stopping_and_training_every_epoch():
    X, y = xor_frame(n=1000)
    stopped = FGraphClassifier(epochs=60, patience=2, lr=0.05).fit(X, y)
    assert stopped.n_iter_ < 60 and stopped.best_epoch_ <= stopped.n_iter_
    assert all("valid_logloss" in r for r in stopped.history_) and len(stopped.history_) == stopped.n_iter_
    # The kept epoch is the one with the best validation log loss.
    best = min(stopped.history_, key=lambda r: r["valid_logloss"])["epoch"]
    assert stopped.best_epoch_ == best
    full = FGraphClassifier(epochs=4, validation_fraction=0).fit(X, y)
    assert full.n_iter_ == 4 and full.best_epoch_ == 4 and "valid_logloss" not in full.history_[-1]


def test_schema_parameter_overrides_the_inference():
    X, y = mixed_frame()
    clf = FGraphClassifier(**FAST, schema={"fields": {"amount": {"kind": "numeric", "treatment": "bucket",
                                                                 "buckets": [4]}}, "drop": ["tags"]}).fit(X, y)
    assert clf.schema_["amount"].treatment == "bucket" and "tags" not in clf.schema_.names
    assert clf.schema_["text"].kind == "categorical"          # still inferred
    with pytest.raises(ColumnNotFoundError, match=r"the schema lists field\(s\) \['nope'\], which X does not have"):
        FGraphClassifier(**FAST, schema={"fields": ["nope"]}).fit(X, y)


# -- parameters ----------------------------------------------------------------------------------------------------

def test_parameters_are_stored_as_given_and_checked_in_fit():
    options = {"embed_dim": 3}
    clf = FGraphClassifier(model="nope", lr=-1, model_options=options)     # no error here
    assert clf.get_params()["model"] == "nope" and clf.model_options is options
    twin = clone(clf)
    assert twin.get_params(deep=False).keys() == clf.get_params(deep=False).keys()
    assert twin.get_params()["model_options__embed_dim"] == 3
    X, y = mixed_frame(n=80)
    bad = [(dict(model="nope"), "parameter 'model' is 'nope'"),
           (dict(lr=-1), "training option 'lr'"),
           (dict(validation_fraction=1.0), "validation_fraction"),
           (dict(train_options={"epochs": 3}), r"train_options holds \['epochs'\]"),
           (dict(train_options={"epohcs": 3}), r"unknown training option\(s\) \['epohcs'\]"),
           (dict(embed_dim=4, model_options={"embed_dim": 8}), "embed_dim is given twice"),
           (dict(model_options={"heads": 2}), r"model 'fm' does not take option\(s\) \['heads'\]"),
           (dict(random_state=True), "random_state")]
    for params, message in bad:
        with pytest.raises(ConfigError, match=message):
            FGraphClassifier(**{**FAST, **params}).fit(X, y)


def test_nested_set_params_does_not_change_the_dict_given():
    options = {"embed_dim": 3}
    clf = FGraphClassifier(model_options=options)
    clf.set_params(model_options__embed_dim=5, train_options__grad_clip=1.0, lr=0.1)
    assert options == {"embed_dim": 3}
    assert clf.model_options == {"embed_dim": 5} and clf.train_options == {"grad_clip": 1.0} and clf.lr == 0.1
    X, y = mixed_frame(n=100)
    clf.set_params(epochs=2).fit(X, y)
    assert clf.model_.hparams["embed_dim"] == 5 and clf.train_config_.grad_clip == 1.0


def test_quiet_unless_verbose_threads_restored_and_pickle(capsys):
    X, y = mixed_frame(n=120)
    before = torch.get_num_threads()
    clf = FGraphClassifier(**FAST, threads=2).fit(X, y)
    assert torch.get_num_threads() == before
    assert capsys.readouterr().out == ""
    FGraphClassifier(**{**FAST, "epochs": 2}, verbose=True).fit(X, y)
    assert "epoch   2" in capsys.readouterr().out
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    with warnings.catch_warnings():
        warnings.simplefilter("error")     # no warning for the frame it was fitted on
        clf.predict(X)
