"""The tracking run as a step on a cluster sees it (pipeline/backends.base.RunArtifacts): a file in (its working
directory), its outs back. Remembers the outs it returned: they are in the run already and need no second upload."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .tracking import Tracker


class StepArtifacts:
    def __init__(self, tracker: Tracker, run_id: str) -> None:
        self.tracker, self.run_id = tracker, run_id
        self.returned: set[str] = set()

    def upload_file(self, path: Path, artifact_dir: str) -> None:
        self.tracker.state_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.tracker.state_dir, prefix="upload-") as tmp:
            try:
                os.link(path, Path(tmp) / path.name)
            except OSError:
                shutil.copy2(path, Path(tmp) / path.name)
            self.tracker.registry.upload_artifacts(self.run_id, Path(tmp), artifact_dir)

    def not_returned(self, outs: list[str]) -> list[str]:
        """The outs the pipeline still uploads: a step on a cluster uploaded its own already."""
        return [out for out in outs if out not in self.returned]

    def fetch_outs(self, outs: list[str]) -> list[str]:
        missing = self.tracker.fetch_outs(self.run_id, outs)
        if not missing:
            self.returned.update(outs)
        return missing
