"""Label and field selectors with the grammar and operators of k8s.io/apimachinery."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tests.kubesim.objects import Obj, get_path


class SelectorError(ValueError):
    """Raised for a selector the real API server would reject with 400 BadRequest."""


# --- label selectors -------------------------------------------------------------------

_SPECIAL = set("!=(),<>")


def _lex(text: str) -> list[str]:
    tokens: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in _SPECIAL:
            two = text[i : i + 2]
            if two in ("==", "!="):
                tokens.append(two)
                i += 2
            else:
                tokens.append(ch)
                i += 1
            continue
        j = i
        while j < len(text) and not text[j].isspace() and text[j] not in _SPECIAL:
            j += 1
        tokens.append(text[i:j])
        i = j
    return tokens


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # =, !=, in, notin, exists, !, gt, lt
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            # Real semantics: a missing key satisfies != and notin.
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("gt", "lt"):
            if not present:
                return False
            try:
                have, want = int(value or ""), int(self.values[0])
            except ValueError:
                return False
            return have > want if self.op == "gt" else have < want
        return False


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        return all(r.matches(labels or {}) for r in self.requirements)

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        if not text or not text.strip():
            return cls()
        tokens = _lex(text)
        reqs: list[Requirement] = []
        pos = 0

        def expect_value() -> str:
            nonlocal pos
            if pos >= len(tokens) or tokens[pos] in _SPECIAL or tokens[pos] in ("==", "!="):
                # An empty value ("a=") is legal in Kubernetes.
                return ""
            value = tokens[pos]
            pos += 1
            return value

        while pos < len(tokens):
            tok = tokens[pos]
            if tok == "!":
                pos += 1
                if pos >= len(tokens) or tokens[pos] in _SPECIAL:
                    raise SelectorError(
                        f"unable to parse requirement: missing key after '!' in {text!r}"
                    )
                reqs.append(Requirement(tokens[pos], "!"))
                pos += 1
            elif tok in _SPECIAL or tok in ("==", "!="):
                raise SelectorError(
                    f"unable to parse requirement: found '{tok}', expected: identifier"
                )
            else:
                key = tok
                pos += 1
                nxt = tokens[pos] if pos < len(tokens) else ","
                if nxt == ",":
                    reqs.append(Requirement(key, "exists"))
                elif nxt in ("=", "=="):
                    pos += 1
                    reqs.append(Requirement(key, "=", (expect_value(),)))
                elif nxt == "!=":
                    pos += 1
                    reqs.append(Requirement(key, "!=", (expect_value(),)))
                elif nxt in (">", "<"):
                    pos += 1
                    value = expect_value()
                    if not value.lstrip("-").isdigit():
                        raise SelectorError(
                            f"unable to parse requirement: for 'Gt', 'Lt' operators, "
                            f"the value must be an integer: {value!r}"
                        )
                    reqs.append(Requirement(key, "gt" if nxt == ">" else "lt", (value,)))
                elif nxt in ("in", "notin"):
                    pos += 1
                    if pos >= len(tokens) or tokens[pos] != "(":
                        raise SelectorError(
                            f"unable to parse requirement: found '{tokens[pos] if pos < len(tokens) else ''}', "  # noqa: E501
                            "expected: '('"
                        )
                    pos += 1
                    values: list[str] = []
                    while True:
                        if pos >= len(tokens):
                            raise SelectorError(
                                "unable to parse requirement: found '', expected: ')'"
                            )
                        if tokens[pos] == ")":
                            pos += 1
                            break
                        if tokens[pos] == ",":
                            values.append("")
                            pos += 1
                            continue
                        values.append(tokens[pos])
                        pos += 1
                        if pos < len(tokens) and tokens[pos] == ",":
                            pos += 1
                    reqs.append(Requirement(key, nxt, tuple(values)))
                else:
                    raise SelectorError(
                        f"unable to parse requirement: found '{nxt}', expected: "
                        "'=', '!=', '==', 'in', notin'"
                    )
            if pos < len(tokens):
                if tokens[pos] != ",":
                    raise SelectorError(
                        f"unable to parse requirement: found '{tokens[pos]}', expected: ','"
                    )
                pos += 1
                if pos >= len(tokens):
                    raise SelectorError(
                        "unable to parse requirement: found '', expected: identifier"
                    )
        return cls(tuple(reqs))


def match_labels_selector(selector: Obj | None) -> LabelSelector:
    """metav1.LabelSelector (matchLabels/matchExpressions) as a LabelSelector."""
    reqs: list[Requirement] = []
    for key, value in ((selector or {}).get("matchLabels") or {}).items():
        reqs.append(Requirement(key, "=", (value,)))
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in (selector or {}).get("matchExpressions") or []:
        reqs.append(
            Requirement(expr["key"], ops[expr["operator"]], tuple(expr.get("values") or ()))
        )
    return LabelSelector(tuple(reqs))


# --- field selectors -------------------------------------------------------------------

FieldGetter = Callable[[Obj], str]

_COMMON_FIELDS: dict[str, FieldGetter] = {
    "metadata.name": lambda o: o.get("metadata", {}).get("name", ""),
    "metadata.namespace": lambda o: o.get("metadata", {}).get("namespace", ""),
}


def _path(dotted: str) -> FieldGetter:
    def get(o: Obj) -> str:
        value = get_path(o, dotted)
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return get


# The fields each resource's storage strategy registers (pkg/registry/*/strategy.go).
SUPPORTED_FIELDS: dict[str, dict[str, FieldGetter]] = {
    "pods": {
        **_COMMON_FIELDS,
        "spec.nodeName": _path("spec.nodeName"),
        "spec.restartPolicy": _path("spec.restartPolicy"),
        "spec.schedulerName": _path("spec.schedulerName"),
        "spec.serviceAccountName": _path("spec.serviceAccountName"),
        "spec.hostNetwork": lambda o: "true" if get_path(o, "spec.hostNetwork") else "false",
        "status.phase": _path("status.phase"),
        "status.podIP": _path("status.podIP"),
        "status.nominatedNodeName": _path("status.nominatedNodeName"),
    },
    "events": {
        **_COMMON_FIELDS,
        "involvedObject.kind": _path("involvedObject.kind"),
        "involvedObject.namespace": _path("involvedObject.namespace"),
        "involvedObject.name": _path("involvedObject.name"),
        "involvedObject.uid": _path("involvedObject.uid"),
        "involvedObject.apiVersion": _path("involvedObject.apiVersion"),
        "involvedObject.resourceVersion": _path("involvedObject.resourceVersion"),
        "involvedObject.fieldPath": _path("involvedObject.fieldPath"),
        "reason": _path("reason"),
        "reportingComponent": _path("reportingComponent"),
        "source": _path("source.component"),
        "type": _path("type"),
    },
    "namespaces": {**_COMMON_FIELDS, "status.phase": _path("status.phase")},
}


@dataclass(frozen=True)
class FieldTerm:
    field: str
    equal: bool
    value: str
    getter: FieldGetter


@dataclass(frozen=True)
class FieldSelector:
    terms: tuple[FieldTerm, ...] = ()

    def matches(self, obj: Obj) -> bool:
        return all((t.getter(obj) == t.value) == t.equal for t in self.terms)

    def exact_name(self) -> str | None:
        """The name when the selector pins metadata.name (kubectl delete/wait does this)."""
        for t in self.terms:
            if t.field == "metadata.name" and t.equal:
                return t.value
        return None

    @classmethod
    def parse(cls, text: str | None, resource: str) -> FieldSelector:
        if not text or not text.strip():
            return cls()
        fields = SUPPORTED_FIELDS.get(resource, _COMMON_FIELDS)
        terms: list[FieldTerm] = []
        for raw in _split_unescaped(text, ","):
            part = raw.strip()
            if not part:
                continue
            for op, is_equal in (("!=", False), ("==", True), ("=", True)):
                idx = _find_unescaped(part, op)
                if idx >= 0:
                    field, value = part[:idx].strip(), _unescape(part[idx + len(op) :])
                    equal = is_equal
                    break
            else:
                raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
            getter = fields.get(field)
            if getter is None:
                raise SelectorError(f"field label not supported: {field}")
            terms.append(FieldTerm(field, equal, value, getter))
        return cls(tuple(terms))


def _find_unescaped(text: str, needle: str) -> int:
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text.startswith(needle, i):
            return i
        i += 1
    return -1


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    cur = ""
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            cur += text[i : i + 2]
            i += 2
            continue
        if text[i] == sep:
            parts.append(cur)
            cur = ""
        else:
            cur += text[i]
        i += 1
    parts.append(cur)
    return parts


def _unescape(text: str) -> str:
    out = ""
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            out += text[i + 1]
            i += 2
        else:
            out += text[i]
            i += 1
    return out
