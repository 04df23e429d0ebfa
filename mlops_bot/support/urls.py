"""URLs fit for logs and messages: without user:password@, query string or fragment (tokens live in all three)."""

from __future__ import annotations

import re

# a URL inside free text (a tool's error output): scheme://, then up to whitespace or a quote
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")


def redact(url: str) -> str:
    """'https://user:token@host/p?sig=x#t' -> 'https://host/p'; text without '://' is returned as it is.
    Never raises, whatever the input."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url  # a local path: nothing secret in it, and '#' or '?' may be part of a name
    # userinfo first: a password may hold an unescaped '?' or '#'
    authority, slash, path = rest.partition("/")
    return f"{scheme}://{authority.rpartition('@')[2]}{slash}{path}".split("#", 1)[0].split("?", 1)[0]


def redact_text(text: str) -> str:
    """`text` with every URL in it redacted (git and HTTP libraries quote the URL in their errors)."""
    return _URL_IN_TEXT.sub(lambda match: redact(match.group()), text)
