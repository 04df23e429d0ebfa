"""Durations in ml.yaml: a number of seconds, or a string of amounts with units (90s, 10m, 1h30m, 250ms, 1d);
the schema checks the spelling, this turns it into seconds."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")


def seconds(value: float | int | str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    parts = _PART.findall(text)
    if not parts or "".join(a + u for a, u in parts) != text:
        raise ValueError(f"{value!r} is not a duration (e.g. 90s, 10m, 1h30m)")
    return sum(float(amount) * _UNITS[unit] for amount, unit in parts)


def spoken(total: float) -> str:
    """Seconds as people say them: 600 -> 10m, 5400 -> 1h30m, 2.5 -> 2.5s."""
    if total < 60:
        return f"{total:g}s"
    whole, out = round(total), ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size:
            out += f"{whole // size}{unit}"
            whole %= size
    return out
