"""`watch` as one of several replicas on the PostgreSQL spool (MLOPS_BOT_SPOOL_URL): its spool ('watch' in the
shared tables), its fenced recorder and the keeper of its leases; `drain` handles what is due, claim by claim,
in each model's order, as `serve`'s worker threads do (pg_workers.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .pg_workers import handle_claimed, lease_seconds, owner_name
from .spool_claims import LeaseKeeper, PgRecorder
from .spool_pg import PgSpool, spool_url
from .workers import EventRunner

ROUNDS = 1000  # claims per drain at most: replicas spooling without pause cannot keep one draining forever


@dataclass
class WatchReplica:
    spool: PgSpool
    recorder: PgRecorder
    keeper: LeaseKeeper

    @classmethod
    def open(cls, env: Mapping[str, str], name: str = "watch") -> WatchReplica | None:
        """The replica's parts when MLOPS_BOT_SPOOL_URL is set (the tables created if missing), else None."""
        url = spool_url(env)
        if url is None:
            return None
        ttl = lease_seconds(env)
        spool = PgSpool(url, name)
        spool.create_schema()
        owner = owner_name()
        return cls(spool, PgRecorder(spool, owner), LeaseKeeper(PgSpool(url, name), owner, ttl).start())

    def drain(self, runner: EventRunner) -> None:
        for _ in range(ROUNDS):
            if not handle_claimed(self.spool, runner, self.keeper):
                return

    def close(self) -> None:
        self.keeper.stop()
        self.keeper.spool.close()
        self.spool.close()
