"""What a command works on: its ml.yaml and the registry that ml.yaml names, each opened on first use and
closed once, when the command is done.

cli makes one Project per command and hands it to the command's `main(args, project)`; the `on:` rules that
run after the command (CI mode) use the same Project, so they follow the ml.yaml the command was given.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from ..config import DEFAULT_CONFIG, load_config
from ..errors import UsageError

if TYPE_CHECKING:  # cli makes a Project for every command: a no-op `run` must not pay for these imports
    from ..config.model import Config
    from ..registry.base import Registry

Opener = Callable[[], "Registry"]


class Project:
    def __init__(self, directory: Path, config_file: str = DEFAULT_CONFIG, env: Mapping[str, str] | None = None,
                 opener: Opener | None = None) -> None:
        self.directory = directory
        self.config_path = directory / config_file
        self.env: Mapping[str, str] = os.environ if env is None else env
        self._opener = opener
        self._config: Config | None = None
        self._registry: Registry | None = None

    @classmethod
    def of(cls, config: Config, env: Mapping[str, str] | None = None, opener: Opener | None = None) -> Project:
        """A Project around an ml.yaml loaded already (`serve`, `watch`, tests)."""
        project = cls(config.root, config.path.name, env, opener)
        project._config = config
        return project

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    @property
    def loaded(self) -> Config | None:
        """The ml.yaml if the command loaded it, without loading it now."""
        return self._config

    def config_if_present(self) -> Config | None:
        """For commands that can work without one (a follow-up `report` job may have only the decision)."""
        return self.config if self._config is not None or self.config_path.is_file() else None

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            if self._opener is not None:
                self._registry = self._opener()
            else:
                from ..registry import open_registry

                tracking = self.config.tracking
                try:
                    self._registry = open_registry(tracking.uri, self.config.root, self.env, tracking.registry_uri)
                except UsageError as exc:
                    raise UsageError(f"{self.config.path.name}: tracking.uri: {exc}") from None
        return self._registry

    def close(self) -> None:
        registry, self._registry = self._registry, None
        if registry is not None:
            registry.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
