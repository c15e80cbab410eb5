"""Injected faults: latency, error responses, dropped watches, expiry, API down.

Rules match a regular expression (``re.search``) against the request's path plus query
string, so ``r"/pods\\?.*watch=true"`` targets pod watches only. A rule with ``count``
fires that many times and then retires, which keeps tests deterministic.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from tests.kubesim.objects import Obj, status

_ids = itertools.count(1)

_REASONS = {
    429: ("TooManyRequests", "Too many requests, please try again later."),
    500: ("InternalError", "Internal error occurred: injected fault"),
    502: ("InternalError", "Bad Gateway: injected fault"),
    503: ("ServiceUnavailable", "The server is currently unable to handle the request (injected)"),
    504: ("Timeout", "Timeout: request did not complete within the allowed duration (injected)"),
}


@dataclass
class Rule:
    path: re.Pattern[str]
    methods: frozenset[str] | None
    count: int | None  # remaining firings; None = forever
    id: int = field(default_factory=lambda: next(_ids))

    def matches(self, method: str, target: str) -> bool:
        if self.count is not None and self.count <= 0:
            return False
        if self.methods is not None and method not in self.methods:
            return False
        return self.path.search(target) is not None

    def fire(self) -> None:
        if self.count is not None:
            self.count -= 1


@dataclass
class LatencyRule(Rule):
    seconds: float = 0.0


@dataclass
class ErrorRule(Rule):
    status: int = 500
    message: str | None = None

    def body(self) -> Obj:
        reason, default = _REASONS.get(self.status, ("InternalError", "injected fault"))
        return status(self.status, reason, self.message or default)


class Faults:
    def __init__(self) -> None:
        self.latency: list[LatencyRule] = []
        self.errors: list[ErrorRule] = []

    def add_latency(
        self,
        seconds: float,
        path: str = ".*",
        methods: list[str] | None = None,
        count: int | None = None,
    ) -> int:
        rule = LatencyRule(re.compile(path), _methods(methods), count, seconds=seconds)
        self.latency.append(rule)
        return rule.id

    def add_error(
        self,
        status: int = 500,
        path: str = ".*",
        methods: list[str] | None = None,
        count: int | None = None,
        message: str | None = None,
    ) -> int:
        rule = ErrorRule(re.compile(path), _methods(methods), count, status=status, message=message)
        self.errors.append(rule)
        return rule.id

    def remove(self, rule_id: int) -> None:
        self.latency = [r for r in self.latency if r.id != rule_id]
        self.errors = [r for r in self.errors if r.id != rule_id]

    def clear(self) -> None:
        self.latency.clear()
        self.errors.clear()

    def delay_for(self, method: str, target: str) -> float:
        total = 0.0
        for rule in self.latency:
            if rule.matches(method, target):
                rule.fire()
                total += rule.seconds
        return total

    def error_for(self, method: str, target: str) -> ErrorRule | None:
        for rule in self.errors:
            if rule.matches(method, target):
                rule.fire()
                return rule
        return None

    def describe(self) -> Obj:
        return {
            "latency": [
                {"id": r.id, "path": r.path.pattern, "seconds": r.seconds, "count": r.count}
                for r in self.latency
            ],
            "errors": [
                {"id": r.id, "path": r.path.pattern, "status": r.status, "count": r.count}
                for r in self.errors
            ],
        }


def _methods(methods: list[str] | None) -> frozenset[str] | None:
    return frozenset(m.upper() for m in methods) if methods else None
