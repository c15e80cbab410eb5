"""A Kubernetes API simulator, kept only for faults a real API server cannot be made to
produce on demand: an answer of a chosen status (500, 503, 429) to a chosen request, a watch
stream ended cleanly at a chosen moment, a 410 Gone as the HTTP status of a watch request,
latency on chosen paths. Everything else Kubernetes-facing is tested against the real local
cluster (tests/cluster). See README.md next to this file.
"""

from tests.kubesim.auth import READ_ONLY_VERBS, Rule, Token
from tests.kubesim.sim import KubeSim
from tests.kubesim.timing import Timing

__all__ = ["READ_ONLY_VERBS", "KubeSim", "Rule", "Timing", "Token"]
