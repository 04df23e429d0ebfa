"""Untrusted text -> markdown that GitHub and GitLab show as that text, and nothing else. Pure.

Whatever a report shows that is not the bot's own words goes through one of these: model, metric and param
names, param values, lineage, run ids, versions, sources, reasons and summaries (they quote metric names), and
the whole decision file of a follow-up job, which a fork's pull request may have written.

- `text`: prose in a heading, list item or table cell (`paragraph` where it starts a paragraph);
- `code`: inline code (in a table cell with `table=True`);
- `html`: the content of the report's own HTML elements (`<summary>`), where markdown is not parsed.

Each one first redacts every URL in the value (support/urls: a param holding a signed data URL, the git remote
mlflow records as the repository with a CI job token in it) and folds line breaks into spaces (a value must
not start a block of its own). Then:

- code spans are fenced by a backtick run longer than any in the value, padded with a space where the value
  starts or ends with a backtick or a space; inside a table `|` is escaped (GFM unescapes it in cells, code
  spans included);
- prose: `&` is always an entity, `<` one unless a space follows (alone or after `=`: "<= 0.9" can start
  neither a tag, a comment nor an autolink), `>` one where it would start a quote; the punctuation that starts
  inline markup is backslash-escaped (`\\`, backtick, `*`, `[`, `]`, `|`, `#`, `~` (strikethrough, GitLab
  labels), `$` (GitHub's and GitLab's math), `_` unless inside a word), so are the `:` of `scheme://` and the
  `.` of `www.` (GFM's bare autolinks); at the start of a paragraph also a `>`, `-`, `+`, `=` or `1.`;
- everywhere outside code: a word joiner (U+2060, invisible) after the sigil of a mention or reference that
  a forge expands after rendering and that no backslash stops on GitHub: `@user`, `#12`, `GH-12`, and
  GitLab's `!12`, `~label`, `%milestone`, `&12`, `$12`, `{+ +}`; an e-mail autolink cannot form either.

Left as they are: `:emoji:` (the forge's own pictures) and the colour swatch both forges add to a code span
holding `#F00`-style colours. tests/report/test_injection.py renders the report with cmark-gfm to hold this.
"""

from __future__ import annotations

import re

from ..support.urls import redact_text

CELL_LIMIT = 200
WORD_JOINER = "\u2060"

_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")
_REFERENCE = re.compile(r"(?:[@#!~%&$]|GH-)(?=[\w\"])|\{(?=[+-])")
_ALWAYS = re.compile(r"[\\`*\[\]|~$#]")
_LEADING = re.compile(r"^(?:[+=-]|\d+(?=[.)]))")


def _flat(value: str) -> str:
    """Redacted, on one line: a line break or any other control character becomes a space."""
    return _CONTROLS.sub(" ", redact_text(value).replace("\r\n", "\n"))


def _plain(value: str) -> str:
    return _flat(value).strip()


def _unlinked(value: str) -> str:
    return _REFERENCE.sub(lambda match: match.group() + WORD_JOINER, value)


def text(value: str) -> str:
    """`value` as prose: shown as it is, nothing in it can become markup."""
    value = _unlinked(_plain(value))
    return "".join(_escaped(value, i) for i in range(len(value)))


def _escaped(value: str, i: int) -> str:
    """Character `i` of `value`, escaped where it could start markup (see the module's docstring)."""
    ch, before, after = value[i], value[i - 1:i], value[i + 1:i + 3]
    if ch == "&":
        return "&amp;"
    if ch == "<":
        inert = after[:1] in ("", " ") or (after[:1] == "=" and after[1:2] in ("", " "))
        return "<" if inert else "&lt;"
    markup = _ALWAYS.match(ch) or (ch == "_" and not (before.isalnum() and after[:1].isalnum()))
    autolink = (ch == ":" and after == "//") or (ch == "." and value[max(0, i - 3):i].lower() == "www"
                                                 and not value[i - 4:i - 3].isalnum())
    return "\\" + ch if markup or autolink else ch


def paragraph(value: str) -> str:
    """`value` as prose that starts a paragraph: `text`, and no heading, quote, list item or setext underline."""
    escaped = text(value)
    if escaped.startswith(">"):
        return "&gt;" + escaped[1:]
    leading = _LEADING.match(escaped)
    if leading is None:
        return escaped
    cut = leading.end()
    return escaped[:cut] + "\\" + escaped[cut:] if escaped[:1].isdigit() else "\\" + escaped


def cell(value: str) -> str:
    """`value` as prose in a table cell (its `|` cannot split the row: `text` escapes it)."""
    return text(value)


def html(value: str) -> str:
    """`value` as the text of an HTML element of the report's own (`<summary>`): entities only, no markdown."""
    value = _unlinked(_plain(value))
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def mermaid(value: str) -> str:
    """`value` as a title or label inside a Mermaid chart's quotes: Mermaid may render labels as HTML, so only
    characters that can form neither markup nor the end of the string are kept (and 60 of them)."""
    return "".join(ch for ch in redact_text(value) if ch.isalnum() or ch in " _-.:/%()+")[:60]


def code(value: str | None, *, table: bool = False) -> str:
    """`value` as inline code, cut to CELL_LIMIT characters; None is a dash."""
    if value is None:
        return "—"
    value = _flat(value)
    if len(value) > CELL_LIMIT:
        value = value[: CELL_LIMIT - 1] + "…"
    if not value.strip():
        return f"`{value or ' '}`"  # spaces only: shown as they are
    longest = max((len(run) for run in re.findall("`+", value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if value[0] in "` " or value[-1] in "` " else ""
    if table:
        value = value.replace("|", "\\|")
    return f"{fence}{pad}{value}{pad}{fence}"
