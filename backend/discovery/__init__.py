"""Where the list of emulators comes from: Kubernetes, a static file, or local registrations."""
