"""The fleet filter's language: pure parsing and matching, no widgets, no fleet.

A query is terms separated by spaces; an instance is shown when every term matches::

    loco-1                  a substring of any field (name, node, status, reason, ...)
    node:node-a             a substring of one field
    status:degraded,unh     one of several values (a prefix of the status)
    !status:healthy         inverse: the term must not match
    !timeout                inverse over every field
    reason:/vnc|qmp/        a case-insensitive regular expression
    "reason:frame rate"     quotes keep spaces in a value
    @sick                   a saved view (the config's [views] table), expanded in place

Matching is case-insensitive. A whole query written as ``/regex/`` is one regular
expression over every field (as before terms existed), so ``/a b/`` keeps its space.
``status:`` matches a prefix of the status word (``status:healthy`` does not match
``unhealthy``); every other field matches a substring.

Bad input raises :class:`FilterError` with a one-line reason (an unknown field with the
nearest name, a bad regular expression, an unknown view).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["FIELDS", "FilterError", "Query", "Term", "parse_query", "validate_views"]

FIELDS: Mapping[str, str] = {
    "name": "the instance's name",
    "node": "the Kubernetes node it runs on",
    "status": "healthy, degraded, unhealthy, starting, unknown (a prefix)",
    "reason": "the status reason or last error",
    "source": "where it is known from: backend, kubernetes",
    "rung": "the automatic recovery's rung: reset, restart, needs person",
    "accel": "the emulator's accelerator (kvm, tcg)",
}
"""Fields a term may name, with what each holds (for help and errors)."""

_PREFIX_FIELDS = frozenset({"status"})
_VIEW_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# One term: an optional "!", then a quoted string, a /regex/ or a run of non-spaces.
_TOKEN = re.compile(r'!?"[^"]*"|!?[A-Za-z]+:"[^"]*"|\S+')


class FilterError(ValueError):
    """A filter that cannot be used; ``str()`` says why, in one line; ``view`` names the
    saved view at fault, when it is one."""

    def __init__(self, message: str, view: str | None = None) -> None:
        super().__init__(message)
        self.view = view


@dataclass(frozen=True)
class Term:
    """One condition: ``field`` (None: any field) matches one of ``values`` or ``regex``;
    ``negate`` inverts it."""

    field: str | None
    values: tuple[str, ...] = ()
    regex: re.Pattern[str] | None = None
    negate: bool = False

    def _hit(self, name: str, text: str) -> bool:
        text = text.lower()
        if self.regex is not None:
            return self.regex.search(text) is not None
        if name in _PREFIX_FIELDS:
            return any(text.startswith(v) for v in self.values)
        return any(v in text for v in self.values)

    def matches(self, fields: Mapping[str, str]) -> bool:
        if self.field is None:
            hit = any(self._hit(name, text) for name, text in fields.items() if text)
        else:
            hit = self._hit(self.field, fields.get(self.field, ""))
        return hit != self.negate


@dataclass(frozen=True)
class Query:
    """Terms that must all match; an empty query matches everything."""

    text: str = ""
    terms: tuple[Term, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.terms)

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(term.matches(fields) for term in self.terms)


def _regex(source: str) -> re.Pattern[str]:
    try:
        return re.compile(source, re.IGNORECASE)
    except re.error as exc:
        raise FilterError(f"bad regular expression {source!r}: {exc}") from None


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def _term(
    token: str, views: Mapping[str, str], expanding: str | None, fields: Mapping[str, str]
) -> list[Term]:
    negate = token.startswith("!")
    body = token[1:] if negate else token
    if body.startswith("@"):
        name = body[1:]
        if expanding is not None:
            raise FilterError(f"view @{expanding} refers to @{name}; views cannot nest")
        if negate:
            raise FilterError(f"!@{name}: a view cannot be inverted; invert its terms")
        if name not in views:
            known = ", ".join(f"@{v}" for v in views) or "none in the config's [views]"
            raise FilterError(f"unknown view @{name} (views: {known})")
        return list(_parse(views[name], views, expanding=name, fields=fields).terms)
    body = _unquote(body)
    field: str | None = None
    m = re.match(r"^([A-Za-z]+):(.*)$", body, re.DOTALL)
    if m:
        field = m.group(1).lower()
        body = m.group(2)
        if field not in fields:
            close = difflib.get_close_matches(field, list(fields), n=1)
            hint = f"; did you mean {close[0]}:?" if close else ""
            raise FilterError(f"unknown field {field}:{hint} (fields: {', '.join(fields)})")
    body = _unquote(body)
    if not body:
        what = f"{field}:" if field else "!"
        raise FilterError(f"{what} needs a value, e.g. {field or 'text'}:{_EXAMPLE.get(field)}")
    if len(body) >= 2 and body.startswith("/") and body.endswith("/"):
        return [Term(field, regex=_regex(body[1:-1]), negate=negate)]
    values = tuple(v.strip().lower() for v in body.split(",") if v.strip()) if field else ()
    return [Term(field, values or (body.lower(),), negate=negate)]


_EXAMPLE: dict[str | None, str] = {
    None: "timeout",
    "name": "loco-1",
    "node": "node-a",
    "status": "degraded",
    "reason": "vnc",
    "source": "kubernetes",
    "rung": "needs",
    "accel": "kvm",
}


def _parse(
    text: str, views: Mapping[str, str], expanding: str | None, fields: Mapping[str, str] = FIELDS
) -> Query:
    text = text.strip()
    if len(text) >= 2 and text.startswith("/") and text.endswith("/"):
        return Query(text, (Term(None, regex=_regex(text[1:-1])),))
    terms: list[Term] = []
    for token in _TOKEN.findall(text):
        terms.extend(_term(token, views, expanding, fields))
    return Query(text, tuple(terms))


def parse_query(
    text: str, views: Mapping[str, str] | None = None, fields: Mapping[str, str] = FIELDS
) -> Query:
    """Parses ``text`` (see the module docstring); raises :class:`FilterError`.

    ``fields`` are the names a term may use (the fleet's by default; the events view
    has its own)."""
    return _parse(text, views or {}, expanding=None, fields=fields)


def validate_views(views: Mapping[str, object]) -> dict[str, str]:
    """Checks a ``[views]`` table (name → query); returns it as ``dict[str, str]``.

    Raises :class:`FilterError` naming the view: a bad name, a value that is not a
    string, or a query that does not parse.
    """
    out: dict[str, str] = {}
    for name, value in views.items():
        if not _VIEW_NAME.match(name):
            raise FilterError(
                f"view name {name!r} must be letters, digits, '-', '_' or '.' (it is typed "
                "as @name)",
                view=name,
            )
        if not isinstance(value, str) or not value.strip():
            raise FilterError(
                f'{name} must be a filter string, e.g. {name} = "!status:healthy"', view=name
            )
        out[name] = value.strip()
    for name, value in out.items():
        try:
            _parse(value, out, expanding=name)
        except FilterError as exc:
            raise FilterError(f"{name}: {exc}", view=name) from None
    return out
