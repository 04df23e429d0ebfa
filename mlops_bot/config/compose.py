"""YAML composed under limits, for ml.yaml (`source`) and the params file (`load_yaml`).

PyYAML composes a whole document into nodes before anyone can look at it, recursing once per level of
nesting and resolving an alias to the very node it names. Here every node is counted as it is composed, each
use of an alias counting all the values of its anchor, so a long flat list or an alias bomb stops at the limit
instead of after the last byte; nesting (through aliases too) is bounded well below Python's recursion limit;
and an alias inside its own anchor (`x: &r [*r]`), which would make a value that contains itself, is refused.
The parsing is libyaml's where it is installed (the C parser is ~20x faster); the composing stays here, in
Python, so the limits hold with either parser.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent, NodeEvent
from yaml.nodes import Node, ScalarNode

MAX_DEPTH = 64  # levels of nesting; ml.yaml needs about six
MAX_NODES = 50_000  # values, counted through aliases: a config is hand-written
PARAMS_MAX_NODES = 1_000_000  # a params file may hold data-like lists; it still may not be a bomb
MAX_NUMBER_CHARS = 100  # a longer number is a mistake (Python refuses more than 4,300 digits)
_INT_BITS = 4000  # ~1,200 digits: hex and sexagesimal integers are not bound by their length
# What PyYAML's constructors raise for a value its explicit tag cannot hold: `!!int abc`, `!!float ''`,
# `!!bool maybe`, `!!timestamp x`, and an integer of 4,301+ digits.
CONSTRUCTION_ERRORS = (ValueError, LookupError, TypeError, AttributeError, ArithmeticError)

YamlPath = tuple[str | int, ...]


class LimitError(yaml.YAMLError):
    """A limit passed or a rule of ours broken: where (`mark`, 0-based, and the key path) and what to do."""

    def __init__(self, path: YamlPath, mark: Any, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.line, self.col = mark.line + 1, mark.column + 1
        self.message = message


class _Limited(Composer):
    """`compose_node` with the counting; `_start` sets the state (the parsers' __init__ do not call ours)."""

    peek_event: Any  # the parser's, pure-Python or libyaml's

    def _start(self, max_nodes: int) -> None:
        self.anchors: dict[Any, Node] = {}
        self.max_nodes = max_nodes
        self.values = 0  # composed so far, each alias use counting its anchor's values
        self.depth = 0  # of the node being composed (the root is 1)
        self.peak = 0  # the deepest level reached under the node being composed
        self.trail: list[Any] = []  # key path of the node being composed (None for the root and for keys)
        self.shapes: dict[int, tuple[int, int]] = {}  # id(anchored node) -> (values, levels), once complete

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self.trail.append(index.value if isinstance(index, ScalarNode) else "?" if isinstance(index, Node)
                          else index)
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            self._alias(event)
            node = super().compose_node(parent, index)
        else:
            node = self._composed(event, parent, index)
        self.trail.pop()
        return node

    def _composed(self, event: NodeEvent, parent: Node | None, index: Any) -> Node | None:
        self._count(1, event)
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self._error(event, f"the values nest more than {MAX_DEPTH} levels deep; check the brackets "
                                     "and the indentation")
        outer_peak, self.peak = self.peak, self.depth
        before = self.values
        node = super().compose_node(parent, index)
        if event.anchor is not None:
            self.shapes[id(node)] = (self.values - before + 1, self.peak - self.depth + 1)
        self.peak = max(outer_peak, self.peak)
        self.depth -= 1
        return node

    def _alias(self, event: AliasEvent) -> None:
        target = self.anchors.get(event.anchor)
        if target is None:
            return  # PyYAML reports the undefined alias
        shape = self.shapes.get(id(target))
        if shape is None:
            raise self._error(event, f"the alias *{event.anchor} is used inside its own anchor &{event.anchor}, "
                                     "which would make a value that contains itself; refer to a finished anchor")
        values, levels = shape
        self._count(values, event)
        if self.depth + levels > MAX_DEPTH:
            raise self._error(event, f"the alias *{event.anchor} nests the values more than {MAX_DEPTH} levels "
                                     "deep; write the structure out plainly")
        self.peak = max(self.peak, self.depth + levels)

    def _count(self, values: int, event: Any) -> None:
        self.values += values
        if self.values > self.max_nodes:
            raise self._error(event, f"the document expands to more than {self.max_nodes} values (each use of an "
                                     "alias counts all of its values); write it out plainly and keep it small")

    def _error(self, event: Any, message: str) -> LimitError:
        return LimitError(tuple(part for part in self.trail if part is not None), event.start_mark, message)


class _PyLoader(_Limited, yaml.SafeLoader):
    def __init__(self, text: str, max_nodes: int) -> None:
        yaml.SafeLoader.__init__(self, text)
        self._start(max_nodes)


_Loader: Any = _PyLoader
if getattr(yaml, "__with_libyaml__", False):

    class _CLoader(_Limited, yaml.CSafeLoader):  # Composer's methods come before CParser's in the MRO
        def __init__(self, text: str, max_nodes: int) -> None:
            yaml.CSafeLoader.__init__(self, text)
            self._start(max_nodes)

    _Loader = _CLoader


def compose(text: str, max_nodes: int = MAX_NODES) -> tuple[Node | None, Any]:
    """The first document's node (None for an empty stream) and the mark where a second document starts (None
    if there is none). Raises LimitError, or PyYAML's YAMLError for invalid YAML."""
    loader = _Loader(text, max_nodes)
    try:
        node = loader.get_node() if loader.check_node() else None
        second = loader.peek_event().start_mark if node is not None and loader.check_node() else None
        return node, second
    finally:
        loader.dispose()


class _Constructor(yaml.constructor.SafeConstructor):
    """SafeConstructor, with a value its (explicit) tag cannot hold reported at its line, as YAML errors are."""

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            value = super().construct_object(node, deep)
        except CONSTRUCTION_ERRORS as exc:
            raise yaml.constructor.ConstructorError(None, None, unreadable(node, exc), node.start_mark) from None
        if isinstance(value, int) and value.bit_length() > _INT_BITS:
            raise yaml.constructor.ConstructorError(None, None, unreadable(node, None), node.start_mark)
        return value


def unreadable(node: Node, exc: BaseException | None) -> str:
    """Why a scalar cannot be constructed, for a message (never the interpreter's advice on its own limits)."""
    kind = str(node.tag).rsplit(":", 1)[-1]
    text = str(node.value)
    shown = repr(text) if len(text) <= 40 else repr(text[:37]) + "..."
    if exc is None or len(text) > MAX_NUMBER_CHARS:
        return f"{shown} is too long for a number ({len(text)} characters); quote it if it is text"
    return f"{shown} is not a valid {kind}; fix the value or remove the tag !!{kind}"


def load_yaml(text: str, max_nodes: int = PARAMS_MAX_NODES) -> Any:
    """What `yaml.safe_load` gives (YAML 1.1 types, so a params file's values keep their meaning), under the
    limits. Raises LimitError, or YAMLError for invalid YAML and for a value its tag cannot hold."""
    node, second = compose(text, max_nodes)
    if second is not None:
        raise LimitError((), second, "a second YAML document starts here; the file must hold one")
    return None if node is None else _Constructor().construct_document(node)


def explain(exc: yaml.YAMLError, text: str) -> tuple[int, int, str]:
    """The 1-based line and column a YAMLError points at (1, 1 when it names none) and what it says, in a line;
    "invalid YAML: " leads unless it is one of our limits."""
    if isinstance(exc, LimitError):
        return exc.line, exc.col, exc.message
    what = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        return mark.line + 1, mark.column + 1, f"invalid YAML: {what}"
    character = getattr(exc, "character", None)  # a ReaderError: its position is in bytes or characters
    if isinstance(character, int) and chr(character) in text:
        before = text[: text.index(chr(character))]
        return before.count("\n") + 1, len(before) - before.rfind("\n"), f"invalid YAML: {what}"
    return 1, 1, f"invalid YAML: {what}"
