"""A GitOps repository for the deploy tests: a bare git remote on disk seeded with a KServe manifest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.helpers.git import git

MANIFEST = """\
# KServe InferenceService for the iris model; mlops-bot edits storageUri.
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: iris      # the service name
  annotations:
    serving.kserve.io/deploymentMode: "Serverless"
spec:
  predictor:
      # odd indentation on purpose: four spaces here
      minReplicas:   1
      model:
          modelFormat: {name: sklearn}
          storageUri: 'models:/iris-classifier/1'    # replaced on deploy
          args:
          -   "--workers=2"
"""


@dataclass
class Remote:
    """The bare repository and a clone of it (`seed`) that plays a colleague pushing."""

    bare: Path
    seed: Path

    @classmethod
    def create(cls, directory: Path) -> Remote:
        """remote.git with deploy/inference.yaml (MANIFEST) and a README on main, and its clone `seed`."""
        bare, seed = directory / "remote.git", directory / "seed"
        git(directory, "init", "-q", "--bare", "-b", "main", str(bare))
        git(directory, "clone", "-q", str(bare), str(seed))
        git(seed, "checkout", "-q", "-b", "main")
        (seed / "deploy").mkdir()
        (seed / "deploy/inference.yaml").write_text(MANIFEST)
        (seed / "README.md").write_text("gitops repo\n")
        git(seed, "add", ".")
        git(seed, "commit", "-q", "-m", "seed")
        git(seed, "push", "-q", "origin", "main")
        return cls(bare, seed)

    def show(self, ref: str, path: str = "deploy/inference.yaml") -> str:
        return git(self.bare, "show", f"{ref}:{path}") + "\n"

    def message(self, ref: str = "main") -> str:
        return git(self.bare, "log", "-1", "--format=%B", ref)

    def head(self, ref: str = "main") -> str:
        return git(self.bare, "rev-parse", ref)

    def count(self, ref: str = "main") -> int:
        return int(git(self.bare, "rev-list", "--count", ref))

    def branches(self) -> list[str]:
        return git(self.bare, "for-each-ref", "--format=%(refname:short)", "refs/heads").split()

    def commit_in_seed(self, path: str, text: str, message: str, branch: str = "main") -> None:
        git(self.seed, "fetch", "-q", "origin")
        start = f"origin/{branch}" if branch in self.branches() else "origin/main"
        git(self.seed, "checkout", "-q", "-B", branch, start)
        (self.seed / path).parent.mkdir(parents=True, exist_ok=True)
        (self.seed / path).write_text(text)
        git(self.seed, "add", path)
        git(self.seed, "commit", "-q", "-m", message)
        git(self.seed, "push", "-q", "origin", f"HEAD:refs/heads/{branch}")
