"""FIVES as a feature generator: a scikit-learn transformer adding the crossed columns FIVES finds (FIVES+LR)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted

from ..data.encoder import FieldEncoder
from ..data.schema import Schema, categorical
from ..data.space import PAD, SCALED_MISSING
from ..models.fives import FIVES
from ..train.trainer import TrainConfig, Trainer, seed_everything
from .cross_features import fives_interactions

_RESERVED = np.array(["<missing>", "<unknown>", "<rare>"], dtype=object)


class FIVESCrossFeatures(TransformerMixin, BaseEstimator):
    """Adds the ``top_n`` interactive features FIVES finds to a DataFrame as categorical string columns.

    ``fit`` trains a :class:`~fgraph.models.FIVES` model on ``(X, y)`` (or takes a trained one with its
    encoder) and reads its explicit interactive features (Section 2.5). ``transform`` returns a copy of ``X``
    with one new column per feature, named by its fields joined with ``sep`` (e.g. ``city×weekday``) and
    holding the fields' values joined the same way (e.g. ``Paris×Monday``). Followed by a one-hot encoder and
    scikit-learn's ``LogisticRegression`` this is FIVES+LR (Table 3).

    Values are read through the encoder, so a value never seen in training becomes ``<unknown>``, a missing
    one ``<missing>`` and a rare one ``<rare>``; a bucketised numeric node gives its bucket; a multi-valued
    field gives its tokens joined by ``|``.

    Args:
        top_n: how many interactive features to add (the strongest; fewer if FIVES finds fewer).
        model: a trained FIVES model to read the features from instead of training one (needs ``encoder``).
        encoder: the fitted :class:`~fgraph.data.FieldEncoder` of ``model``.
        thresholds: binarisation thresholds per order (default: the model's).
        max_order: keep features of at most this order (default: all the model has).
        schema: the :class:`~fgraph.data.Schema` of ``X`` when training (default: every column categorical).
        model_options: keyword arguments of :class:`~fgraph.models.FIVES` when training.
        train_options: :class:`~fgraph.train.TrainConfig` fields when training (``epochs``, ``batch_size``...).
        validation_fraction: share of ``X`` held out for the search step on the adjacency (Algorithm 1) and
            early stopping.
        min_count: the encoder's ``min_count`` when training.
        random_state: seeds the split and the training.
        sep: joins field names and values.

    Attributes:
        model_: the FIVES model the features come from.
        encoder_: its encoder.
        interactions_: every interactive feature found, ``[(fields, score), ...]``, strongest first.
        features_: the ``top_n`` kept ones.
        new_columns_: the names of the added columns.
        feature_names_in_, n_features_in_: the input columns.
    """

    def __init__(self, top_n: int = 5, model: FIVES | None = None, encoder: FieldEncoder | None = None,
                 thresholds: float | Sequence[float] | None = None, max_order: int | None = None,
                 schema: Schema | None = None, model_options: dict | None = None, train_options: dict | None = None,
                 validation_fraction: float = 0.1, min_count: int = 1, random_state: int = 0, sep: str = "×"):
        self.top_n = top_n
        self.model = model
        self.encoder = encoder
        self.thresholds = thresholds
        self.max_order = max_order
        self.schema = schema
        self.model_options = model_options
        self.train_options = train_options
        self.validation_fraction = validation_fraction
        self.min_count = min_count
        self.random_state = random_state
        self.sep = sep

    # -- fitting --------------------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y=None, validation_data: tuple | None = None) -> "FIVESCrossFeatures":
        """Train FIVES on ``X`` and the 0/1 labels ``y`` (or take the given model) and pick the features.

        ``validation_data=(X_valid, y_valid)`` gives the rows the adjacency search and early stopping use;
        without it ``validation_fraction`` of ``X`` is held out.
        """
        self._check_frame(X, "fit")
        if not isinstance(self.top_n, (int, np.integer)) or isinstance(self.top_n, bool) or self.top_n < 1:
            raise ValueError(f"top_n must be an integer >= 1, got {self.top_n!r}")
        if self.model is None:
            self.model_, self.encoder_ = self._train(X, y, validation_data)
        else:
            self.model_, self.encoder_ = self._prefit()
        found = fives_interactions(self.model_, self.thresholds)
        if self.max_order is not None:
            found = [(f, s) for f, s in found if len(f) <= int(self.max_order)]
        self.interactions_ = found
        self.features_ = found[: int(self.top_n)]
        self.new_columns_ = [self.sep.join(fields) for fields, _ in self.features_]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = len(X.columns)
        clash = [c for c in self.new_columns_ if c in X.columns]
        if clash:
            raise ValueError(f"crossed column name(s) {clash} already exist in the frame; choose another sep")
        return self

    def _prefit(self) -> tuple[FIVES, FieldEncoder]:
        if not isinstance(self.model, FIVES):
            raise TypeError(f"model must be a trained fgraph FIVES model, got {type(self.model).__name__}")
        if not isinstance(self.encoder, FieldEncoder) or not hasattr(self.encoder, "space_"):
            raise ValueError("a given model needs the fitted FieldEncoder it was trained with: pass encoder=")
        diff = self.model.space.describe_difference(self.encoder.space_)
        if diff:
            raise ValueError(f"the encoder does not belong to the model: {diff}")
        return self.model, self.encoder

    def _train(self, X: pd.DataFrame, y, validation_data) -> tuple[FIVES, FieldEncoder]:
        y = self._check_labels(X, y, "y")
        if self.schema is None:
            bad = [c for c in X.columns if not isinstance(c, str)]
            if bad:
                raise ValueError(f"column names must be strings to name crossed features, got {bad[:5]}")
        schema = self.schema if self.schema is not None else \
            Schema(tuple(categorical(c) for c in X.columns), label="__fives_label__")
        frame = X[schema.names].assign(**{schema.label: y})
        if validation_data is not None:
            try:
                X_valid, y_valid = validation_data
            except (TypeError, ValueError):
                raise ValueError("validation_data must be a pair (X_valid, y_valid)") from None
            self._check_frame(X_valid, "fit (validation_data)")
            y_valid = self._check_labels(X_valid, y_valid, "y_valid")
            train, valid = frame, X_valid[schema.names].assign(**{schema.label: y_valid})
        else:
            if not 0.0 < float(self.validation_fraction) < 1.0:
                raise ValueError(f"validation_fraction must lie in (0, 1), got {self.validation_fraction}")
            train, valid = train_test_split(frame, test_size=float(self.validation_fraction), stratify=y,
                                            random_state=self.random_state)
        seed_everything(int(self.random_state))
        encoder = FieldEncoder(schema, min_count=self.min_count).fit(train)
        model = FIVES(encoder.space_, **dict(self.model_options or {}))
        options = {"progress": False, "seed": int(self.random_state), **dict(self.train_options or {})}
        Trainer(model, TrainConfig(**options), encoder=encoder).fit(encoder.transform(train),
                                                                    encoder.transform(valid))
        return model.eval(), encoder

    @staticmethod
    def _check_labels(X: pd.DataFrame, y, what: str) -> np.ndarray:
        if y is None:
            raise ValueError("training FIVES needs labels: call fit(X, y) with 0/1 labels y, or pass a trained model")
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"{what} must be a 1-d array with one label per row ({len(X)}), got shape {y.shape}")
        values = set(np.unique(y).tolist())
        if not values <= {0, 1} or len(values) < 2:
            raise ValueError(f"{what} must hold 0/1 labels of both classes, got values {sorted(values)[:5]}")
        return y.astype(np.float64)

    # -- transforming ---------------------------------------------------------------------------------
    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """A copy of ``X`` with the crossed columns added (``X`` itself is left as it is)."""
        check_is_fitted(self, "features_")
        self._check_frame(X, "transform")
        out = X.copy()
        if not self.features_:
            return out
        enc = self.encoder_
        encoded = enc.transform(X.drop(columns=[enc.schema.label], errors="ignore"))
        space = enc.space_
        decoded: dict[str, np.ndarray] = {}
        for name in {f for fields, _ in self.features_ for f in fields}:
            decoded[name] = self._decode(name, space.index(name), encoded)
        for column, (fields, _) in zip(self.new_columns_, self.features_):
            values = decoded[fields[0]]
            for f in fields[1:]:
                values = values + self.sep + decoded[f]
            out[column] = pd.Series(values, index=X.index, dtype=object)
        return out

    def _decode(self, name: str, k: int, encoded) -> np.ndarray:
        """The value of node ``name`` in every row, as strings."""
        enc, space = self.encoder_, self.encoder_.space_
        kind = space.kinds[k]
        if kind == "scaled":
            # A scaled numeric field has no categories to cross: only present / missing.
            table = np.array(["<missing>", "<value>"], dtype=object)
            ids = encoded.ids[:, k].numpy()
            return np.where(ids == SCALED_MISSING, table[0], table[1]).astype(object)
        if name in enc.vocabularies_:
            table = np.concatenate([_RESERVED, np.asarray(enc.vocabularies_[name], dtype=object)])
        else:
            table = np.array([str(enc.value_of(name, i)) for i in range(space.cardinalities[k])], dtype=object)
        if kind == "bag":
            slot = space.bag_positions.index(k)
            bag = encoded.bags[:, slot].numpy()
            return np.array(["|".join(table[t] for t in row if t != PAD) for row in bag], dtype=object)
        return table[encoded.ids[:, k].numpy().astype(np.int64)]

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "features_")
        return np.asarray(list(self.feature_names_in_) + list(self.new_columns_), dtype=object)

    @staticmethod
    def _check_frame(X, where: str) -> None:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"FIVESCrossFeatures.{where} expects a pandas DataFrame, got {type(X).__name__}")
        if len(X) == 0:
            raise ValueError(f"FIVESCrossFeatures.{where} got an empty frame")


__all__ = ["FIVESCrossFeatures"]
