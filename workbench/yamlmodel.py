"""Typed, validated objects from YAML, with every error naming file, line and field.

PyYAML composes the document into nodes that remember their positions; we walk those nodes
against a dataclass schema instead of converting to plain dicts first, so the line of the
offending key or value is never lost.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Callable, Literal

import yaml


class ConfigError(Exception):
    """A problem in a YAML file, located at file:line and a dotted field path."""

    def __init__(self, path: Path | str, line: int, field: str, message: str):
        super().__init__(f"{path}:{line}: {field}: {message}" if field else f"{path}:{line}: {message}")
        self.path, self.line, self.field, self.message = Path(path), line, field, message


def check(predicate: Callable[[Any], bool], message: str) -> dict:
    """Field metadata: a value must satisfy `predicate`, else `message` is the error."""
    return {"check": (predicate, message)}


def parser(function: Callable[[Any], Any]) -> dict:
    """Field metadata: turn the raw YAML value into the field's value (raise ValueError to reject)."""
    return {"parse": function}


_scalars = yaml.SafeLoader("")


def load(path: Path, schema: type) -> Any:
    """Parses `path` into an instance of the dataclass `schema`."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(path, 0, "", f"cannot read: {error.strerror}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        raise ConfigError(path, mark.line + 1 if mark else 0, "", f"not valid YAML: {error.problem}") from None
    if node is None:
        raise ConfigError(path, 1, "", "the file is empty")
    return _Decoder(path).value(node, schema, "")


def _type_name(kind: Any) -> str:
    origin = typing.get_origin(kind)
    if origin is Literal:
        return " or ".join(repr(v) for v in typing.get_args(kind))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(kind)[0])}"
    if dataclasses.is_dataclass(kind):
        return "a mapping"
    return {int: "an integer", str: "a string", bool: "true or false", float: "a number"}.get(kind, str(kind))


class _Decoder:
    def __init__(self, path: Path):
        self.path = path

    def error(self, node: yaml.Node, field: str, message: str) -> ConfigError:
        return ConfigError(self.path, node.start_mark.line + 1, field, message)

    def value(self, node: yaml.Node, kind: Any, field: str) -> Any:
        origin = typing.get_origin(kind)
        if origin in (typing.Union, types.UnionType):
            options = [k for k in typing.get_args(kind) if k is not type(None)]
            if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
                return None
            return self.value(node, options[0], field)
        if dataclasses.is_dataclass(kind):
            return self.mapping(node, kind, field)
        if origin is list:
            if not isinstance(node, yaml.SequenceNode):
                raise self.error(node, field, f"expected {_type_name(kind)}")
            item = typing.get_args(kind)[0]
            return [self.value(child, item, f"{field}[{i}]") for i, child in enumerate(node.value)]
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, field, f"expected {_type_name(kind)}")
        raw = _scalars.construct_object(node)
        if origin is Literal:
            if raw not in typing.get_args(kind):
                raise self.error(node, field, f"{raw!r} is not one of {_type_name(kind)}")
            return raw
        # bool is an int in Python: keep `true` out of integer fields.
        if not isinstance(raw, kind) or (kind is not bool and isinstance(raw, bool)):
            if kind is float and isinstance(raw, int) and not isinstance(raw, bool):
                return float(raw)
            raise self.error(node, field, f"expected {_type_name(kind)}, got {raw!r}")
        return raw

    def mapping(self, node: yaml.Node, schema: type, prefix: str) -> Any:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, prefix or "(top level)", "expected a mapping")
        fields = {f.name: f for f in dataclasses.fields(schema)}
        hints = typing.get_type_hints(schema)
        values: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            name = f"{prefix}.{key}" if prefix else str(key)
            spec = fields.get(str(key))
            if spec is None or not spec.init:
                known = ", ".join(f for f, s in fields.items() if s.init)
                raise self.error(key_node, name, f"unknown key (known keys: {known})")
            if spec.name in values:
                raise self.error(key_node, name, "given twice")
            values[spec.name] = self.field(value_node, spec, hints[spec.name], name)
        missing = [f.name for f in fields.values() if f.init and f.name not in values
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            where = prefix or "(top level)"
            raise self.error(node, where, f"missing required key{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
        return schema(**values)

    def field(self, node: yaml.Node, spec: dataclasses.Field, kind: Any, name: str) -> Any:
        parse = spec.metadata.get("parse")
        if parse is not None:
            if not isinstance(node, yaml.ScalarNode):
                raise self.error(node, name, "expected a single value")
            try:
                value = parse(_scalars.construct_object(node))
            except ValueError as error:
                raise self.error(node, name, str(error)) from None
        else:
            value = self.value(node, kind, name)
        check_spec = spec.metadata.get("check")
        if check_spec is not None and not check_spec[0](value):
            raise self.error(node, name, check_spec[1])
        return value
