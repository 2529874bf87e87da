"""Flow files: YAML read with the line of every key, so problems point at file:line.

PyYAML keeps the last of two equal keys without a word; a flow with two
entries for digit 1 must be refused instead, so duplicates are found here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ari_app.domain.ivr.flow import Path as KeyPath
from ari_app.domain.ivr.flow import Problem
from ari_app.domain.located import Located


@dataclass
class FlowFile:
    source: str
    data: Any
    lines: dict[KeyPath, int]
    problems: list[Located]

    def locate(self, problem: Problem) -> Located:
        """The line of the deepest key of the problem's path that the file has."""
        path = problem.path
        while path and path not in self.lines:
            path = path[:-1]
        return Located(self.source, self.lines.get(path, 1), problem.message)


def _walk(
    node: yaml.Node,
    path: KeyPath,
    lines: dict[KeyPath, int],
    problems: list[tuple[KeyPath, int, str]],
) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _CONSTRUCT.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                line = key_node.start_mark.line + 1
                problems.append(((*path, str(key)), line, "a key is a name, not a list or map"))
                continue
            key = str(key) if isinstance(key, int | float | bool) else key
            child = (*path, key)
            if key in result:
                problems.append(
                    (
                        child,
                        key_node.start_mark.line + 1,
                        f"'{key}' is given twice (first on line {lines[child]})",
                    )
                )
            lines.setdefault(child, key_node.start_mark.line + 1)
            result[key] = _walk(value_node, child, lines, problems)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, (*path, i), lines, problems) for i, item in enumerate(node.value)]
    return _CONSTRUCT.construct_object(node, deep=True)


# scalars as the safe loader makes them (an empty value is None, `yes` is True...)
_CONSTRUCT = yaml.constructor.SafeConstructor()


def parse_text(text: str, source: str) -> FlowFile:
    """Parse YAML text into data plus the line of every key path."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        if mark is not None and mark.line >= text.count("\n"):
            # the end of the file: where the unfinished construct began says more
            mark = getattr(exc, "context_mark", None) or mark
        line = mark.line + 1 if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc)
        return FlowFile(source, None, {}, [Located(source, line, f"not valid YAML: {reason}")])
    if root is None:
        return FlowFile(source, None, {}, [Located(source, 1, "the file is empty")])
    lines: dict[KeyPath, int] = {}
    found: list[tuple[KeyPath, int, str]] = []
    data = _walk(root, (), lines, found)
    return FlowFile(source, data, lines, [Located(source, line, msg) for _, line, msg in found])


def read(path: Path) -> FlowFile:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        return FlowFile(str(path), None, {}, [Located(str(path), 1, f"cannot read: {exc}")])
    return parse_text(text, str(path))
