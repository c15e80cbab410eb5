"""A single-node Kubernetes on this machine, built from the registries, for trying and testing.

``python -m localcluster up`` builds the real components from the Go module proxy (cached
by version outside the repository), makes the project's images locally, and starts etcd,
kube-apiserver, kube-controller-manager, kube-scheduler, a private containerd, kubelet,
kube-proxy and CoreDNS; ``down`` stops all of it and puts the host back as it was. Not for
production: one node, for trying the chart and running the tests against the real thing.
"""
