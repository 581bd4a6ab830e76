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


# --- tagged unions ----------------------------------------------------------------------
# A field typed `A | B | C` where each is a dataclass with a class-level `TAG` is written in
# YAML as a one-key mapping naming the variant (`expect: {pattern: ...}`), or as the bare tag
# when the variant needs no values (`- boot`). A variant with `SHORTHAND = "field"` also takes
# a single scalar for that field (`expect: "Kwast booting"`). A variant with a `line` field
# declared `init=False` gets the line it was written on, for error reports later.

def _is_tagged_union(options: list[Any]) -> bool:
    return len(options) > 1 and all(dataclasses.is_dataclass(o) and isinstance(getattr(o, "TAG", None), str)
                                    for o in options)


def _tags(options: list[Any]) -> str:
    return ", ".join(o.TAG for o in options)


# --- partial schemas, for overrides -------------------------------------------------------

def partial(schema: type) -> type:
    """A dataclass with `schema`'s fields, each optional (None = not given), nested dataclasses
    partial too: decode overrides with it, then `apply` them to a complete value."""
    hints = typing.get_type_hints(schema)
    fields = []
    for spec in dataclasses.fields(schema):
        if not spec.init:
            continue
        kind = hints[spec.name]
        if dataclasses.is_dataclass(kind):
            kind = partial(kind)
        fields.append((spec.name, kind | None, dataclasses.field(default=None, metadata=spec.metadata)))
    made = dataclasses.make_dataclass(f"Partial{schema.__name__}", fields, frozen=True)
    made.SCHEMA = schema
    return made


def apply(base: Any, changes: Any) -> Any:
    """`base` with every field `changes` gives (not None) replaced; nested partials merge."""
    updates = {}
    for spec in dataclasses.fields(changes):
        value = getattr(changes, spec.name)
        if value is None:
            continue
        if dataclasses.is_dataclass(value) and hasattr(type(value), "SCHEMA"):
            value = apply(getattr(base, spec.name), value)
        updates[spec.name] = value
    return dataclasses.replace(base, **updates)


def load(path: Path, schema: type) -> Any:
    """Parses `path` into an instance of the dataclass `schema`."""
    path = Path(path)
    return decode(path, compose(path), schema)


def compose(path: Path) -> yaml.Node:
    """`path`'s YAML as nodes that know their lines (to rewrite before `decode`, as scenario
    matrices do)."""
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
    return node


def decode(path: Path, node: yaml.Node, schema: type) -> Any:
    """`node` (from `path`) as an instance of the dataclass `schema`."""
    return _Decoder(path).value(node, schema, "")


def _type_name(kind: Any) -> str:
    origin = typing.get_origin(kind)
    if origin is Literal:
        return " or ".join(repr(v) for v in typing.get_args(kind))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(kind)[0])}"
    if dataclasses.is_dataclass(kind):
        return "a mapping"
    if origin in (typing.Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        if _is_tagged_union(options):
            return f"one of: {_tags(options)}"
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
            if _is_tagged_union(options):
                return self.tagged(node, options, field)
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
        # A field named like a Python keyword plus `_` (`break_`) is written without it (`break:`).
        fields = {f.name.rstrip("_"): f for f in dataclasses.fields(schema)}
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
        missing = [k for k, f in fields.items() if f.init and f.name not in values
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            where = prefix or "(top level)"
            raise self.error(node, where, f"missing required key{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
        try:
            made = schema(**values)
        except ValueError as error:  # a rule across fields, checked in the dataclass's __post_init__
            raise self.error(node, prefix or "(top level)", str(error)) from None
        return self.located(made, node)

    def located(self, value: Any, node: yaml.Node) -> Any:
        if any(f.name == "line" and not f.init for f in dataclasses.fields(value)):
            object.__setattr__(value, "line", node.start_mark.line + 1)
        return value

    def tagged(self, node: yaml.Node, options: list[Any], field: str) -> Any:
        by_tag = {o.TAG: o for o in options}
        if isinstance(node, yaml.ScalarNode) and isinstance(node.value, str) and node.value in by_tag:
            tag, body = node.value, None
        elif isinstance(node, yaml.MappingNode) and len(node.value) == 1:
            tag, body = node.value[0][0].value, node.value[0][1]
        elif isinstance(node, yaml.MappingNode) and node.value:
            keys = ", ".join(str(k.value) for k, _ in node.value)
            raise self.error(node, field, f"expected one key naming the kind ({_tags(options)}), got {keys}: "
                                          f"put the options under the kind, e.g. `kind: {{option: value}}`")
        else:
            raise self.error(node, field, f"expected one of: {_tags(options)}")
        schema = by_tag.get(tag)
        if schema is None:
            raise self.error(node, field, f"unknown kind {tag!r} (known: {_tags(options)})")
        name = f"{field}.{tag}"
        if body is None or (isinstance(body, yaml.ScalarNode) and body.tag == "tag:yaml.org,2002:null"):
            return self.mapping(yaml.MappingNode("tag:yaml.org,2002:map", [], node.start_mark, node.end_mark), schema, name)
        shorthand = getattr(schema, "SHORTHAND", None)
        if shorthand and not isinstance(body, yaml.MappingNode):
            key = yaml.ScalarNode("tag:yaml.org,2002:str", shorthand, body.start_mark, body.end_mark)
            body = yaml.MappingNode("tag:yaml.org,2002:map", [(key, body)], body.start_mark, body.end_mark)
        return self.mapping(body, schema, name)

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
