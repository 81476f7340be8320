"""Checking and coercing option values once, where they enter fgraph (CLI, config file, Python API).

The same rules hold for every entry point:

* an integer option takes an ``int`` or a string of one (``"3"``); ``2.5``, ``"2.5"``, ``True`` and
  ``1000.7`` are refused, never truncated; an integral float such as ``3.0`` is taken as ``3``;
* a float option takes a number or a numeric string (YAML 1.1 reads ``1e-3`` as a string), finite unless
  the option allows infinity; booleans are refused;
* a boolean option takes ``True``/``False``, ``0``/``1`` or one of the strings ``true, false, yes, no, on,
  off, 1, 0`` (any case); anything else, ``"maybe"`` say, is refused;
* a string option takes a string.

Every refusal is a :class:`~fgraph.errors.ConfigError` whose message names the option, the value given and
what is expected.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

from .errors import ConfigError

_TRUE = {"true", "yes", "on", "1", "y", "t"}
_FALSE = {"false", "no", "off", "0", "n", "f"}


def _where(name: str, where: str | None) -> str:
    return f"{where} option {name!r}" if where else f"option {name!r}"


def _bound_text(minimum, maximum, strict_min: bool) -> str:
    parts = []
    if minimum is not None:
        parts.append(f"{'>' if strict_min else '>='} {minimum}")
    if maximum is not None:
        parts.append(f"<= {maximum}")
    return " and ".join(parts)


def as_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None,
           allow_none: bool = False, where: str | None = None) -> int | None:
    """``value`` as an ``int``, or a :class:`ConfigError` naming option ``name``."""
    if value is None and allow_none:
        return None
    bound = _bound_text(minimum, maximum, False)
    expect = f"an integer{' ' + bound if bound else ''}"
    out = None
    if isinstance(value, bool):
        out = None
    elif isinstance(value, numbers.Integral):
        out = int(value)
    elif isinstance(value, numbers.Real) and math.isfinite(float(value)) and float(value).is_integer():
        out = int(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            out = int(text)
        except ValueError:
            try:
                f = float(text)
            except ValueError:
                f = math.nan
            out = int(f) if math.isfinite(f) and f.is_integer() else None
    if out is None:
        raise ConfigError(f"{_where(name, where)} must be {expect}, got {value!r}")
    if (minimum is not None and out < minimum) or (maximum is not None and out > maximum):
        raise ConfigError(f"{_where(name, where)} must be {expect}, got {value!r}")
    return out


def as_float(name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None,
             strict_min: bool = False, allow_inf: bool = False, allow_none: bool = False,
             where: str | None = None) -> float | None:
    """``value`` as a finite ``float`` (a numeric string is parsed), or a :class:`ConfigError`."""
    if value is None and allow_none:
        return None
    bound = _bound_text(minimum, maximum, strict_min)
    expect = f"a {'' if allow_inf else 'finite '}number{' ' + bound if bound else ''}"
    out = None
    if isinstance(value, bool):
        out = None
    elif isinstance(value, numbers.Real):
        out = float(value)
    elif isinstance(value, str):
        try:
            out = float(value.strip())
        except ValueError:
            out = None
    if out is None or math.isnan(out) or (math.isinf(out) and not allow_inf):
        raise ConfigError(f"{_where(name, where)} must be {expect}, got {value!r}")
    if minimum is not None and (out < minimum or (strict_min and out == minimum)):
        raise ConfigError(f"{_where(name, where)} must be {expect}, got {value!r}")
    if maximum is not None and out > maximum:
        raise ConfigError(f"{_where(name, where)} must be {expect}, got {value!r}")
    return out


def as_bool(name: str, value: Any, *, where: str | None = None) -> bool:
    """``value`` as a ``bool`` (``"no"`` is False), or a :class:`ConfigError`."""
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral) and int(value) in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ConfigError(f"{_where(name, where)} must be true or false (also yes/no, on/off, 1/0), got {value!r}")


def as_str(name: str, value: Any, *, choices: Iterable[str] | None = None, allow_none: bool = False,
           where: str | None = None) -> str | None:
    """``value`` as a string (one of ``choices`` when given), or a :class:`ConfigError`."""
    if value is None and allow_none:
        return None
    choices = None if choices is None else tuple(choices)
    if not isinstance(value, str) or (choices is not None and value not in choices):
        expect = f"one of {list(choices)}" if choices is not None else "a string"
        raise ConfigError(f"{_where(name, where)} must be {expect}, got {value!r}")
    return value


def as_mapping(name: str, value: Any, *, where: str | None = None) -> dict:
    """``value`` as a dict with string keys (``None`` is ``{}``), or a :class:`ConfigError`."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"{_where(name, where)} must be a mapping of names to values "
                          f"(e.g. {{num_layers: 3}}), got {type(value).__name__} {value!r}")
    return dict(value)


def _annotation_kinds(annotation) -> tuple[set[str], bool]:
    """The scalar kinds an annotation allows (``int``, ``float``, ``bool``, ``str``, ``seq_int``...), and
    whether None is allowed. Unknown annotations give an empty set (the value is passed through)."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    parts = [p.strip() for p in text.replace("Optional[", "").rstrip("]").split("|")]
    kinds, optional = set(), False
    for part in parts:
        if part == "None":
            optional = True
        elif part in ("int", "float", "bool", "str", "list", "dict"):
            kinds.add(part)
        elif part.startswith(("Sequence[", "list[", "tuple[")):
            inner = part[part.index("[") + 1:]
            if inner.startswith(("Sequence[", "list[", "tuple[")):   # a list of lists (e.g. field pairs)
                kinds.add("seq_seq_" + inner[inner.index("[") + 1:].split(",")[0].strip(" ]"))
            else:
                kinds.add("seq_" + inner.split(",")[0].strip(" ]"))
    return kinds, optional


def as_annotated(name: str, value: Any, annotation, bounds: tuple | None = None, *, where: str | None = None):
    """``value`` checked and coerced against a parameter's type annotation (``int``, ``float | None``,
    ``Sequence[int]``, ``bool``, ``str`` and unions of them) and ``bounds`` = ``(low, high[, low_open[, high_open]])`` (None: no bound; open bounds are strict).

    Used for the options of models and data-set builders, whose signatures say their types. An unknown
    annotation passes the value through unchanged.
    """
    kinds, optional = _annotation_kinds(annotation)
    if value is None:
        if optional or not kinds:
            return None
        raise ConfigError(f"{_where(name, where)} cannot be None")
    lo, hi, lo_open, hi_open = (tuple(bounds or (None, None)) + (False, False))[:4]
    # A bare ``list`` or ``dict`` in the annotation: structured data (checked by the model), passed through.
    if ("list" in kinds and isinstance(value, (list, tuple))) or ("dict" in kinds and isinstance(value, dict)):
        return value
    seq = sorted(k for k in kinds if k.startswith("seq_"))
    if seq and (isinstance(value, (list, tuple)) or not kinds - set(seq)):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{_where(name, where)} must be a list (one entry per layer, e.g. [8, 4]), "
                              f"got {value!r}")
        if seq[0].startswith("seq_seq_"):
            if not all(isinstance(v, (list, tuple)) for v in value):
                raise ConfigError(f"{_where(name, where)} must be a list of lists (e.g. [[0, 1], [2, 3]]), "
                                  f"got {value!r}")
            check = as_int if seq[0] == "seq_seq_int" else as_float
            return [[check(f"{name}[{i}][{j}]", x, where=where) for j, x in enumerate(v)]
                    for i, v in enumerate(value)]
        if seq[0] == "seq_int":
            return [as_int(f"{name}[{i}]", v, minimum=1, where=where) for i, v in enumerate(value)]
        if seq[0] == "seq_str":
            return [as_str(f"{name}[{i}]", v, where=where) for i, v in enumerate(value)]
        return [as_float(f"{name}[{i}]", v, where=where) for i, v in enumerate(value)]
    if "bool" in kinds:
        return as_bool(name, value, where=where)
    if "int" in kinds and ("float" not in kinds or _is_int_text(value)):
        return as_int(name, value, minimum=lo, maximum=hi, where=where)
    if "float" in kinds:
        out = as_float(name, value, minimum=lo, strict_min=lo_open, where=where)
        if hi is not None and (out > hi or (hi_open and out == hi)):
            raise ConfigError(f"{_where(name, where)} must be {'below' if hi_open else 'at most'} {hi}, "
                              f"got {value!r}")
        return out
    if "str" in kinds:
        return as_str(name, value, where=where)
    return value


def _is_int_text(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if not isinstance(value, str):
        return False
    try:
        int(value.strip())
        return True
    except ValueError:
        return False


class OptionErrors:
    """Collects the :class:`ConfigError` of several checks, so that a user sees every bad option at once.

    Example::

        errors = OptionErrors()
        with errors:
            epochs = as_int("epochs", raw_epochs, minimum=1)
        with errors:
            lr = as_float("lr", raw_lr, minimum=0, strict_min=True)
        errors.raise_if_any()     # one ConfigError, one line per bad option
    """

    def __init__(self):
        self.messages: list[str] = []

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, ConfigError):
            self.messages.extend(str(exc).splitlines() or [repr(exc)])
            return True
        return False

    def raise_if_any(self) -> None:
        if self.messages:
            raise ConfigError("\n".join(dict.fromkeys(self.messages)))


def unique_key_yaml_loader(what: str = "key"):
    """PyYAML's safe loader class, refusing a mapping that gives a key twice (PyYAML would keep the last):
    the error names the key as ``what`` ("key", "option") and points at its line. Used by every YAML file
    fgraph reads (config files, schema files)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"{what} {key!r} is given twice; keep one", key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader
