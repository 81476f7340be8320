"""Named training protocols: sets of :class:`~fgraph.train.TrainConfig` values that reproduce a benchmark's runs.

``bars`` is the protocol of the BARS benchmark boards (e.g. Frappe_x1), whose runs were made with FuxiCTR:
reduce-on-plateau by 0.1 down to 1e-6, early stopping after 2 epochs without improvement of the validation
AUC (the RMSE for a regression task), at most 100 epochs, gradient norm clipped to 10, embeddings drawn N(0, 1e-4²), linear layers
Xavier-normal with zero bias, batch 4096, Adam at 1e-3. The embedding regulariser λ is set per model in the
public runs, so it is not part of the protocol.

Nothing here imports the rest of fgraph but its errors: the trainer validates ``TrainConfig.protocol``
against :data:`PROTOCOLS`.
"""
from __future__ import annotations

import copy

from ..errors import ConfigError

#: ``{name: {TrainConfig option: value}}``
PROTOCOLS: dict[str, dict] = {
    "bars": {
        "lr_schedule": "plateau",
        "lr_factor": 0.1,
        "min_lr": 1e-6,
        "grad_clip": 10.0,
        "embedding_init": "normal",
        "embedding_init_std": 1e-4,
        "dense_init": "xavier_normal",
        "epochs": 100,
        "patience": 2,
        # no "monitor": the task's own (AUC for binary labels, as the boards; RMSE for --task regression)
        "batch_size": 4096,
        "optimizer": "adam",
        "lr": 1e-3,
    },
}

#: where each protocol's values come from
PROTOCOL_SOURCES: dict[str, str] = {
    "bars": "FuxiCTR (github.com/reczoo/FuxiCTR), which produced the BARS boards (openbenchmark.github.io/BARS): "
            "its BaseModel (reduce_lr_on_plateau, lr_decay factor 0.1 / min_lr 1e-6, early_stop_patience 2, "
            "max_gradient_norm 10, embedding_initializer normal(std=1e-4), xavier_normal_ linear layers) and the "
            "Frappe_x1 run configurations (epochs 100, batch_size 4096, learning_rate 1e-3, monitor AUC)",
}


def protocol_names() -> list[str]:
    return sorted(PROTOCOLS)


def apply_protocol(name: str | None, options: dict | None = None) -> dict:
    """``options`` with protocol ``name``'s values filled in under them: an option given in ``options``
    wins over the protocol's. The result also records ``protocol: name``.

    ``name=None`` returns a copy of ``options`` unchanged. An option given as ``None`` counts as given (it
    keeps its ``None``); leave it out to take the protocol's value.

    Raises:
        ConfigError: an unknown protocol (the message lists the known ones), or ``options`` that is not a
            mapping, or a ``protocol`` in ``options`` that names another protocol.
    """
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise ConfigError(f"the options a protocol fills in must be a mapping of names to values, got "
                          f"{type(options).__name__}")
    if name is None:
        return dict(options)
    if not isinstance(name, str) or name.lower() not in PROTOCOLS:
        raise ConfigError(f"training option 'protocol' is {name!r}, which is not a known protocol; known "
                          f"protocols: {protocol_names()}")
    key = name.lower()
    given = options.get("protocol")
    if given is not None and given != key:
        raise ConfigError(f"training option 'protocol' is given twice: {key!r} and {given!r} (in the options); "
                          f"keep one")
    return {**copy.deepcopy(PROTOCOLS[key]), **options, "protocol": key}


__all__ = ["PROTOCOLS", "PROTOCOL_SOURCES", "apply_protocol", "protocol_names"]
