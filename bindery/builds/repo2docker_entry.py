"""The `repo2docker` command of the build image (bindery/stack/builder/Containerfile): repo2docker's
own command line and build, with two differences that change no image:

- no scan of the build engine's local images before building (repo2docker's ``find_image``): it
  compares tags with ``<image>:latest``, which never matches bindery's tagged image names, and
  lists every image in the build store, a cost that grows with each build. bindery builds only
  images its registry lacks.
- when the build and push succeeded, a last JSON line carries the token bindery gave the build
  (BINDERY_BUILD_END_TOKEN), so bindery knows the build succeeded as soon as it is said, not
  when the engine has noticed the container's end (bindery/builds/runner.py). The token cannot be
  forged from a repository: its build steps run in containers of their own, without this
  process's environment, and their output reaches the log only inside repo2docker's JSON lines.

Runs only inside the build image (it imports repo2docker, not bindery).
"""

from __future__ import annotations

import json
import os
import sys

from repo2docker.__main__ import make_r2d
from repo2docker.engine import BuildError, ImageLoadError

END_TOKEN_ENV = "BINDERY_BUILD_END_TOKEN"  # bindery/builds/repo2docker_run.py reads the same name
END_KEY = "bindery_build_succeeded"


def main(argv: list[str] | None = None) -> int:
    r2d = make_r2d(argv)
    r2d.find_image = lambda: False  # see the module docstring
    r2d.initialize()
    try:
        r2d.start()
    except (BuildError, ImageLoadError):  # already logged, as repo2docker's own command has it
        return 1
    # Any other exception propagates to repo2docker's JSON excepthook (initialize installs it).
    token = os.environ.get(END_TOKEN_ENV)
    if token:
        # On stderr, after repo2docker's own log lines (its log handler writes there): one stream
        # keeps their order, so a reader that stops at this line has missed none of them.
        sys.stderr.flush()
        print(json.dumps({END_KEY: token}), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
