"""bindery/stack/base/server_trims.py as a module: it is a script the base image's build runs inside
the image (not part of the bindery package), and tests read its edits and its check."""

from __future__ import annotations

import importlib.util

from bindery.stack.base_image import HERE, SERVER_TRIMS

_spec = importlib.util.spec_from_file_location("server_trims", HERE / SERVER_TRIMS)
server_trims = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(server_trims)
