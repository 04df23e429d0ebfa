"""The connection guard's bookkeeping without a server: which address a client counts as, and how the connection
limit is fitted to the open-file limit (running out of descriptors would stall accepting altogether)."""

from __future__ import annotations

import resource

import pytest

from mlops_bot.service.guard import SPARE_FILES, Limits, client_key, fit_open_files


def test_a_client_is_its_ip_and_an_ipv6_host_its_64() -> None:
    assert client_key("203.0.113.9") == "203.0.113.9"
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:ffff::2") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:203.0.113.9") == "203.0.113.9"
    assert client_key(None) == "local" and client_key("not-an-ip") == "not-an-ip"


def test_max_connections_is_lowered_when_the_file_limit_cannot_be_raised(monkeypatch: pytest.MonkeyPatch,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _: (512, 512))
    monkeypatch.setattr(resource, "setrlimit", lambda *_: (_ for _ in ()).throw(ValueError("not permitted")))
    assert fit_open_files(Limits(max_connections=1024)).max_connections == 512 - SPARE_FILES
    assert "--max-connections lowered to 448" in capsys.readouterr().err


def test_the_soft_file_limit_is_raised_toward_the_hard_one(monkeypatch: pytest.MonkeyPatch) -> None:
    raised: list[tuple[int, int]] = []
    monkeypatch.setattr(resource, "getrlimit", lambda _: (256, 4096))
    monkeypatch.setattr(resource, "setrlimit", lambda _, limits: raised.append(limits))
    assert fit_open_files(Limits(max_connections=1024)).max_connections == 1024
    assert raised == [(1024 + SPARE_FILES, 4096)]
