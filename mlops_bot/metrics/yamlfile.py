"""A YAML metrics file, read as YAML 1.2 (`support/yaml12`, the core schema) from its nodes, so that every key
keeps its line and its text (`on` is the metric `on`), a repeated key is seen, and each value is typed by YAML 1.2
(`5e-1` is a number). Pure apart from the parsing; files.py flattens and checks what this gives."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DataError
from .reading import NotANumber, holds_no_mapping, shown, why

if TYPE_CHECKING:
    from yaml.nodes import Node

_TAG = "tag:yaml.org,2002:"
_TYPES = ("null", "bool", "int", "float", "str")
# What PyYAML's constructors raise for a value its explicit tag cannot hold: `!!int abc`, `!!float ''`.
_CONSTRUCTION = (ValueError, LookupError, TypeError, AttributeError, ArithmeticError)


class YamlDocument:
    """The file's root node; `items` gives a mapping's keys with their lines, `value` a metric's number."""

    def __init__(self, path: Path, text: str) -> None:
        import yaml  # on first use: importing the metrics package loads no YAML library
        from yaml import nodes

        from ..support.yaml12 import implicit_type, loader

        self.path, self.text, self.nodes, self.implicit_type = path, text, nodes, implicit_type
        self.errors = (*_CONSTRUCTION, yaml.YAMLError)
        self.loader = loader(text)
        try:
            root = self.loader.get_single_node()
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            context = getattr(exc, "context", None)
            if problem.startswith("but ") and context:  # "expected a single document ..., but found another"
                problem = f"{context}, {problem}"
            raise DataError(f"{path}{where}: not valid YAML: {problem}.") from None
        except (ValueError, RecursionError) as exc:
            raise DataError(f"{path}: cannot read the YAML ({why(exc)}).") from None
        finally:
            self.loader.dispose()
        if root is not None and not self._mapping(root):
            kind = "a list" if isinstance(root, nodes.SequenceNode) else f"a {str(root.tag).rsplit(':', 1)[-1]}"
            holds_no_mapping(path, kind)
        self.root = root

    def items(self, path: Path, node: Any) -> list[tuple[str, Any, int | None]] | None:
        """A non-empty mapping's (key, value node, line), in the file's order; None for anything else."""
        if not self._mapping(node) or not node.value:
            return None
        out: list[tuple[str, Any, int | None]] = []
        for key, value in node.value:
            line = key.start_mark.line + 1
            if not isinstance(key, self.nodes.ScalarNode):
                kind = "list" if isinstance(key, self.nodes.SequenceNode) else "mapping"
                raise DataError(f"{path}:{line}: a key is a {kind}; metric names are plain names.")
            if key.value == "<<" and not key.style:  # plain: None, or "" from libyaml
                raise DataError(f"{path}:{line}: `<<` (YAML 1.1's merge key) is not read in a metrics file, which is "
                                "YAML 1.2; write the metrics out.")
            out.append((str(key.value), value, line))
        return out

    def value(self, node: Node) -> float:
        """The number a value node holds; NotANumber says why it holds none."""
        kind = str(node.tag).rsplit(":", 1)[-1] if str(node.tag).startswith(_TAG) else ""
        if not isinstance(node, self.nodes.ScalarNode) or kind not in _TYPES:
            raise NotANumber(f"{self._source(node)} is not a number; metrics must be numbers.")
        try:
            value = self.loader.yaml_constructors[f"{_TAG}{kind}"](self.loader, node)
        except self.errors as exc:
            reason = why(exc) if isinstance(exc, ValueError) else f"it is not a valid {kind}"
            source = self._source(node)
            fix = "fix the value or remove its tag" if source.startswith("!") else "fix the value"
            raise NotANumber(f"{source} cannot be read ({reason}); {fix}.") from None
        if isinstance(value, str):
            if not node.style:
                raise NotANumber(f"{shown(value)} is not a number; YAML 1.2 writes numbers as 0.95, 1e-3 or 12.")
            unquoted = self.implicit_type(value.strip()) in ("int", "float")
            advice = "write it unquoted" if unquoted else "metrics must be numbers"
            raise NotANumber(f"{shown(value)} is a string, not a number; {advice}.")
        if value is None or isinstance(value, bool):
            raise NotANumber(f"{self._source(node) or 'null'} is not a number; metrics must be numbers.")
        try:
            return float(value)
        except OverflowError:
            raise NotANumber(f"{self._source(node)} is too large for a number.") from None

    def _mapping(self, node: Any) -> bool:
        return isinstance(node, self.nodes.MappingNode) and node.tag == f"{_TAG}map"

    def _source(self, node: Node, limit: int = 60) -> str:
        """The value as the file writes it, on one line and shortened."""
        text = " ".join(self.text[node.start_mark.index:node.end_mark.index].split())
        return text if len(text) <= limit else text[: limit - 3] + "..."
