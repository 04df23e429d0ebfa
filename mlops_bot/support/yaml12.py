"""YAML 1.2's core schema for PyYAML, which types plain scalars by YAML 1.1.

Under the core schema only `true` and `false` (in three spellings each) are booleans: `yes`, `no`, `on` and `off`
are text. `null`, `~` and an empty value are null. Integers are decimal (`010` is ten), `0o17` or `0x1F`; floats
are `1.5`, `.5`, `1.`, `5e-1`, `1E+3`, `.inf`, `-.inf` and `.nan`. Anything else is text, YAML 1.1's `1_000`,
`1:30`, `0b101` and dates included, and `<<` is a key like any other (YAML 1.1's merge key is not in 1.2).
Explicit tags (`!!int "7"`) are read by PyYAML's safe constructors as before. `loader(text)` parses with libyaml
where it is installed (as config/compose does), else with PyYAML's own parser (`Loader12`); both resolve by these
rules.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

_TAG = "tag:yaml.org,2002:"
_DECIMAL = re.compile(r"[-+]?[0-9]+")
_OCTAL = re.compile(r"0o[0-7]+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
# (type, pattern, first characters): YAML 1.2.2, 10.3.2 "Tag Resolution"; integers are tried before floats.
_IMPLICIT = (
    ("null", r"^(?:~|null|Null|NULL|)$", "~nN"),
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    ("float", r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
              r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+.0123456789"),
)
_PATTERNS = tuple((kind, re.compile(pattern)) for kind, pattern, _ in _IMPLICIT)


class Resolver12(BaseResolver):
    """The core schema's implicit types; no path resolvers."""


for (_kind, _pattern), (*_, _first) in zip(_PATTERNS, _IMPLICIT, strict=True):
    Resolver12.add_implicit_resolver(f"{_TAG}{_kind}", _pattern, [*_first, *([""] * (_kind == "null"))])


def implicit_type(text: str) -> str:
    """The core schema's type of `text` written plain: "null", "bool", "int", "float" or "str"."""
    return next((kind for kind, pattern in _PATTERNS if pattern.match(text)), "str")


class Constructor12(SafeConstructor):
    """SafeConstructor with YAML 1.2's integers (`010` is ten, `0o17` is fifteen)."""

    def construct_yaml_int(self, node: ScalarNode) -> int:
        text = str(self.construct_scalar(node))
        if _DECIMAL.fullmatch(text):
            return int(text)
        if _OCTAL.fullmatch(text):
            return int(text[2:], 8)
        if _HEX.fullmatch(text):
            return int(text[2:], 16)
        return super().construct_yaml_int(node)  # an explicit !!int in another spelling

    yaml_constructors: ClassVar[dict[Any, Any]] = {**SafeConstructor.yaml_constructors,
                                                   f"{_TAG}int": construct_yaml_int}


class Loader12(Reader, Scanner, Parser, Composer, Constructor12, Resolver12):
    """PyYAML's pure-Python safe loader with the core schema: `yaml.load(text, Loader=Loader12)`, or
    `Loader12(text).get_single_node()` for the nodes (each with its `start_mark`)."""

    def __init__(self, stream: Any) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        Constructor12.__init__(self)
        Resolver12.__init__(self)


_CLoader12: Any = None
if getattr(yaml, "__with_libyaml__", False):  # libyaml parses ~20x faster, and refuses nesting past 1,000 levels

    class _CLoader12(Constructor12, Resolver12, yaml.CSafeLoader):  # type: ignore[no-redef]
        """libyaml's parser with the core schema (these bases' constructors and resolvers come first)."""


def loader(text: str) -> Any:
    """A loader of `text` with the core schema: libyaml's parser where it is installed, else `Loader12`."""
    return (_CLoader12 or Loader12)(text)
