"""Launches: the JupyterHub adapter, the launcher (follow, verify, clean up) and quotas."""
