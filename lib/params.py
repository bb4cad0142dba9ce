"""Parameter files: YAML data validated against a schema before anything runs.

A parameter file is a flat YAML mapping. Its ``study`` key picks the schema
(``lib.schemas.SCHEMAS``); every other key must be declared there with a type. Errors are
one line naming the file and the key::

    params/study_a/et-default.yaml: key 'ode_epochs': expected int, got 'ten'

Files may ``extends: other.yaml`` (path relative to the file) to inherit keys, so the
profiles of one study share a base and differ only where they must.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml


class ParamsError(ValueError):
    """A parameter file or override is invalid. ``str(err)`` is one line."""


_REQUIRED = object()


@dataclass(frozen=True)
class Field:
    """One declared key.

    kind: "int", "float", "str", "bool", "list[str]", "list[int]", "list[float]",
          "dict[str,float]", "dict[str,str]", "dict[str,scalar]", "dict[str,list[str]]".
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


def _coerce_scalar(kind: str, value: Any) -> Any:
    """Return the value as ``kind`` or raise TypeError (bools are never numbers)."""
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError
        return value
    if kind == "float":
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
        if spec.choices is not None:
            bad = [v for v in out if v not in spec.choices]
            if bad:
                raise ValueError(f"{bad[0]!r} is not one of {', '.join(map(str, spec.choices))}")
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
        return {_coerce_scalar("str", k): v for k, v in value.items()}
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
    if spec.choices is not None and out not in spec.choices:
        raise ValueError(f"{out!r} is not one of {', '.join(map(str, spec.choices))}")
    if spec.minimum is not None and out < spec.minimum:
        raise ValueError(f"{out!r} is below the minimum {spec.minimum}")
    if spec.maximum is not None and out > spec.maximum:
        raise ValueError(f"{out!r} is above the maximum {spec.maximum}")
    return out


# A rule between keys: (the key an error names, check(validated params) -> problem or None).
Relation = tuple[str, Callable[[Mapping[str, Any]], "str | None"]]


def validate(
    raw: Mapping[str, Any], schema: Mapping[str, Field], source: str, relations: Sequence[Relation] = ()
) -> dict[str, Any]:
    """Validate a flat mapping against ``schema`` and then ``relations``; fill defaults; one-line ParamsError."""
    out: dict[str, Any] = {}
    for key in raw:
        if key not in schema:
            close = difflib.get_close_matches(str(key), list(schema), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ParamsError(f"{source}: unknown key '{key}'{hint}")
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
            raise ParamsError(f"{source}: key '{key}': expected {spec.kind}{null}, got {_type_name(value)}") from None
        except ValueError as err:
            raise ParamsError(f"{source}: key '{key}': {err}") from None
        if spec.check is not None and out[key] is not None:
            problem = spec.check(out[key])
            if problem:
                raise ParamsError(f"{source}: key '{key}': {problem}")
    for key, check in relations:
        problem = check(out)
        if problem:
            raise ParamsError(f"{source}: key '{key}': {problem}")
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


def _read_yaml(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path in chain:
        raise ParamsError(f"{path}: 'extends' forms a cycle")
    if not path.is_file():
        raise ParamsError(f"{path}: parameter file not found")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except (OSError, UnicodeDecodeError) as err:
        reason = "not UTF-8 text" if isinstance(err, UnicodeDecodeError) else (err.strerror or type(err).__name__)
        raise ParamsError(f"{path}: cannot read the parameter file ({reason})") from None
    except DuplicateKeyError as err:
        raise ParamsError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        reason = getattr(err, "problem", None) or "invalid YAML"
        raise ParamsError(f"{path}:{where} {reason}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of keys to values, got {type(raw).__name__}")
    parent = raw.pop("extends", None)
    if parent is not None:
        if not isinstance(parent, str):
            raise ParamsError(f"{path}: key 'extends': expected a file name")
        base = _read_yaml((path.parent / parent).resolve(), chain + (path,))
        base.update(raw)
        raw = base
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


def load(path: str | Path, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Read, merge ``extends`` and ``overrides``, and validate a parameter file."""
    from lib.schemas import RELATIONS, SCHEMAS

    path = Path(path)
    raw = _read_yaml(path.resolve())
    if overrides:
        raw.update(overrides)
    study = raw.get("study")
    if study not in SCHEMAS:
        known = ", ".join(sorted(SCHEMAS))
        raise ParamsError(f"{path}: key 'study': expected one of {known}, got {study!r}")
    params = validate(raw, SCHEMAS[study], str(path), RELATIONS.get(study, ()))
    if params.get("name") is None:
        params["name"] = path.stem
    return params


def dump(params: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(params), sort_keys=True)
