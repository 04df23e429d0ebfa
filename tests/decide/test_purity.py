"""The decision core is pure: importing it loads no network, forge or numeric library."""

from __future__ import annotations

import subprocess
import sys

PURE = ["mlops_bot.decide", "mlops_bot.judge", "mlops_bot.exact", "mlops_bot.decision", "mlops_bot.report",
        "mlops_bot.reportparts", "mlops_bot.significance", "mlops_bot.metricsfile"]
FORBIDDEN = ["httpx", "github", "gitlab", "requests", "urllib3", "mlflow", "numpy", "scipy", "yaml"]


def test_pure_modules_import_nothing_heavy() -> None:
    code = (f"import sys\nimport {', '.join(PURE)}\n"
            f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""
