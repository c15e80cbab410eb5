"""The one place that talks to the Kubernetes API (the backend's discovery and actions, and
the console's pod views, logs and restarts all go through it).

* :mod:`.config` — connecting (kubeconfig or in-cluster) and choosing the namespace;
* :mod:`.conventions` — the labels, annotations and ports the project relies on;
* :mod:`.pods` — pure parsing of pod JSON into facts the rest of the project uses;
* :mod:`.errors` — API failures as one line an operator can act on;
* :mod:`.api` — the calls themselves, on the official client's asyncio flavour
  (``kubernetes.aio``), raw JSON in and out, every stream bounded;
* :mod:`.watching` — one list-then-watch loop: bookmarks, resumption, 410 → relist.

Nothing else imports ``kubernetes``.
"""
