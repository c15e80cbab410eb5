"""Bearer-token authentication and RBAC-like per-verb authorization.

Messages and Status shapes copy the real API server's, because clients (and operators
reading ``kubectl`` errors) rely on them: ``pods "x" is forbidden: User "u" cannot delete
resource "pods" in API group "" in the namespace "ns"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.kubesim.objects import Obj, status

READ_ONLY_VERBS: tuple[str, ...] = ("get", "list", "watch")
ADMIN_TOKEN = "kubesim-admin-token"
READONLY_TOKEN = "kubesim-readonly-token"


@dataclass(frozen=True)
class Rule:
    """One RBAC PolicyRule. '*' matches everything; resources may name subresources
    ("pods/log"); namespaces are the namespaces a RoleBinding would grant it in."""

    verbs: tuple[str, ...] = ("*",)
    resources: tuple[str, ...] = ("*",)
    api_groups: tuple[str, ...] = ("*",)
    namespaces: tuple[str, ...] = ("*",)

    def allows(self, verb: str, group: str, resource: str, namespace: str | None) -> bool:
        return (
            _match(self.verbs, verb)
            and _match(self.api_groups, group)
            and (
                _match(self.resources, resource)
                or _match(self.resources, resource.split("/")[0] + "/*")
            )
            and (
                (namespace is None and "*" in self.namespaces)
                or _match(self.namespaces, namespace or "")
            )
        )


def _match(allowed: tuple[str, ...], value: str) -> bool:
    return "*" in allowed or value in allowed


@dataclass(frozen=True)
class Token:
    """A bearer token, the user it authenticates as, and what that user may do."""

    token: str
    user: str
    rules: tuple[Rule, ...] = field(default_factory=lambda: (Rule(),))

    @classmethod
    def admin(cls, token: str = ADMIN_TOKEN, user: str = "kubesim-admin") -> Token:
        return cls(token, user, (Rule(),))

    @classmethod
    def read_only(cls, token: str = READONLY_TOKEN, user: str = "kubesim-readonly") -> Token:
        return cls(token, user, (Rule(verbs=READ_ONLY_VERBS),))

    def allows(self, verb: str, group: str, resource: str, namespace: str | None) -> bool:
        return any(r.allows(verb, group, resource, namespace) for r in self.rules)


class Authenticator:
    def __init__(self, tokens: list[Token]) -> None:
        self._tokens = {t.token: t for t in tokens}

    def add(self, token: Token) -> None:
        self._tokens[token.token] = token

    def remove(self, token: str) -> None:
        self._tokens.pop(token, None)

    def authenticate(self, authorization: str | None) -> Token | None:
        if not authorization:
            return None
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self._tokens.get(credential.strip())


def unauthorized() -> Obj:
    return status(401, "Unauthorized", "Unauthorized")


def forbidden(
    user: str,
    verb: str,
    group: str,
    resource: str,
    subresource: str | None,
    namespace: str | None,
    name: str | None,
) -> Obj:
    """The exact 403 body of the RBAC authorizer for this request."""
    qualified = f"{resource}.{group}" if group else resource
    subject = f'{qualified} "{name}"' if name else qualified
    full_resource = f"{resource}/{subresource}" if subresource else resource
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    message = (
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{full_resource}" '
        f'in API group "{group}" {scope}'
    )
    details: Obj = {"kind": resource}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    return status(403, "Forbidden", message, details)
