"""The decision core is pure: importing it loads no network, forge or numeric library."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import mlops_bot.decide
import mlops_bot.metrics
import mlops_bot.report

PURE = [m.name for package in (mlops_bot.decide, mlops_bot.metrics, mlops_bot.report)
        for m in pkgutil.iter_modules(package.__path__, package.__name__ + ".")]
FORBIDDEN = ["httpx", "github", "gitlab", "requests", "urllib3", "mlflow", "numpy", "scipy", "yaml"]


def test_pure_modules_import_nothing_heavy() -> None:
    assert "mlops_bot.decide.verdict" in PURE and "mlops_bot.report.markdown" in PURE
    code = (f"import sys\nimport {', '.join(PURE)}\n"
            f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""
