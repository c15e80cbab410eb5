"""The simulator's own tests use the fixtures every other suite can import."""

from tests.kubesim.fixtures import k8s_api_client, kubesim, kubesim_factory

__all__ = ["k8s_api_client", "kubesim", "kubesim_factory"]
