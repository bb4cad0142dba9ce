"""Parameter files: YAML data validated against a schema before anything runs.

A parameter file is a flat YAML mapping. Its ``study`` key picks the schema
(``lib.schemas.SCHEMAS``); every other key must be declared there with a type. Errors are
one line naming the file and the key::

    params/study_a/et-default.yaml: key 'ode_epochs': expected int, got 'ten'

Files may ``extends: other.yaml`` (path relative to the file) to inherit keys, so the
profiles of one study share a base and differ only where they must. An error names the file
that gave the key its value: the base file for an inherited key, ``FILE (--set)`` for an
override.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import yaml


class ParamsError(ValueError):
    """A parameter file or override is invalid. ``str(err)`` is one line."""


_REQUIRED = object()


@dataclass(frozen=True)
class Field:
    """One declared key.

    kind: "int", "float", "str", "bool", "list[str]", "list[int]", "list[float]",
          "dict[str,float]", "dict[str,str]", "dict[str,scalar]", "dict[str,list[str]]".
    choices, minimum and maximum apply to each element of a list.
    """

    kind: str
    default: Any = _REQUIRED
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False
    help: str = ""
    check: Callable[[Any], str | None] | None = field(default=None, compare=False)

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED


def _type_name(value: Any) -> str:
    return repr(value) if not isinstance(value, (dict, list)) else type(value).__name__


def did_you_mean(word: Any, known) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known``, or ``""``."""
    close = difflib.get_close_matches(str(word), list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


# A decimal float literal. YAML 1.1 (PyYAML) reads '1e-3' and '1E5' as text (it wants a dot and a
# signed exponent), so a float key accepts such text; 'nan' and 'inf' do not match.
_FLOAT_LITERAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _coerce_scalar(kind: str, value: Any) -> Any:
    """Return the value as ``kind`` or raise TypeError (bools are never numbers)."""
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError
        return value
    if kind == "float":
        if isinstance(value, str) and _FLOAT_LITERAL.fullmatch(value):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError
        if not math.isfinite(float(value)):
            raise TypeError
        return float(value)
    if kind == "str":
        if not isinstance(value, str):
            raise TypeError
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise TypeError
        return value
    raise AssertionError(f"unknown scalar kind {kind}")


def coerce(spec: Field, value: Any) -> Any:
    """Check ``value`` against ``spec``; raise TypeError/ValueError with a short reason."""
    if value is None:
        if spec.nullable:
            return None
        raise TypeError
    kind = spec.kind
    if kind.startswith("list["):
        inner = kind[5:-1]
        if not isinstance(value, list):
            raise TypeError
        out = [_coerce_scalar(inner, v) for v in value]
        for v in out:
            _check_bounds(spec, v)
        return out
    if kind == "dict[str,float]":
        if not isinstance(value, dict):
            raise TypeError
        return {_coerce_scalar("str", k): _coerce_scalar("float", v) for k, v in value.items()}
    if kind == "dict[str,str]":
        if not isinstance(value, dict):
            raise TypeError
        return {_coerce_scalar("str", k): _coerce_scalar("str", v) for k, v in value.items()}
    if kind == "dict[str,scalar]":
        if not isinstance(value, dict) or not all(
                isinstance(v, (str, bool, int, float)) for v in value.values()):
            raise TypeError
        # Text like '1e-3' is a float here too (see _FLOAT_LITERAL); only with an exponent, since
        # a quoted '3' may be meant as text and the key's type is not known here.
        return {_coerce_scalar("str", k): float(v) if isinstance(v, str) and _FLOAT_LITERAL.fullmatch(v)
                and "e" in v.lower() else v for k, v in value.items()}
    if kind == "dict[str,list[str]]":
        if not isinstance(value, dict):
            raise TypeError
        out = {}
        for k, v in value.items():
            if not isinstance(v, list):
                raise TypeError
            out[_coerce_scalar("str", k)] = [_coerce_scalar("str", x) for x in v]
        return out
    out = _coerce_scalar(kind, value)
    _check_bounds(spec, out)
    return out


def _check_bounds(spec: Field, value: Any) -> None:
    """Raise ValueError when a scalar (or one list element) is outside choices/minimum/maximum."""
    if spec.choices is not None and value not in spec.choices:
        raise ValueError(f"{value!r} is not one of {', '.join(map(str, spec.choices))}")
    if spec.minimum is not None and value < spec.minimum:
        raise ValueError(f"{value!r} is below the minimum {spec.minimum}")
    if spec.maximum is not None and value > spec.maximum:
        raise ValueError(f"{value!r} is above the maximum {spec.maximum}")


# A rule between keys: (the key an error names, check(validated params) -> problem or None).
Relation = tuple[str, Callable[[Mapping[str, Any]], "str | None"]]


def validate(
    raw: Mapping[str, Any], schema: Mapping[str, Field], source: str, relations: Sequence[Relation] = (),
    sources: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Validate a flat mapping against ``schema`` and then ``relations``; fill defaults; one-line ParamsError.

    An error about a key names ``sources[key]`` (where its value came from) if given, else ``source``.
    """
    where = {**dict.fromkeys(raw, source), **(sources or {})}
    out: dict[str, Any] = {}
    for key in raw:
        if key not in schema:
            raise ParamsError(f"{where[key]}: unknown key '{key}'{did_you_mean(key, schema)}")
    for key, spec in schema.items():
        if key not in raw:
            if spec.required:
                raise ParamsError(f"{source}: missing required key '{key}' ({spec.kind})")
            out[key] = spec.default
            continue
        value = raw[key]
        try:
            out[key] = coerce(spec, value)
        except TypeError:
            null = " or null" if spec.nullable else ""
            raise ParamsError(
                f"{where[key]}: key '{key}': expected {spec.kind}{null}, got {_type_name(value)}") from None
        except ValueError as err:
            raise ParamsError(f"{where[key]}: key '{key}': {err}") from None
        if spec.check is not None and out[key] is not None:
            problem = spec.check(out[key])
            if problem:
                raise ParamsError(f"{where[key]}: key '{key}': {problem}")
    for key, check in relations:
        problem = check(out)
        if problem:
            raise ParamsError(f"{where.get(key, source)}: key '{key}': {problem}")
    return out


class DuplicateKeyError(yaml.YAMLError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last one
    silently, so a forgotten earlier line would change a run without a word)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str) and key in seen:
                raise DuplicateKeyError(f"line {key_node.start_mark.line + 1} key '{key}' is given twice")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path, chain: tuple[Path, ...] = (), sources: dict[str, str] | None = None,
               shown: str | None = None) -> dict[str, Any]:
    """The keys of ``path`` over those of the file it ``extends`` (recursively).

    Errors name the file as ``shown`` (default: ``path``); ``sources``, if given, receives for
    each key the ``shown`` name of the file that supplied its value.
    """
    shown = str(path) if shown is None else shown
    if path in chain:
        raise ParamsError(f"{shown}: 'extends' forms a cycle")
    if not path.is_file():
        raise ParamsError(f"{shown}: parameter file not found")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except (OSError, UnicodeDecodeError) as err:
        reason = "not UTF-8 text" if isinstance(err, UnicodeDecodeError) else (err.strerror or type(err).__name__)
        raise ParamsError(f"{shown}: cannot read the parameter file ({reason})") from None
    except DuplicateKeyError as err:
        raise ParamsError(f"{shown}: {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        reason = getattr(err, "problem", None) or "invalid YAML"
        raise ParamsError(f"{shown}:{where} {reason}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{shown}: expected a mapping of keys to values, got {type(raw).__name__}")
    parent = raw.pop("extends", None)
    own = list(raw)
    if sources is None:
        sources = {}
    if parent is not None:
        if not isinstance(parent, str):
            raise ParamsError(f"{shown}: key 'extends': expected a file name")
        base_path = (path.parent / parent).resolve()
        # The file that points at a missing base is the one to fix, so name it.
        if not base_path.is_file():
            raise ParamsError(f"{shown}: key 'extends': base file {parent} not found")
        # Named as the user would reach it from ``shown`` (relative stays relative).
        base_shown = os.path.normpath(Path(shown).parent / parent)
        base = _read_yaml(base_path, chain + (path,), sources, base_shown)
        base.update(raw)
        raw = base
    sources.update(dict.fromkeys(own, shown))  # after the base's: this file's values win
    return raw


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as YAML (``epochs=3``, ``modalities=[t1ce]``)."""
    if "=" not in text:
        raise ParamsError(f"override '{text}': expected key=value")
    key, value = text.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError:
        raise ParamsError(f"override '{text}': value is not valid YAML") from None


def parse_overrides(texts: Iterable[str] | None) -> dict[str, Any]:
    """Every ``--set key=value`` of one command as a dict. A key given twice with two different
    values is a ParamsError naming both: silently keeping the last one would hide a typo or a
    clash (e.g. ``make book DATA_DIR=a SET="data_dir=b"``)."""
    overrides: dict[str, Any] = {}
    for text in texts or []:
        key, value = parse_override(text)
        if key in overrides and overrides[key] != value:
            raise ParamsError(f"override '{key}': given twice, as {overrides[key]!r} and {value!r}; "
                              "give it once")
        overrides[key] = value
    return overrides


def load(path: str | Path, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Read, merge ``extends`` and ``overrides`` (``--set``), and validate a parameter file.

    The merged keys are validated together (relations need all of them); an error names the
    file that supplied the key, or ``FILE (--set)`` for an override.
    """
    from lib.schemas import RELATIONS, SCHEMAS

    path = Path(path)
    sources: dict[str, str] = {}
    raw = _read_yaml(path.resolve(), sources=sources, shown=str(path))
    if overrides:
        raw.update(overrides)
        sources.update(dict.fromkeys(overrides, f"{path} (--set)"))
    study = raw.get("study")
    if study not in SCHEMAS:
        known = ", ".join(sorted(SCHEMAS))
        raise ParamsError(f"{sources.get('study', path)}: key 'study': expected one of {known}, got {study!r}")
    params = validate(raw, SCHEMAS[study], str(path), RELATIONS.get(study, ()), sources)
    if params.get("name") is None:
        params["name"] = path.stem
    return params


def dump(params: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(params), sort_keys=True)
