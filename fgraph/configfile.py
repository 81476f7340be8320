"""Reading run configurations from YAML or JSON files: ``fgraph train --config``, the shipped
configurations of :mod:`fgraph.zoo`, and what ``fgraph tune`` writes."""
from __future__ import annotations

import difflib
import json
from pathlib import Path

from ._validate import as_bool, as_mapping, unique_key_yaml_loader
from .errors import ConfigError, InputFileError, InputFileNotFoundError

#: Keys of a configuration file besides the training options (TrainConfig's fields): the arguments of
#: :func:`fgraph.api.train`, and ``source`` (how the file was made; it sets nothing).
RUN_KEYS = frozenset({"model", "dataset", "data_dir", "out", "resume", "overwrite", "embed_dim", "min_count",
                      "model_options", "dataset_options", "protocol", "zoo", "source",
                      # a run on the user's own files (fgraph train --data)
                      "data", "valid", "test", "label", "schema", "positive", "fractions"})

#: Flags of ``fgraph train`` whose name is not the option they set, as config-file keys (underscore spelling).
#: ``list_models`` is read for the command line only (it lists the models instead of training).
FLAG_KEYS = frozenset({"no_zoo", "no_progress", "model_option", "dataset_option", "list_models"})
#: flags that set one model option (``fgraph train --base deepfm`` is ``--model-option base=deepfm``)
MODEL_OPTION_KEYS = frozenset({"base", "max_order"})

#: Flags that cannot be given in a config file, with the reason.
REFUSED_KEYS = {"config": "a config file cannot name another config file; merge the two files into one"}


def config_keys() -> set[str]:
    """Every key a configuration file may hold (underscore spelling; a dash may replace every underscore)."""
    from .train.trainer import TrainConfig
    import dataclasses

    return set(RUN_KEYS) | FLAG_KEYS | MODEL_OPTION_KEYS | {f.name for f in dataclasses.fields(TrainConfig)}


def key_values(items, flag: str, where: str = "") -> dict:
    """``KEY=VALUE`` pairs (``--model-option heads=2``) as a mapping; a value is read as JSON when it parses
    (``3``, ``[8, 4]``, ``true``), else as text. Dashes in a key become underscores."""
    out = {}
    for item in items or []:
        if not isinstance(item, str) or "=" not in item or not item.split("=", 1)[0].strip():
            raise ConfigError(f"{where}{flag} takes KEY=VALUE (e.g. {flag} heads=2), got {item!r}")
        key, value = item.split("=", 1)
        key = key.strip().replace("-", "_")
        if key in out:
            raise ConfigError(f"{where}{flag} gives {key!r} twice ({out[key]!r} and {value!r}); keep one")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _suggestions(key: str, known: set[str]) -> str:
    """`` (did you mean 'epochs'?)`` for a close match among ``known``, spelled as ``key`` is (dashes or not)."""
    spelled = {k.replace("_", "-") if "-" in key else k for k in known}
    close = difflib.get_close_matches(key, sorted(spelled), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def _normalise_keys(data: dict, path, what: str = "option", spelled: dict | None = None) -> dict:
    """``data`` with every ``-`` of a key replaced by ``_``, refusing a key given in both spellings. ``spelled``,
    if given, receives each name's spelling in the file."""
    out, spelled = {}, {} if spelled is None else spelled
    for key, value in data.items():
        name = key.replace("-", "_")
        if name in out:
            raise ConfigError(f"config file {path} gives {what} {name!r} twice, as {spelled[name]!r} and {key!r}; "
                              f"keep one")
        out[name], spelled[name] = value, key
    return out


def _merge_options(data: dict, mapping_key: str, flag_key: str, path, spelled: dict) -> None:
    """Fold ``model-option`` (``KEY=VALUE`` text, a list of them, or a mapping) into ``model_options``."""
    flag = "--" + flag_key.replace("_", "-")
    where = f"config file {path}: "
    mapping = as_mapping(mapping_key, data.get(mapping_key), where=f"config file {path}:")
    mapping = _normalise_keys(mapping, path, f"{mapping_key} entry")
    if flag_key in data:
        given = data.pop(flag_key)
        if isinstance(given, dict):
            extra = _normalise_keys(as_mapping(flag_key, given, where=f"config file {path}:"), path,
                                    f"{flag_key} entry")
        else:
            extra = key_values([given] if isinstance(given, str) else given if isinstance(given, list) else [given],
                               flag, where)
        for key, value in extra.items():
            if key in mapping and mapping[key] != value:
                raise ConfigError(f"config file {path} gives {key!r} twice: {mapping[key]!r} "
                                  f"({spelled.get(mapping_key, mapping_key)}) and {value!r} "
                                  f"({spelled.get(flag_key, flag_key)}); keep one")
            mapping[key] = value
    if mapping or mapping_key in data:
        data[mapping_key] = mapping


def _negated_flag(data: dict, flag_key: str, option: str, path, spelled: dict) -> None:
    """``no-zoo: true`` as ``zoo: false`` (and ``no-progress`` as ``progress``), checking the two agree."""
    where = f"config file {path}:"
    if option in data:
        data[option] = as_bool(spelled.get(option, option), data[option], where=where)
    if flag_key not in data:
        return
    name = spelled.get(flag_key, flag_key)
    negated = as_bool(name, data.pop(flag_key), where=where)
    if not negated:
        return   # like leaving the flag out
    if data.get(option, False):
        raise ConfigError(f"config file {path} gives {name}: true and {spelled.get(option, option)}: true, which "
                          f"contradict each other; keep one")
    data[option] = False


def _unique_json_object(pairs: list) -> dict:
    """A JSON object whose keys are all different (``json`` would keep the last of two silently)."""
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ConfigError(f"option {key!r} is given twice ({seen[key]!r} and {value!r}); keep one")
        seen[key] = value
    return seen


def read_config_file(path) -> dict:
    """The options of a YAML or JSON config file, with a clear error for every way the file can be wrong.

    The file's keys are the flags of ``fgraph train`` (``embed-dim`` or ``embed_dim``), the arguments of
    :func:`fgraph.api.train` and :class:`~fgraph.train.TrainConfig`'s fields; the result holds them under the
    names of :func:`fgraph.api.train`'s arguments (see :func:`normalise_config`).

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
            data = yaml.load(text, Loader=unique_key_yaml_loader("option"))
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
    return normalise_config(data, path)


def normalise_config(data: dict, path) -> dict:
    """The options of a config file's mapping under the names of :func:`fgraph.api.train`.

    A key is a flag of ``fgraph train`` with its dashes (``embed-dim``) or with underscores (``embed_dim``),
    an argument of :func:`fgraph.api.train` or a :class:`~fgraph.train.TrainConfig` field. The flags that
    are not an option's name map to the option: ``no-zoo: true`` is ``zoo: false``, ``no-progress: true`` is
    ``progress: false``, ``model-option`` (``KEY=VALUE`` text, a list of them, or a mapping) joins
    ``model_options`` and ``dataset-option`` joins ``dataset_options``. ``list_models`` is kept for the
    command line. Unknown keys are refused, naming the key, the file and the closest known names.
    """
    data = dict(data)
    variants = _read_variants(data.pop("variants"), path) if "variants" in data else None
    for key in data:
        why = REFUSED_KEYS.get(key.replace("-", "_"))
        if why:
            raise ConfigError(f"config file {path}: option {key!r} cannot be given in a config file: {why}")
    known = config_keys()
    unknown = [k for k in data if k.replace("-", "_") not in known]
    if unknown:
        hints = "; ".join(f"{k!r}{_suggestions(k, known)}" for k in unknown)
        raise ConfigError(f"config file {path} has unknown option(s) {unknown}: {hints}. A config file takes the "
                          f"flags of `fgraph train --help` (spelled embed-dim or embed_dim), the fields of "
                          f"TrainConfig, model_options and dataset_options")
    spelled: dict = {}
    data = _normalise_keys(data, path, spelled=spelled)
    _merge_options(data, "model_options", "model_option", path, spelled)
    _merge_options(data, "dataset_options", "dataset_option", path, spelled)
    for key in sorted(MODEL_OPTION_KEYS & set(data)):   # --base, --max-order: model options
        options = data.setdefault("model_options", {})
        if key in options and options[key] != data[key]:
            raise ConfigError(f"config file {path} gives {spelled.get(key, key)}: {data[key]!r} and model_options "
                              f"{key}: {options[key]!r}; keep one")
        options[key] = data.pop(key)
    _negated_flag(data, "no_zoo", "zoo", path, spelled)
    _negated_flag(data, "no_progress", "progress", path, spelled)
    for key in ("resume", "overwrite", "list_models"):
        if key in data:
            data[key] = as_bool(spelled[key], data[key], where=f"config file {path}:")
    if variants:
        data["variants"] = variants
    return data


#: what a variant may not set: it refines the file's run, it does not name another one
_NOT_IN_VARIANTS = ("model", "dataset", "source", "variants", "data", "valid", "test", "out", "resume", "overwrite")


def _read_variants(raw, path) -> dict[str, dict[str, dict]]:
    """A config file's ``variants`` entry, ``{model option: {value: options}}``, each ``options`` normalised
    like the file's own top level. Values are kept as text, so ``2`` and ``"2"`` name the same variant."""
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path}: variants must map a model option to {{value: options}}, e.g. "
                          f"variants: {{base: {{deepfm: {{lr: 1e-3}}}}}}; got a {type(raw).__name__}")
    out: dict[str, dict[str, dict]] = {}
    for option, by_value in raw.items():
        if not isinstance(by_value, dict) or not by_value:
            raise ConfigError(f"config file {path}: variants: {option} must map values of the model option "
                              f"{option!r} to options, got {by_value!r}")
        for value, body in by_value.items():
            where = f"{path} (variants: {option}: {value})"
            if not isinstance(body, dict):
                raise ConfigError(f"config file {where}: a variant must be a mapping of options, got {body!r}")
            bad = [k for k in body if str(k).replace("-", "_") in _NOT_IN_VARIANTS]
            if bad:
                raise ConfigError(f"config file {where}: a variant cannot set {bad}; set them at the top level")
            out.setdefault(str(option), {})[str(value)] = normalise_config(body, where)
    return out


def apply_variants(options: dict, model_options: dict | None = None) -> dict:
    """``options`` (from :func:`read_config_file`) with its ``variants`` resolved and removed.

    For each model option that ``variants`` names, the value is taken from ``model_options`` (what the caller
    gave: ``--base deepfm``, ``--model-option base=deepfm``), else from the file's own ``model_options``; the
    variant for that value, if the file has one, is laid over the file's top level (its ``model_options``
    merged into the file's). A value without a variant, or no value at all, leaves the file as it is. What
    the caller gives still wins over the result.
    """
    variants = options.get("variants")
    out = {k: v for k, v in options.items() if k != "variants"}
    if not variants:
        return out
    # Values are matched on what was given and on the file's own model_options, never on another variant's.
    chosen = {**(out.get("model_options") or {}), **(model_options or {})}
    merged = dict(out.get("model_options") or {})
    for option, by_value in variants.items():
        value = chosen.get(option)
        body = None if value is None else by_value.get(str(value))
        if body is None:
            continue
        body = dict(body)
        merged.update(body.pop("model_options", None) or {})
        out.update(body)
    if merged:
        out["model_options"] = merged
    return out
