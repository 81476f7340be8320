"""Data-set builders: each returns the train/valid/test frames of a data set and its schema.

``train, valid, test, schema = fgraph.data.datasets.frappe()`` -- or ``load_dataset("frappe")``. The real
data sets are read from ``data_dir`` (default: see :func:`resolve_data_dir`); ``synthetic`` is generated.
"""
from __future__ import annotations

import inspect

from ...errors import ConfigError

from ._common import DatasetNotFoundError, DatasetSplits, locate, random_split, resolve_data_dir, split_indices
from .avazu import CANDIDATES as _AVAZU_FILES, FOLDER as _AVAZU_FOLDER, avazu
from .criteo import CANDIDATES as _CRITEO_FILES, FOLDER as _CRITEO_FOLDER, criteo
from .frappe import FOLDER as _FRAPPE_FOLDER, RAW_FILE, TEST_FILE, VALID_FILE, frappe
from .movielens import FILES as _MOVIELENS_FILES, FOLDER as _MOVIELENS_FOLDER, movielens100k
from .synthetic import synthetic

#: Builder name -> builder function.
DATASETS = {"frappe": frappe, "movielens100k": movielens100k, "criteo": criteo, "avazu": avazu,
            "synthetic": synthetic}
#: Other accepted names.
ALIASES = {"movielens": "movielens100k", "ml100k": "movielens100k", "movielens-100k": "movielens100k",
           "movielens_100k": "movielens100k"}

#: Training options a data set uses unless the user sets them. The synthetic set is small (40k training rows),
#: so the BARS protocol's batch 4096 at lr 1e-3 would stop far from what FM can learn in a first run.
TRAIN_DEFAULTS = {"synthetic": {"batch_size": 1024, "lr": 3e-3, "epochs": 30}}

_DESCRIPTIONS = {
    "frappe": "app usage in context, 10 fields; public valid/test, training rebuilt from the raw log",
    "movielens100k": "MovieLens 100K ratings, 7 fields (GraphFM protocol), rating 3 dropped",
    "criteo": "Criteo Kaggle format, 13 numeric + 26 categorical fields",
    "avazu": "Avazu Kaggle format, 23 categorical fields",
    "synthetic": "generated; planted pairwise and three-way interactions, known true probability",
}


def canonical_name(name: str) -> str:
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in DATASETS:
        raise ConfigError(f"unknown data set {name!r}; known data sets: {', '.join(sorted(DATASETS))} "
                         f"(aliases: {', '.join(sorted(ALIASES))})")
    return key


def load_dataset(name: str, data_dir=None, **kwargs) -> DatasetSplits:
    """Build the data set ``name`` (a key of :data:`DATASETS` or an alias) with the builder's ``kwargs``.

    ``data_dir`` is passed on to builders that read files and ignored by ``synthetic``.
    """
    builder = DATASETS[canonical_name(name)]
    if "data_dir" in inspect.signature(builder).parameters:
        return builder(data_dir, **kwargs)
    return builder(**kwargs)


#: Where each file-based builder looks: its folder and the files it needs (all of ``required``, the first
#: present of ``any_of``).
_FILES = {
    "frappe": dict(folder=_FRAPPE_FOLDER, required=(VALID_FILE, TEST_FILE, RAW_FILE)),
    "movielens100k": dict(folder=_MOVIELENS_FOLDER, required=_MOVIELENS_FILES),
    "criteo": dict(folder=_CRITEO_FOLDER, any_of=_CRITEO_FILES),
    "avazu": dict(folder=_AVAZU_FOLDER, any_of=_AVAZU_FILES),
}


def _locate_quietly(name: str, data_dir) -> tuple[bool, str]:
    spec = _FILES[name]
    try:
        folder, file = locate(name, data_dir, spec["folder"], required=spec.get("required", ()),
                              any_of=spec.get("any_of", ()))
    except DatasetNotFoundError as e:
        return False, str(e.directory)
    return True, str(file if file is not None else folder)


def dataset_status(data_dir=None) -> list[dict]:
    """For each builder: ``{"name", "found", "location", "description"}``; ``location`` is the folder or file
    used when found, otherwise the folder looked in. ``synthetic`` is always found (``"generated"``)."""
    rows = []
    for name in DATASETS:
        if name == "synthetic":
            found, location = True, "generated"
        else:
            found, location = _locate_quietly(name, data_dir)
        rows.append({"name": name, "found": found, "location": location, "description": _DESCRIPTIONS[name]})
    return rows


__all__ = ["DATASETS", "ALIASES", "TRAIN_DEFAULTS", "canonical_name", "DatasetNotFoundError", "DatasetSplits", "avazu", "criteo", "dataset_status",
           "frappe", "load_dataset", "movielens100k", "random_split", "resolve_data_dir", "split_indices",
           "synthetic"]
