"""scikit-learn estimators: any fgraph model as a classifier or a regressor on a DataFrame.

::

    from fgraph.sklearn import FGraphClassifier

    clf = FGraphClassifier("fm", embed_dim=8).fit(X_train, y_train)      # X: a DataFrame of mixed columns
    clf.predict_proba(X_test)[:, 1]

Each estimator is a thin layer over fgraph's own pieces -- the schema inference of
:func:`fgraph.data.infer_schema` (or the ``schema`` given), a :class:`~fgraph.data.FieldEncoder`,
:func:`fgraph.models.build_model` and the one training engine, :class:`fgraph.train.Trainer` -- with
scikit-learn's conventions on top: parameters stored as given in ``__init__`` and checked in ``fit``; learned
state in attributes ending in ``_``; ``clone``, ``get_params``/``set_params`` (the keys of ``model_options``
and ``train_options`` too, as ``model_options__embed_dim``), pipelines, cross-validation and grid search.

Early stopping uses an internal, seeded split of ``X`` (``validation_fraction``); the weights of the best
validated epoch are kept. Numpy arrays are accepted as well (their columns are named ``x0``, ``x1`` ...).

Which of scikit-learn's estimator checks are expected to fail, and why, is :data:`SKIPPED_CHECKS`.
"""
from __future__ import annotations

import contextlib
import inspect
import io
import math
import warnings
from collections.abc import Mapping
from dataclasses import fields as dc_fields, replace

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_array, check_consistent_length, check_is_fitted, column_or_1d

from ._validate import as_bool, as_float, as_int
from .data import FieldEncoder, Schema, UnknownValuesWarning
from .data.files import _as_spec, infer_schema
from .errors import ConfigError, DataError
from .models import MODELS, build_model
from .train import TrainConfig, Trainer

__all__ = ["FGraphClassifier", "FGraphRegressor", "SKIPPED_CHECKS", "expected_failed_checks"]

#: scikit-learn's estimator checks that these estimators are expected to fail, ``{check name: reason}``: what
#: tests/test_sklearn.py skips (and hands ``parametrize_with_checks(..., expected_failed_checks=...)`` on
#: scikit-learn >= 1.6, strictly, so that a check that starts to pass is noticed). Empty: every check passes,
#: on scikit-learn 1.4.2 as on 1.9.1. (``check_array_api_input`` is skipped by scikit-learn itself unless
#: SCIPY_ARRAY_API is set; these estimators declare no array-API support.)
SKIPPED_CHECKS: dict[str, str] = {}

# -- scikit-learn version differences ------------------------------------------------------------------------
# The supported range is scikit-learn>=1.4,<2. In 1.6 ``validate_data`` and the feature-name checks became
# functions (the estimator methods went away in 1.8), ``check_array``'s ``force_all_finite`` became
# ``ensure_all_finite``, and tags moved from ``_more_tags`` to ``__sklearn_tags__``.
try:
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # scikit-learn < 1.6
    def _validate_data(estimator, X="no_validation", y="no_validation", **kwargs):
        return estimator._validate_data(X, y, **kwargs)

_FINITE = "ensure_all_finite" if "ensure_all_finite" in inspect.signature(check_array).parameters \
    else "force_all_finite"


def _check_names_and_width(estimator, X: pd.DataFrame, reset: bool) -> None:
    """scikit-learn's own checks of a DataFrame's feature names and column count (set at fit, compared after)."""
    try:
        from sklearn.utils.validation import _check_feature_names, _check_n_features
    except ImportError:  # scikit-learn < 1.6
        estimator._check_feature_names(X, reset=reset)
        estimator._check_n_features(X, reset=reset)
    else:
        _check_feature_names(estimator, X, reset=reset)
        _check_n_features(estimator, X, reset=reset)


#: TrainConfig fields the estimators set from their own parameters (so ``train_options`` may not hold them).
_OWN_TRAIN_OPTIONS = ("epochs", "batch_size", "lr", "optimizer", "weight_decay", "patience", "seed", "device",
                      "threads", "progress", "task")
_NESTED = ("model_options", "train_options")
_LABEL = "__fgraph_label__"


class _FGraphEstimator(BaseEstimator):
    """What the classifier and the regressor share (parameters in :class:`FGraphClassifier`)."""

    _task = "binary"

    def __init__(self, model="fm", *, embed_dim=None, epochs=30, batch_size=256, lr=0.01, optimizer="adam",
                 weight_decay=0.0, patience=3, min_count=1, model_options=None, train_options=None, schema=None,
                 validation_fraction=0.1, random_state=0, device="cpu", threads=None, verbose=False):
        self.model = model
        self.embed_dim = embed_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.patience = patience
        self.min_count = min_count
        self.model_options = model_options
        self.train_options = train_options
        self.schema = schema
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.device = device
        self.threads = threads
        self.verbose = verbose

    # -- parameters ---------------------------------------------------------------------------------------------
    def get_params(self, deep=True):
        """The parameters; with ``deep``, also each key of ``model_options`` / ``train_options`` as
        ``model_options__<key>``, so that a grid search can vary one of them."""
        params = super().get_params(deep=deep)
        if deep:
            for name in _NESTED:
                value = getattr(self, name, None)
                if isinstance(value, Mapping):
                    params.update({f"{name}__{k}": v for k, v in value.items()})
        return params

    def set_params(self, **params):
        """Set parameters; ``model_options__embed_dim=8`` sets one key of ``model_options`` (in a new dict:
        the one given before is not changed)."""
        nested, plain = {}, {}
        for key, value in params.items():
            head, sep, sub = key.partition("__")
            if sep and head in _NESTED:
                nested.setdefault(head, {})[sub] = value
            else:
                plain[key] = value
        super().set_params(**plain)
        for head, update in nested.items():
            current = getattr(self, head)
            if current is not None and not isinstance(current, Mapping):
                raise ValueError(f"cannot set {head}__{next(iter(update))}: {head} is {current!r}, not a mapping")
            setattr(self, head, {**(current or {}), **update})
        return self

    # -- tags ---------------------------------------------------------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True       # a missing value is a value of its own to the encoder
        tags.input_tags.string = True          # text columns are categorical fields
        tags.input_tags.categorical = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"allow_nan": True, "X_types": ["2darray", "categorical", "string"]}

    # -- checking what fit is given -----------------------------------------------------------------------------
    def _checked_options(self) -> tuple[TrainConfig, dict, float, int]:
        """The training configuration, the model options, the validation fraction and the seed, checked."""
        if not isinstance(self.model, str) or self.model.lower() not in MODELS:
            raise ConfigError(f"{type(self).__name__} parameter 'model' is {self.model!r}; choose one of "
                              f"{sorted(MODELS)}")
        where = type(self).__name__
        vf = as_float("validation_fraction", self.validation_fraction, minimum=0.0, maximum=1.0, where=where)
        if vf >= 1.0:
            raise ConfigError(f"{where} parameter 'validation_fraction' must be >= 0 and < 1 (0: no early stopping), "
                              f"got {self.validation_fraction!r}")
        model_options = _mapping("model_options", self.model_options, where)
        if self.embed_dim is not None:
            if "embed_dim" in model_options and model_options["embed_dim"] != self.embed_dim:
                raise ConfigError(f"{where}: embed_dim is given twice, {self.embed_dim!r} (embed_dim) and "
                                  f"{model_options['embed_dim']!r} (model_options); keep one")
            model_options["embed_dim"] = self.embed_dim
        train_options = _mapping("train_options", self.train_options, where)
        own = sorted(set(train_options) & set(_OWN_TRAIN_OPTIONS))
        if own:
            raise ConfigError(f"{where}: train_options holds {own}, which are parameters of the estimator itself; "
                              f"set them there (e.g. {where}(..., {own[0]}=...))")
        known = {f.name for f in dc_fields(TrainConfig)}
        unknown = sorted(set(train_options) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown training option(s) {unknown} in train_options; it takes "
                              f"{sorted(known - set(_OWN_TRAIN_OPTIONS))}")
        if isinstance(self.random_state, (bool, np.bool_)):
            raise ConfigError(f"{where} parameter 'random_state' must be None, an int or a RandomState, got "
                              f"{self.random_state!r}")
        if self.random_state is None or isinstance(self.random_state, np.random.RandomState):
            seed = int(check_random_state(self.random_state).randint(2 ** 31 - 1))
        else:
            seed = as_int("random_state", self.random_state, minimum=0, maximum=2 ** 63 - 1, where=where)
        as_int("threads", self.threads, minimum=1, allow_none=True, where=where)
        verbose = as_bool("verbose", self.verbose, where=where)
        if self._task == "binary":
            # Log loss, not AUC: it is defined on any validation split, even one that holds a single class.
            train_options.setdefault("monitor", "logloss")
        config = TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, optimizer=self.optimizer,
                             weight_decay=self.weight_decay, patience=self.patience, seed=seed, device=self.device,
                             threads=None, progress=verbose, task=self._task, **train_options)
        return config, model_options, vf, seed

    def _frame(self, X, reset: bool) -> pd.DataFrame:
        """``X`` as a DataFrame whose columns are the names fit used (x0, x1 ... for arrays), after
        scikit-learn's checks of its shape, its feature names and (for arrays) its values."""
        if isinstance(X, pd.DataFrame):
            _check_names_and_width(self, X, reset=reset)
            if X.shape[1] == 0 or X.shape[0] == 0:
                raise DataError(f"{type(self).__name__} needs at least one row and one column; got X of shape "
                                f"{X.shape} (0 sample(s) or 0 feature(s))")
            names = [str(c) for c in X.columns] if all(isinstance(c, str) for c in X.columns) else \
                [f"x{i}" for i in range(X.shape[1])]
            frame = X.set_axis(names, axis=1).reset_index(drop=True)
        else:
            arr = _validate_data(self, X, reset=reset, dtype=None, accept_sparse=False, ensure_2d=True,
                                 ensure_min_samples=1, **{_FINITE: "allow-nan"})
            if arr.dtype.kind == "c":
                raise DataError("complex numbers are not supported: give their real and imaginary parts as two "
                                "columns")
            names = [f"x{i}" for i in range(arr.shape[1])]
            # An object array of numbers (a list of lists, say) becomes numeric columns; text stays text.
            frame = pd.DataFrame(arr, columns=names).infer_objects()
        if reset:
            self._columns = list(frame.columns)
        else:
            frame = frame.set_axis(self._columns, axis=1)
        return frame

    def _label_name(self) -> str:
        label = _LABEL
        while label in self._columns:
            label += "_"
        return label

    def _schema(self, frame: pd.DataFrame, label: str) -> Schema:
        if self.schema is None:
            return infer_schema(frame.assign(**{label: 0}), label)
        spec = _as_spec(self.schema)
        # The schema's own label names a column of some file; here the label is y.
        spec = replace(spec, label=None)
        spec.check_columns(list(frame.columns), "X")
        if spec.others == "drop":
            return Schema(spec.fields, label=label)
        return infer_schema(frame.assign(**{label: 0}), label, spec=spec)

    # -- fitting ------------------------------------------------------------------------------------------------
    def _fit(self, frame: pd.DataFrame, options: tuple, y_numbers: np.ndarray, stratify: np.ndarray | None):
        """Fit on ``frame`` (``X`` checked by :meth:`_start_fit`, with its ``options``) and labels ``y_numbers``
        (0/1, or standardised targets)."""
        config, model_options, vf, seed = options
        label = self._label_name()
        n = len(frame)
        rows = np.arange(n)
        if vf > 0:
            n_valid = math.ceil(n * vf)
            if n_valid < 1 or n - n_valid < 1:
                raise DataError(f"{n} sample(s) are too few for early stopping on a validation_fraction="
                                f"{vf:g} split; set validation_fraction=0 to train all {config.epochs} epochs")
            strat = stratify if stratify is not None and _can_stratify(stratify, n_valid) else None
            train_rows, valid_rows = train_test_split(rows, test_size=n_valid, random_state=seed, stratify=strat)
            train_rows, valid_rows = np.sort(train_rows), np.sort(valid_rows)
        else:
            train_rows, valid_rows = rows, None
        labelled = frame.assign(**{label: y_numbers})
        train_frame = labelled.iloc[train_rows].reset_index(drop=True)
        schema = self._schema(train_frame.drop(columns=[label]), label)
        encoder = FieldEncoder(schema, min_count=self.min_count).fit(train_frame)
        train_data = encoder.transform(train_frame)
        valid_data = None
        if valid_rows is not None:
            with warnings.catch_warnings():
                # Values only the validation rows have are expected in a split this small; the warning's advice
                # (about columns prepared differently) does not apply to rows of the same X.
                warnings.simplefilter("ignore", UnknownValuesWarning)
                valid_data = encoder.transform(labelled.iloc[valid_rows].reset_index(drop=True))
        devices = [] if torch.device(config.device).type != "cuda" else [torch.device(config.device).index or 0]
        with self._threads(), torch.random.fork_rng(devices=devices), self._quiet():
            # A private random state: the model's initial weights repeat with random_state, and the caller's
            # torch random numbers are left as they were.
            torch.manual_seed(seed)
            net = build_model(self.model.lower(), encoder.space_, **model_options)
            trainer = Trainer(net, config, encoder=encoder)
            trainer.fit(train_data, valid_data)
        self.model_ = net.cpu().eval()
        self.encoder_ = encoder
        self.schema_ = schema
        self.train_config_ = config
        self.history_ = list(trainer.history)
        self.n_iter_ = int(trainer.epoch)
        self.best_epoch_ = trainer.best_epoch if valid_data is not None else trainer.epoch
        return self

    def _start_fit(self, X, y) -> tuple[pd.DataFrame, tuple]:
        """``X`` as a checked frame and the checked parameters (see :meth:`_checked_options`)."""
        if y is None:
            raise DataError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        options = self._checked_options()
        frame = self._frame(X, reset=True)
        check_consistent_length(frame, y)
        return frame, options

    @contextlib.contextmanager
    def _threads(self):
        """``threads`` torch threads while fitting or predicting; the caller's setting afterwards."""
        before = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(int(self.threads))
        try:
            yield
        finally:
            torch.set_num_threads(before)

    @contextlib.contextmanager
    def _quiet(self):
        """The Trainer prints a line per epoch; only with ``verbose`` does it reach the caller's stdout."""
        if self.verbose:
            yield
        else:
            with contextlib.redirect_stdout(io.StringIO()):
                yield

    # -- predicting ---------------------------------------------------------------------------------------------
    def _raw(self, X) -> np.ndarray:
        """The model's raw output (logits, or standardised predictions) for every row of ``X``."""
        check_is_fitted(self, "model_")
        frame = self._frame(X, reset=False)
        data = self.encoder_.transform(frame)
        cfg = self.train_config_
        # A scoring Trainer of task "regression" returns the model's outputs as they are (a binary one would
        # return sigmoid probabilities, which saturate to exactly 0 or 1 in float32 and lose the ranking).
        scorer = Trainer(self.model_, TrainConfig(task="regression", batch_size=cfg.batch_size,
                                                  eval_batch_size=cfg.eval_batch_size, device=cfg.device,
                                                  progress=False), initialize=False)
        try:
            with self._threads():
                out = scorer.predict(data, name="X")
        finally:
            self.model_.cpu()
        return out.astype(np.float64)


def _mapping(name: str, value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} parameter {name!r} must be a mapping of option names to values, got "
                          f"{type(value).__name__} {value!r}")
    return dict(value)


def _can_stratify(y: np.ndarray, n_valid: int) -> bool:
    _, counts = np.unique(y, return_counts=True)
    return len(counts) > 1 and counts.min() >= 2 and len(counts) <= n_valid <= len(y) - len(counts)


class FGraphClassifier(ClassifierMixin, _FGraphEstimator):
    """A binary classifier: any fgraph model (``"fm"``, ``"graphfm"``, ``"fignn"`` ...) trained by fgraph's
    Trainer on a DataFrame of categorical, numeric and multi-valued columns.

    Args:
        model: a registered model name (:data:`fgraph.models.MODELS`).
        embed_dim: embedding size (the model's default when None).
        epochs: the most epochs to train (all of them when ``validation_fraction=0``).
        batch_size: rows per training batch.
        lr: learning rate.
        optimizer: a ``torch.optim`` optimiser name.
        weight_decay: L2 on the non-embedding weights.
        patience: epochs without a better validation log loss before stopping.
        min_count: values seen fewer times in the training rows share the "rare" id.
        model_options: more model hyperparameters (e.g. ``{"num_layers": 2}``).
        train_options: more :class:`~fgraph.train.TrainConfig` options (``grad_clip``, ``monitor``,
            ``embedding_regularizer`` ...); not those set by the parameters above.
        schema: how the columns are encoded: a :class:`~fgraph.data.Schema` (its label is ignored: the label
            is ``y``), a :class:`~fgraph.data.SchemaSpec`, a mapping in the schema-file format or the path of
            a schema file (partial ones override the inference for the columns they list). Default: inferred
            from the training rows of ``X`` (:func:`fgraph.data.infer_schema`).
        validation_fraction: the share of ``X`` held out (seeded, stratified when possible) for early
            stopping and for choosing the epoch whose weights are kept; 0: no early stopping.
        random_state: seeds the split, the initial weights and the batch order (an int, None or a RandomState).
        device: the torch device.
        threads: torch threads while fitting and predicting (the caller's setting is restored).
        verbose: print each epoch's line and a progress bar.

    Attributes:
        classes_: the two labels, sorted; ``classes_[1]`` is the positive class.
        model_: the trained :class:`~fgraph.models.CTRModel` (best weights), on the CPU.
        encoder_: the fitted :class:`~fgraph.data.FieldEncoder`.
        schema_: the schema used (its label is an internal column name).
        history_: one record per epoch (training loss, validation metrics).
        best_epoch_: the epoch whose weights are kept (the last one without early stopping).
        n_iter_: the epochs run.
        n_features_in_, feature_names_in_: as in scikit-learn (names only for DataFrames of string columns).
    """

    _task = "binary"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {**super()._more_tags(), "binary_only": True}

    def fit(self, X, y):
        """Fit on ``X`` (a DataFrame, or an array-like) and labels ``y`` of two classes. Returns ``self``.

        Raises:
            DataError: ``y`` has one class, or more than two (``Only binary classification is supported``).
            ConfigError: a bad parameter (named).
        """
        frame, options = self._start_fit(X, y)
        y = column_or_1d(check_array(y, ensure_2d=False, dtype=None, **{_FINITE: True}), warn=True)
        check_classification_targets(y)
        kind = type_of_target(y, input_name="y")
        classes = np.unique(y)
        if kind != "binary":
            raise DataError(f"Only binary classification is supported. The type of the target is {kind} "
                            f"({len(classes)} classes: {list(classes[:6])}); {type(self).__name__} learns two "
                            f"classes: merge classes, or train one classifier per class")
        if len(classes) < 2:
            raise DataError(f"{type(self).__name__} needs samples of 2 classes; y has only one class "
                            f"({classes[0]!r})")
        y01 = (y == classes[1]).astype(np.float32)
        self._fit(frame, options, y01, stratify=y01)
        self.classes_ = classes
        return self

    def decision_function(self, X) -> np.ndarray:
        """The logit of the positive class ``classes_[1]``, one per row."""
        return self._raw(X)

    def predict_proba(self, X) -> np.ndarray:
        """``(n, 2)``: the probabilities of ``classes_[0]`` and ``classes_[1]``."""
        from scipy.special import expit

        p = expit(self._raw(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        """The more likely label of each row (``classes_[1]`` when the logit is > 0)."""
        positive = self._raw(X) > 0   # first: it checks that the estimator is fitted
        return self.classes_[positive.astype(int)]


class FGraphRegressor(RegressorMixin, _FGraphEstimator):
    """A regressor: any fgraph model trained by fgraph's Trainer with squared error.

    The parameters are those of :class:`FGraphClassifier` (``patience`` counts epochs without a better
    validation RMSE). The target is standardised for training (``y_mean_``, ``y_scale_``) and the predictions
    mapped back, so that the learning rate fits any scale of ``y``; ``history_``'s losses and RMSEs are in
    standardised units.

    Attributes:
        model_, encoder_, schema_, history_, best_epoch_, n_iter_, n_features_in_, feature_names_in_: as for
            the classifier.
        y_mean_, y_scale_: the mean and standard deviation (1 when 0) of the training targets.
    """

    _task = "regression"

    def fit(self, X, y):
        """Fit on ``X`` (a DataFrame, or an array-like) and numeric targets ``y``. Returns ``self``."""
        frame, options = self._start_fit(X, y)
        y = column_or_1d(check_array(y, ensure_2d=False, dtype="numeric", **{_FINITE: True}),
                         warn=True).astype(np.float64)
        mean, std = float(y.mean()), float(y.std())
        scale = std if std > 0 else 1.0
        if std == 0 and "divergence_factor" not in (self.train_options or {}):
            # Every target is the same, so the standardised ones are all 0 and the first batch's loss is ~0:
            # the blow-up check, a multiple of that loss, would stop a run whose loss merely wobbles.
            options = (replace(options[0], divergence_factor=None), *options[1:])
        self._fit(frame, options, ((y - mean) / scale).astype(np.float32), stratify=None)
        self.y_mean_, self.y_scale_ = mean, scale
        return self

    def predict(self, X) -> np.ndarray:
        """The predicted target of each row."""
        check_is_fitted(self, "y_mean_")
        return self._raw(X) * self.y_scale_ + self.y_mean_


def expected_failed_checks(estimator) -> dict[str, str]:
    """The estimator checks ``estimator`` is expected to fail: ``{check name: reason}`` (for
    ``sklearn.utils.estimator_checks.parametrize_with_checks(..., expected_failed_checks=...)``)."""
    return dict(SKIPPED_CHECKS)
