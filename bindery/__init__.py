"""bindery: give it a git repository and a ref, get a running Jupyter server."""
