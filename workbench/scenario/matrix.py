"""Scenario matrices: one file, several runs. A scenario's `matrix:` gives values for `${name}`
variables; each combination is its own run, named in pytest, JUnit, `kwast-bench run` and the TUI.

Values are substituted into the YAML nodes before they are decoded, so any field may use them
(steps, overrides, append) and a mistake still names the line it was written on. A value is
read as if written in place of `${name}`: unquoted and alone, `count: ${cpus}` is a number; in
quotes or inside longer text it is text. In steps, a name the matrix does not give is left for run time: a value
an earlier step captured or saved."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..yamlmodel import ConfigError

VARIABLE = re.compile(r"\$\{(\w+)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A run's name goes into pytest ids, JUnit case names and artifact folder names.
_RUN_NAME = re.compile(r"[\w.+-]+")
_SHAPES = ("a mapping: `variable: [values]` (every combination runs) or "
           "`name: {variable: value}` (one named run each)")


@dataclass(frozen=True)
class Combination:
    name: str                          # "" for a scenario without a matrix
    values: dict[str, yaml.ScalarNode]


NONE = Combination("", {})


def _error(path: Path, node: yaml.Node, field: str, message: str) -> ConfigError:
    return ConfigError(path, node.start_mark.line + 1, field, message)


def take(path: Path, document: yaml.Node) -> yaml.Node | None:
    """Removes the top-level `matrix:` from `document` and returns its value (None: no matrix)."""
    if not isinstance(document, yaml.MappingNode):
        return None  # decoding reports that the scenario is not a mapping
    found = [(key, value) for key, value in document.value if key.value == "matrix"]
    if len(found) > 1:
        raise _error(path, found[1][0], "matrix", "given twice")
    document.value = [(key, value) for key, value in document.value if key.value != "matrix"]
    return found[0][1] if found else None


def combinations(path: Path, node: yaml.Node) -> list[Combination]:
    """Every run a `matrix:` value describes, in the order written."""
    if not isinstance(node, yaml.MappingNode):
        raise _error(path, node, "matrix", f"expected {_SHAPES}")
    if not node.value:
        raise _error(path, node, "matrix", "is empty: give at least one variable or named run")
    _unique(path, [key for key, _ in node.value], "matrix")
    if all(isinstance(value, yaml.SequenceNode) for _, value in node.value):
        return _product(path, node)
    if all(isinstance(value, yaml.MappingNode) for _, value in node.value):
        return _named(path, node)
    for key, value in node.value:
        if not isinstance(value, (yaml.SequenceNode, yaml.MappingNode)):
            raise _error(path, value, f"matrix.{key.value}", f"expected a list of values or a mapping of "
                                                             f"variables; the matrix is {_SHAPES}")
    raise _error(path, node, "matrix", "mixes lists (variables, every combination) and mappings (named "
                                       "runs): use one kind")


def _product(path: Path, node: yaml.MappingNode) -> list[Combination]:
    variables = []
    for key, values in node.value:
        field = f"matrix.{key.value}"
        _variable_name(path, key, field)
        if not values.value:
            raise _error(path, values, field, "has no values")
        for i, value in enumerate(values.value):
            _scalar(path, value, f"{field}[{i}]")
        _unique(path, values.value, field)
        variables.append([(key.value, value) for value in values.value])
    # Named like pytest's parametrize ids: the values joined by "-".
    return [Combination("-".join(value.value for _, value in chosen), dict(chosen))
            for chosen in itertools.product(*variables)]


def _named(path: Path, node: yaml.MappingNode) -> list[Combination]:
    found, first = [], None
    for key, values in node.value:
        field = f"matrix.{key.value}"
        if not _RUN_NAME.fullmatch(str(key.value)):
            raise _error(path, key, field, "a run's name must be letters, digits, _ . + or - (it names the "
                                           "pytest item and the artifact folder)")
        if not values.value:
            raise _error(path, values, field, "gives no variables")
        _unique(path, [name for name, _ in values.value], field)
        given = {}
        for name, value in values.value:
            _variable_name(path, name, f"{field}.{name.value}")
            given[name.value] = _scalar(path, value, f"{field}.{name.value}")
        if first is None:
            first = (key.value, sorted(given))
        elif sorted(given) != first[1]:
            raise _error(path, key, field, f"gives {', '.join(sorted(given))}; every run must give the same "
                                           f"variables as the first ({first[0]}: {', '.join(first[1])})")
        found.append(Combination(key.value, given))
    return found


def _variable_name(path: Path, node: yaml.Node, field: str) -> None:
    if not isinstance(node.value, str) or not _NAME.fullmatch(node.value):
        raise _error(path, node, field, "a variable's name must be letters, digits and _, usable as ${name}")


def _scalar(path: Path, node: yaml.Node, field: str) -> yaml.ScalarNode:
    if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
        raise _error(path, node, field, "expected a single value (text or a number), not "
                                        + ("nothing" if isinstance(node, yaml.ScalarNode) else "a list or mapping"))
    return node


def _unique(path: Path, nodes: list[yaml.Node], field: str) -> None:
    seen = set()
    for node in nodes:
        if node.value in seen:
            raise _error(path, node, field, f"{node.value!r} given twice")
        seen.add(node.value)


def check_used(path: Path, node: yaml.MappingNode, used: set[str]) -> None:
    """A variable written nowhere in the scenario is a typo or a leftover: say where it is."""
    first = node.value[0][1]
    if isinstance(first, yaml.SequenceNode):
        names = [(key, f"matrix.{key.value}") for key, _ in node.value]
    else:
        names = [(key, f"matrix.{node.value[0][0].value}.{key.value}") for key, _ in first.value]
    for key, field in names:
        if key.value not in used:
            raise _error(path, key, field, f"used nowhere: write ${{{key.value}}} where its value goes")


def substitute(path: Path, document: yaml.Node, combination: Combination, used: set[str]) -> yaml.Node:
    """A copy of the scenario `document` with the combination's values in place of `${name}`.
    Names substituted go into `used`; outside `steps`, a name the matrix does not give is an error."""
    def walk(node: yaml.Node, field: str, in_steps: bool) -> yaml.Node:
        if isinstance(node, yaml.MappingNode):
            return yaml.MappingNode(node.tag, [
                (key, walk(value, f"{field}.{key.value}" if field else str(key.value), in_steps or
                           (not field and key.value == "steps"))) for key, value in node.value],
                node.start_mark, node.end_mark, node.flow_style)
        if isinstance(node, yaml.SequenceNode):
            return yaml.SequenceNode(node.tag, [walk(item, f"{field}[{i}]", in_steps)
                                                for i, item in enumerate(node.value)],
                                     node.start_mark, node.end_mark, node.flow_style)
        if not isinstance(node.value, str) or "${" not in node.value:
            return node
        whole = VARIABLE.fullmatch(node.value)
        if whole and whole.group(1) in combination.values and node.style is None:
            used.add(whole.group(1))
            value = combination.values[whole.group(1)]
            return yaml.ScalarNode(value.tag, value.value, node.start_mark, node.end_mark, value.style)

        def one(match: re.Match) -> str:
            name = match.group(1)
            if name in combination.values:
                used.add(name)
                return combination.values[name].value
            if not in_steps:
                known = ", ".join(sorted(combination.values)) or "none: the scenario has no matrix"
                raise _error(path, node, field, f"unknown variable ${{{name}}}: outside steps only the matrix's "
                                                f"variables can be used (matrix variables: {known})")
            return match.group(0)
        return yaml.ScalarNode("tag:yaml.org,2002:str", VARIABLE.sub(one, node.value),
                               node.start_mark, node.end_mark, node.style)

    return walk(document, "", False)
