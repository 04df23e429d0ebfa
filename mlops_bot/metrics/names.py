"""Which logged metric a name that nobody logged probably means, for a did-you-mean. Pure.

A metrics file that nests (`{"test": {"accuracy": 0.9}}`) logs `test.accuracy`: a criterion on `accuracy` then
means that name, however long the prefix, and a criterion on `test.accuracy` means a flat file's `accuracy`.
Otherwise the closest name by difflib (ratio 0.6 or more), as the config's hints do.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, names: Iterable[str]) -> str | None:
    """The name in `names` that `name` most likely means; None when none is close."""
    candidates = sorted(set(names) - {name})
    nested = [n for n in candidates if n.endswith(f".{name}") or name.endswith(f".{n}")]
    if nested:
        return min(nested, key=len)
    close = difflib.get_close_matches(name, candidates, n=1)
    return close[0] if close else None


def did_you_mean(name: str, names: Iterable[str]) -> str:
    """ "did you mean 'test.accuracy'?", or "" when no name is close."""
    found = closest(name, names)
    return f"did you mean {found!r}?" if found is not None else ""


def hint(name: str, names: Iterable[str]) -> str:
    """ " (did you mean 'test.accuracy'?)" to follow a message, or "" when no name is close."""
    text = did_you_mean(name, names)
    return f" ({text})" if text else ""
