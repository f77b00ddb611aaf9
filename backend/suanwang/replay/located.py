"""Reading a scenario's YAML safely, with the line of every value, and typed reads that name the file,
line and field of a mistake (``<file>:<line>: <field>: <message>``, see ``suanwang.replay.scenario``).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from suanwang.errors import InputError

TOKEN = 10**18
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# A scenario is a page of YAML; these bounds refuse what no scenario needs and a hostile file uses:
# aliases that expand exponentially (the YAML "billion laughs"), cycles, and nesting that would
# exhaust the stack.
MAX_YAML_NODES = 20_000  # the shipped scenarios hold 100 to 400
MAX_YAML_DEPTH = 64
# Tags the scenario format uses (YAML 1.1's core schema); anything else (!!python/..., custom tags) is refused.
CORE_TAGS = {
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp", "merge")
}


class Located:
    """A YAML tree as plain values plus the line of every path (1-based)."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[tuple[Any, ...], int] = {}
        self.nodes = 0
        self._scalars = SafeConstructor()  # what yaml.safe_load would make of each scalar

    def build(self, node: yaml.Node, path: tuple[Any, ...] = ()) -> Any:
        self.lines[path] = node.start_mark.line + 1
        self.nodes += 1
        if self.nodes > MAX_YAML_NODES:
            raise self.error(path, f"more than {MAX_YAML_NODES:,} values (aliases expanding without end?)")
        if len(path) > MAX_YAML_DEPTH:
            raise self.error(path, f"nested more than {MAX_YAML_DEPTH} levels deep (an alias that contains itself?)")
        if node.tag not in CORE_TAGS:
            raise self.error(path, f"unsupported YAML tag {node.tag!r}; a scenario holds plain values only")
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    self.lines[(*path, "?")] = key_node.start_mark.line + 1
                    raise self.error((*path, "?"), "a key must be a plain name, not a list or a mapping")
                key = str(key_node.value)
                if key in out:
                    self.lines[(*path, key)] = key_node.start_mark.line + 1
                    raise self.error((*path, key), f"the key {key!r} is given twice")
                out[key] = self.build(value_node, (*path, key))
                self.lines[(*path, key)] = key_node.start_mark.line + 1
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        if node.tag == "tag:yaml.org,2002:str":
            return node.value
        try:
            return self._scalars.construct_object(node)
        except (yaml.YAMLError, ValueError) as exc:  # e.g. an integer of more than 4,300 digits
            reason = str(exc).split(";")[0]  # not Python's advice on raising its own limit
            raise self.error(path, f"{node.value[:40]!r} is not a valid value: {reason}") from None

    def line(self, path: tuple[Any, ...]) -> int:
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)

    def error(self, path: tuple[Any, ...], message: str) -> InputError:
        dotted = dotted_path(path if len(path) <= 8 else (*path[:8], "...")) or "(top level)"
        line = self.line(path)
        return InputError(f"{self.file}:{line}: {dotted}: {message}", field=f"{self.file}:{line}:{dotted}")


def dotted_path(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class Reader:
    """Typed reads of a Located tree's values: each refuses a wrong value with the file, line and field."""

    def __init__(self, located: Located) -> None:
        self.loc = located

    def err(self, path: tuple[Any, ...], message: str) -> InputError:
        return self.loc.error(path, message)

    def mapping(
        self, value: Any, path: tuple[Any, ...], allowed: set[str], required: frozenset[str] | set[str] = frozenset()
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.err(path, f"expected a mapping, got {type(value).__name__}")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise self.err((*path, unknown[0]), f"unknown field {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
        missing = sorted(required - set(value))
        if missing:
            raise self.err(path, f"missing field {missing[0]!r}")
        return value

    def seq(self, value: Any, path: tuple[Any, ...]) -> list[Any]:
        if not isinstance(value, list):
            raise self.err(path, f"expected a list, got {type(value).__name__}")
        return value

    def string(self, value: Any, path: tuple[Any, ...]) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.err(path, f"expected a non-empty string, got {value!r}")
        return value.strip()

    def integer(self, value: Any, path: tuple[Any, ...], low: int = 0, high: int = 2**128 - 1) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.err(path, f"expected an integer in {low}..{high}, got {value!r}")
        return value

    def number(self, value: Any, path: tuple[Any, ...], low: float = 0.0, high: float = float("inf")) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise self.err(path, f"expected a number in {low}..{high}, got {value!r}")
        return float(value)

    def tokens(self, value: Any, path: tuple[Any, ...]) -> int:
        """An amount in tokens (decimal string or number; '0.05' = 5 * 10**16 base units)."""
        if isinstance(value, bool):
            raise self.err(path, f"expected an amount of tokens, got {value!r}")
        try:
            amount = Decimal(str(value)) * TOKEN
        except InvalidOperation:
            raise self.err(path, f"expected an amount of tokens (e.g. '0.05'), got {value!r}") from None
        if amount < 0 or amount != amount.to_integral_value() or amount >= 2**128:
            raise self.err(path, f"an amount of tokens must be >= 0 with at most 18 decimals, got {value!r}")
        return int(amount)

    def duration(self, value: Any, path: tuple[Any, ...]) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", str(value)) if isinstance(value, str) else None
        if match is None:
            raise self.err(path, f"expected a duration (seconds, or e.g. '90s', '30m', '2h', '1d'), got {value!r}")
        return int(float(match.group(1)) * DURATION_UNITS[match.group(2)])

    def int_range(self, value: Any, path: tuple[Any, ...], parse: Any) -> tuple[int, int]:
        if isinstance(value, list):
            if len(value) != 2:
                raise self.err(path, f"expected [low, high], got {value!r}")
            low, high = parse(value[0], (*path, 0)), parse(value[1], (*path, 1))
            if low > high:
                raise self.err(path, f"low {value[0]!r} is above high {value[1]!r}")
            return low, high
        single = parse(value, path)
        return single, single


def check_nesting(text: str, file: str) -> None:
    """Refuses nesting deeper than MAX_YAML_DEPTH from the parser's events (the parser keeps its own
    stack, so this costs no recursion, while composing 100,000 levels took minutes)."""
    depth = 0
    for event in yaml.parse(text):
        if isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else 1
                raise InputError(
                    f"{file}:{line}: (syntax): nested more than {MAX_YAML_DEPTH} levels deep",
                    field=f"{file}:{line}:syntax",
                )
        elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
            depth -= 1


def read_located(path: Path) -> tuple[Located, Any]:
    """The scenario file's values and the line of each (an InputError naming the line when the file
    cannot be read, is not UTF-8, is not YAML, nests too deeply or is empty)."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"{file}:1: (file): cannot read the scenario ({exc.strerror})", field=f"{file}:1:file"
        ) from exc
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise InputError(f"{file}:{line}: (file): not UTF-8 text ({exc.reason})", field=f"{file}:{line}:file") from None
    located = Located(file)
    try:
        check_nesting(text, file)  # before compose, which recurses once per level
        root = yaml.compose(text)
    except yaml.MarkedYAMLError as exc:
        line = (exc.problem_mark.line + 1) if exc.problem_mark else 1
        raise InputError(f"{file}:{line}: (syntax): {exc.problem}", field=f"{file}:{line}:syntax") from None
    except yaml.YAMLError as exc:  # e.g. a control character PyYAML refuses, without a mark
        raise InputError(f"{file}:1: (syntax): {exc}", field=f"{file}:1:syntax") from None
    except RecursionError:
        raise InputError(
            f"{file}:1: (syntax): nested too deeply to read (a scenario needs a few levels)",
            field=f"{file}:1:syntax",
        ) from None
    if root is None:
        raise InputError(f"{file}:1: (top level): the scenario is empty", field=f"{file}:1:")
    doc = located.build(root)
    return located, doc
