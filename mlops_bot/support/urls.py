"""URLs fit to be printed, linked or written: never with user:password@, a query string or the URL's own fragment
(tokens live in all three: basic-auth passwords, `?private_token=`, `?sig=` of a signed URL, `#access_token=`).

One place decides, for everything that leaves the process: messages and logs (`redact`, `redact_text`), files the
bot writes (last-run.json) and the report's links (`public_url`, `link_base`). The whole query is dropped, not a
list of token names: no list is complete (`sig`, `X-Amz-Signature`, `private_token`, `code`, `?t=`...), and
neither a message nor a run link needs the tracking URI's query.
"""

from __future__ import annotations

import re
from urllib.parse import quote

# a URL inside free text (a tool's error output): scheme://, then up to whitespace or a quote
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")
# what may stand before the first '/' when it is a host[:port] and not the start of a password holding a '/'
_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]*\]|[^:@\[\]]*)(:\d{0,5})?")
# characters that would end or break a markdown link destination (or an HTML attribute) if left as they are
_UNSAFE_IN_LINK = re.compile(r"[\x00-\x20\x7f<>()\"'\\^`{|}]")
LINK_SCHEMES = ("http", "https")


def _parts(url: str) -> tuple[str, str, str] | None:
    """(scheme, host and path, fragment) with credentials and query gone; None for text without '://'."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return None
    head, slash, tail = rest.partition("/")
    if "@" in head:  # userinfo; a password may hold an unescaped '?' or '#', so '@' is looked for first
        rest = head.rpartition("@")[2] + slash + tail
    elif "@" in tail and not _HOST_PORT.fullmatch(re.split("[?#]", head, maxsplit=1)[0]):
        rest = tail.rpartition("@")[2]  # 'user:pass/word@host': what precedes the '/' is no host[:port]
    address, _, fragment = rest.partition("#")
    return scheme, address.split("?", 1)[0], fragment


def redact(url: str) -> str:
    """'https://user:token@host/p?sig=x#t' -> 'https://host/p'; text without '://' is returned as it is.
    Never raises, whatever the input."""
    parts = _parts(url)
    return url if parts is None else f"{parts[0]}://{parts[1]}"  # a local path: '#' or '?' may be part of a name


def redact_text(text: str) -> str:
    """`text` with every URL in it redacted (git and HTTP libraries quote the URL in their errors)."""
    return _URL_IN_TEXT.sub(lambda match: redact(match.group()), text)


def public_url(url: str) -> str | None:
    """`url` fit to be a link target: http(s) only (no `javascript:`, `data:` or `file:`), without credentials or
    query, its fragment kept (the MLflow UI's routes live there), and every character that could end a markdown
    link destination percent-encoded. None when it cannot be a link."""
    parts = _parts(url.strip())
    if parts is None or parts[0].lower() not in LINK_SCHEMES or not parts[1].split("/", 1)[0]:
        return None
    scheme, address, fragment = parts
    href = f"{scheme.lower()}://{address}" + (f"#{fragment}" if fragment else "")
    return _UNSAFE_IN_LINK.sub(lambda match: quote(match.group(), safe=""), href)


def link_base(url: str) -> str | None:
    """The address links are built on (a tracking server's UI, a forge's web root): `public_url` without the
    URL's own fragment and without a trailing '/'."""
    base = public_url(redact(url))
    return base.rstrip("/") if base else None
