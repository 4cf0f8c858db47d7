"""The `repo2docker` command of the build image (bindery/stack/builder/Containerfile): repo2docker's
own command line and build, with differences that change no image:

- no scan of the build engine's local images before building (repo2docker's ``find_image``): it
  compares tags with ``<image>:latest``, which never matches bindery's tagged image names, and
  lists every image in the build store, a cost that grows with each build. bindery builds only
  images its registry lacks.
- when the build and push succeeded, a last JSON line carries the token bindery gave the build
  (BINDERY_BUILD_END_TOKEN), so bindery knows the build succeeded as soon as it is said, not
  when the engine has noticed the container's end (bindery/builds/runner.py). The token cannot be
  forged from a repository: its build steps run in containers of their own, without this
  process's environment, and their output reaches the log only inside repo2docker's JSON lines.
  The line also names the digest the engine pushed (from its push stream): what bindery launches.

and three that keep repository code in its sandbox:

- the pusher's registry credential arrives in the environment and becomes this process's docker
  config (taken out of the environment first): the engine gets it with the push request, never
  a build step;
- a symlink in the repository that points outside it ends the build, saying which;
- every build request carries the sandbox's parameters (BINDERY_BUILD_STEP_OPTIONS): the build
  steps' own network, the capabilities they lose, their cgroup (bindery/builds/step_sandbox.py).

Runs only inside the build image (it imports repo2docker, not bindery).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile

from repo2docker.__main__ import make_r2d
from repo2docker.docker import DockerEngine
from repo2docker.engine import BuildError, ImageLoadError

END_TOKEN_ENV = "BINDERY_BUILD_END_TOKEN"  # bindery/builds/repo2docker_run.py reads the same name
END_KEY = "bindery_build_succeeded"
DIGEST_KEY = "digest"
AUTH_ENV = "BINDERY_REGISTRY_AUTH"  # bindery/builds/repo2docker_run.py sets the same names
STEP_OPTIONS_ENV = "BINDERY_BUILD_STEP_OPTIONS"
PUSHED = re.compile(rb"digest: (sha256:[0-9a-f]{64})")
pushed: dict[str, str] = {}


def use_registry_auth() -> None:
    """The pusher's credential (a docker config, from the environment) as this process's docker
    config: the engine gets it with the push (and with the build, for FROM pulls). Taken out of
    the environment, so no child process (git) inherits it; build steps never had it."""
    config = os.environ.pop(AUTH_ENV, "")
    if config:
        folder = tempfile.mkdtemp(prefix="docker-config-")
        fd = os.open(os.path.join(folder, "config.json"), os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(config)
        os.environ["DOCKER_CONFIG"] = folder


def sandbox_build_steps(options: dict[str, str]) -> None:
    """Every build the engine runs for repo2docker gets these query parameters (the build steps'
    network, dropped capabilities, cgroup: see bindery/builds/step_sandbox.py). docker-py's build
    has no arguments for them, so they are added to its request."""
    build = DockerEngine.build

    def sandboxed(self, **kwargs):
        client = self._apiclient
        post = client._post

        def post_with_options(url, *args, **kw):
            if url.endswith("/build"):
                kw["params"] = {**(kw.get("params") or {}), **options}
            return post(url, *args, **kw)
        client._post = post_with_options
        return build(self, **kwargs)
    DockerEngine.build = sandboxed


def record_pushed_digest() -> None:
    """Keep the digest the engine says it pushed (its push stream names it), for the end line."""
    push = DockerEngine.push

    def recording(self, image_spec):
        for chunk in push(self, image_spec):
            found = PUSHED.search(chunk) if isinstance(chunk, bytes) else None
            if found:
                pushed[DIGEST_KEY] = found.group(1).decode()
            yield chunk
    DockerEngine.push = recording


class EscapingSymlink(Exception):
    pass


def refuse_escaping_symlinks(fetch):
    """After the checkout: a symlink that points outside the repository ends the build with a
    message saying which (the build context holds the repository's own files and nothing else;
    the engine would otherwise fail with a confusing 'no such file' at the step that copies it)."""
    def checked(url, ref, checkout_path):
        fetch(url, ref, checkout_path)
        root = os.path.realpath(checkout_path)
        for folder, dirs, files in os.walk(checkout_path):
            dirs[:] = [d for d in dirs if d != ".git"]
            for name in dirs + files:
                path = os.path.join(folder, name)
                if not os.path.islink(path):
                    continue
                target = os.path.realpath(path)
                if target != root and not target.startswith(root + os.sep):
                    raise EscapingSymlink(
                        f"the repository's symlink {os.path.relpath(path, checkout_path)} points "
                        f"outside the repository (to {os.readlink(path)}); a build sees only the "
                        "repository's own files: replace the link with the file itself")
    return checked


def main(argv: list[str] | None = None) -> int:
    use_registry_auth()
    step_options = os.environ.pop(STEP_OPTIONS_ENV, "")
    if step_options:
        sandbox_build_steps(json.loads(step_options))
    record_pushed_digest()
    r2d = make_r2d(argv)
    r2d.find_image = lambda: False  # see the module docstring
    r2d.fetch = refuse_escaping_symlinks(r2d.fetch)
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
        print(json.dumps({END_KEY: token, **pushed}), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
