"""What the artifact-store extras cost at import, beside the bot's own REST path, in one run.

Each row is a fresh interpreter that imports the bot's `run` path (cli, flows.run, the REST registry) and then,
for a store, MLflow's artifact repository for a URI of that scheme and the SDK it uses on first access. CPU
seconds (user + system of the child) are the steadier figure on a busy machine; the ratio is against the row
without a store. No store is contacted.
Run: .venv/bin/python benchmarks/artifact_imports.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys

BOT = "import mlops_bot.cli, mlops_bot.flows.run, mlops_bot.registry.mlflow.client"
STORE = ("from mlops_bot.registry.mlflow.stores import RepositoryStore; "
         "RepositoryStore({uri!r}).repository; import {sdk}")
ROWS = {
    "proxy (mlflow-artifacts:/), no extra": (BOT, ""),
    "file:// [file]": (BOT, STORE.format(uri="file:///tmp/mlops-bot-bench", sdk="os")),
    "s3:// [s3]": (BOT, STORE.format(uri="s3://bucket/x", sdk="boto3")),
    "wasbs:// [azure]": (BOT, STORE.format(uri="wasbs://c@devstoreaccount1.blob.core.windows.net/x",
                                           sdk="azure.storage.blob")),
    "gs:// [gcs]": (BOT, STORE.format(uri="gs://bucket/x", sdk="google.cloud.storage")),
}
ENV = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9",
       "AZURE_STORAGE_CONNECTION_STRING": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
       "AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"}


def cpu_seconds(code: str) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code], env=ENV, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    medians = {}
    for name, (bot, store) in ROWS.items():
        code = "; ".join(part for part in (bot, store) if part)
        cpu_seconds(code)  # warm the page cache
        medians[name] = statistics.median(cpu_seconds(code) for _ in range(runs))
    base = medians["proxy (mlflow-artifacts:/), no extra"]
    print(f"{'artifact location':40} {'CPU s':>7} {'x proxy':>8}")
    for name, seconds in medians.items():
        print(f"{name:40} {seconds:7.2f} {seconds / base:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
