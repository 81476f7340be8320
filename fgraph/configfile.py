"""Reading run configurations from YAML or JSON files: ``fgraph train --config``, the shipped
configurations of :mod:`fgraph.zoo`, and what ``fgraph tune`` writes."""
from __future__ import annotations

import json
from pathlib import Path

from ._validate import as_mapping
from .errors import ConfigError, InputFileError, InputFileNotFoundError

#: Keys of a configuration file besides the training options (TrainConfig's fields).
RUN_KEYS = frozenset({"model", "dataset", "data_dir", "out", "resume", "overwrite", "embed_dim", "min_count",
                      "model_options", "dataset_options", "protocol", "source"})


def config_keys() -> set[str]:
    """Every key a configuration file may hold."""
    from .train.trainer import TrainConfig
    import dataclasses

    return set(RUN_KEYS) | {f.name for f in dataclasses.fields(TrainConfig)}


def _unique_json_object(pairs: list) -> dict:
    """A JSON object whose keys are all different (``json`` would keep the last of two silently)."""
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ConfigError(f"option {key!r} is given twice ({seen[key]!r} and {value!r}); keep one")
        seen[key] = value
    return seen


def _yaml_loader():
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        """PyYAML's safe loader, refusing a key given twice in one mapping (it would keep the last)."""

        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"option {key!r} is given twice; keep one", key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def read_config_file(path) -> dict:
    """The options of a YAML or JSON config file (the names of :func:`fgraph.api.train`'s arguments and
    :class:`~fgraph.train.TrainConfig`'s fields), with a clear error for every way the file can be wrong.

    A top-level ``source`` entry (how the file was made: by hand, by ``fgraph tune``...) is kept in the
    result under ``"source"`` for the record; it sets no option.
    """
    p = Path(path)
    if p.is_dir():
        raise InputFileError(f"config file {path} is a directory; give a .yaml, .yml or .json file")
    if not p.is_file():
        raise InputFileNotFoundError(f"config file {path} does not exist")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise InputFileError(f"config file {path} is not UTF-8 text (byte {raw[e.start]:#04x} at line {line}); "
                             f"save it as UTF-8") from None
    if p.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.load(text, Loader=_yaml_loader())
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise InputFileError(f"config file {path} is not valid YAML{where}: {problem}") from None
    elif p.suffix.lower() == ".json":
        try:
            data = json.loads(text, object_pairs_hook=_unique_json_object)
        except ConfigError as e:
            raise ConfigError(f"config file {path}: {e}") from None
        except json.JSONDecodeError as e:
            raise InputFileError(f"config file {path} is not valid JSON at line {e.lineno}, column {e.colno}: "
                                 f"{e.msg}") from None
    else:
        raise InputFileError(f"config file {path}: unknown format {p.suffix or '(no suffix)'!r}; "
                             f"use a .yaml, .yml or .json file")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option names to values, "
                          f"not a {type(data).__name__}")
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        raise ConfigError(f"config file {path}: option names must be text, got {bad_keys}")
    data = {k.replace("-", "_"): v for k, v in data.items()}
    known = config_keys()
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"config file {path} has unknown option(s) {unknown}; known: {sorted(known)}")
    for key in ("model_options", "dataset_options"):
        if key in data:
            data[key] = as_mapping(key, data[key], where=f"config file {path}:")
    return data


