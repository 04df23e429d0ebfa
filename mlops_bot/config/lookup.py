"""Lookups behind the checks in schema.py and semantics.py: did-you-mean hints and the params file's keys.
(Paths and their overlap: support/paths.py, shared with the pipeline.)"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml


def close_match(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def load_yaml_keys(path: Path) -> tuple[Any, str]:
    """(data, "") or (None, why not)."""
    if not path.is_file():
        return None, "the file does not exist"
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")), ""
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        return None, f"invalid YAML ({str(exc).splitlines()[0]})"


def flatten_keys(data: Any, prefix: str = "") -> set[str]:
    """Every key of a nested mapping, dotted ("train.C"), parents included."""
    keys: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            full = f"{prefix}{key}"
            keys.add(full)
            keys |= flatten_keys(value, full + ".")
    return keys
