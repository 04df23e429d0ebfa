"""ml.yaml: read (`source`), checked (`schema`, `semantics`) and built (`build`) into the frozen dataclasses
of `model`. `load_config` is the one entry point; nothing here touches a network."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import Config

DEFAULT_CONFIG = "ml.yaml"


def load_config(path: Path | str, env: Mapping[str, str] | None = None) -> Config:
    """Reads, validates and converts ml.yaml; raises ConfigError listing every problem found."""
    from .build import build_config
    from .schema import check_document
    from .source import read_document

    doc = read_document(Path(path), env)
    check_document(doc)
    return build_config(doc)
