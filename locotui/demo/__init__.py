"""The local demo: a fleet of test emulators, the backend and Prometheus on this machine."""
