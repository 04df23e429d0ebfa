"""Importing the drift package loads none of pyarrow, numpy or scipy: they come in when data is read or tested,
so `mlops-bot --version` and the commands that never check drift do not pay for them."""

from __future__ import annotations

import subprocess
import sys


def test_importing_drift_loads_no_heavy_library() -> None:
    code = ("import sys\nimport mlops_bot.drift.check, mlops_bot.drift.data, mlops_bot.drift.render\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'pyarrow', 'numpy', 'scipy', 'httpx'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
