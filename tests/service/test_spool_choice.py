"""Which spool `serve` and `watch` use, decided by the environment alone, and what choosing costs: SQLite unless
MLOPS_BOT_SPOOL_URL names a PostgreSQL database; psycopg is imported only then (never by `--version`, nor by
loading `serve`'s and `watch`'s modules); bad values are refused naming the variable, never its password."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlops_bot.errors import UsageError
from mlops_bot.service.pg_workers import LEASE_S, lease_seconds, owner_name
from mlops_bot.service.spool_pg import spool_url

SECRET = "s3cr3t-pw"


def test_no_spool_url_is_the_sqlite_spool_and_a_postgresql_one_is_taken_as_it_is() -> None:
    assert spool_url({}) is None and spool_url({"MLOPS_BOT_SPOOL_URL": "  "}) is None
    url = f"postgresql://bot:{SECRET}@db.internal:5432/mlops"
    assert spool_url({"MLOPS_BOT_SPOOL_URL": url}) == url
    assert spool_url({"MLOPS_BOT_SPOOL_URL": "postgres://db/x"}) == "postgres://db/x"


def test_a_spool_url_that_is_not_postgresql_is_refused_without_its_password() -> None:
    with pytest.raises(UsageError, match="MLOPS_BOT_SPOOL_URL must be a postgresql://") as caught:
        spool_url({"MLOPS_BOT_SPOOL_URL": f"mysql://bot:{SECRET}@db/x"})
    assert SECRET not in str(caught.value) and "mysql://db/x" in str(caught.value)


@pytest.mark.parametrize("value", ["0", "-3", "soon", "7200"])
def test_a_lease_out_of_bounds_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(UsageError, match="MLOPS_BOT_SPOOL_LEASE_S must be a number of seconds from 1 to 3600"):
        lease_seconds({"MLOPS_BOT_SPOOL_LEASE_S": value})


def test_the_lease_defaults_to_30_seconds_and_owners_are_unique() -> None:
    assert lease_seconds({}) == LEASE_S == 30.0 and lease_seconds({"MLOPS_BOT_SPOOL_LEASE_S": "2.5"}) == 2.5
    assert owner_name() != owner_name()  # a restarted replica never inherits its predecessor's leases


def test_psycopg_is_imported_only_for_a_postgresql_spool() -> None:
    code = ("import sys\nfrom mlops_bot.cli import main\n"
            "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "after_version = 'psycopg' in sys.modules\n"
            "import mlops_bot.service.app, mlops_bot.flows.serve, mlops_bot.flows.watch\n"
            "print(after_version, 'psycopg' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[-2:] == ["False", "False"], out
