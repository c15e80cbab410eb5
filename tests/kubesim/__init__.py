"""A Kubernetes API simulator for tests.

No real API server can run on the test machines, so this package serves the parts of the
Kubernetes API the product uses (discovery, namespaces, pods, pod logs, events,
StatefulSets) with real semantics: resourceVersions, watches with bookmarks and 410 Gone,
selectors, graceful deletion, a StatefulSet controller, bearer-token auth and per-verb
authorization. The official Python client and a real ``kubectl`` work against it
unchanged. See README.md next to this file.
"""

from tests.kubesim.auth import READ_ONLY_VERBS, Rule, Token
from tests.kubesim.sim import KubeSim, PodBinding
from tests.kubesim.timing import Timing

__all__ = ["READ_ONLY_VERBS", "KubeSim", "PodBinding", "Rule", "Timing", "Token"]
