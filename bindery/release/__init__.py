"""Releases: the version derived from git, building the wheel into an artifact store, waiting for artifacts."""
