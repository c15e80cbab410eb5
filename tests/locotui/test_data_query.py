"""The fleet filter's language: terms, fields, inversion, regexes, saved views, errors."""

from __future__ import annotations

import pytest

from locotui.data.query import FilterError, parse_query, validate_views

A = {
    "name": "loco-1",
    "node": "node-a",
    "status": "degraded",
    "reason": "frame rate low: 4.0 fps",
    "source": "backend",
    "rung": "reset",
    "accel": "kvm",
}
B = {
    "name": "loco-12",
    "node": "node-b",
    "status": "unhealthy",
    "reason": "vnc: connection refused",
    "source": "kubernetes",
    "rung": "",
    "accel": "tcg",
}
C = {**A, "name": "loco-3", "node": "node-b", "status": "healthy", "reason": "", "rung": ""}
FLEET = {"A": A, "B": B, "C": C}


def shown(text: str, views: dict[str, str] | None = None) -> list[str]:
    query = parse_query(text, views)
    return [key for key, fields in FLEET.items() if query.matches(fields)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ["A", "B", "C"]),
        ("loco-1", ["A", "B"]),  # a substring of any field
        ("NODE-B", ["B", "C"]),  # case-insensitive
        ("node:node-b", ["B", "C"]),
        ("status:healthy", ["C"]),  # a prefix: not "unhealthy"
        ("status:unh", ["B"]),
        ("status:degraded,unhealthy", ["A", "B"]),  # one of several
        ("!status:healthy", ["A", "B"]),
        ("!loco-12", ["A", "C"]),
        ("node:node-b !status:healthy", ["B"]),  # terms combine: all must match
        ("reason:vnc", ["B"]),
        ("reason:/refused|low/", ["A", "B"]),
        ("!reason:/^$/", ["A", "B"]),  # has a reason
        ('"reason:frame rate"', ["A"]),
        ('reason:"connection refused"', ["B"]),
        ("frame rate", ["A"]),  # two words, both must be found
        ("/loco-(1|3)$/", ["A", "C"]),  # the whole query as one regex
        ("accel:tcg", ["B"]),
        ("rung:reset", ["A"]),
        ("source:kube", ["B"]),
        ("name:loco-1 !name:loco-12", ["A"]),
    ],
)
def test_terms(text: str, expected: list[str]) -> None:
    assert shown(text) == expected


def test_saved_views_expand_in_place_and_combine() -> None:
    views = validate_views({"sick": "!status:healthy", "b": "node:node-b"})
    assert shown("@sick", views) == ["A", "B"]
    assert shown("@sick @b", views) == ["B"]
    assert shown("@b !loco-3", views) == ["B"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nod:node-a", "unknown field nod:; did you mean node:?"),
        ("status:", "status: needs a value"),
        ("reason:/(/", "bad regular expression '('"),
        ("/(/", "bad regular expression '('"),
        ("@nope", "unknown view @nope (views: @sick)"),
        ("!@sick", "a view cannot be inverted"),
    ],
)
def test_errors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(FilterError) as exc:
        parse_query(text, {"sick": "!status:healthy"})
    assert message in str(exc.value)


@pytest.mark.parametrize(
    ("views", "message"),
    [
        ({"a b": "x"}, "view name 'a b' must be"),
        ({"sick": 3}, 'sick must be a filter string, e.g. sick = "!status:healthy"'),
        ({"sick": "stat:bad"}, "sick: unknown field stat:; did you mean status:?"),
        ({"a": "@b", "b": "x"}, "a: view @a refers to @b; views cannot nest"),
    ],
)
def test_bad_views_are_refused_by_name(views: dict[str, object], message: str) -> None:
    with pytest.raises(FilterError) as exc:
        validate_views(views)
    assert message in str(exc.value)
