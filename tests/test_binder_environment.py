"""Every launched server has BinderHub's BINDER_* variables (names and meanings as BinderHub's
spawner sets them), read inside the server by its own kernel."""

from __future__ import annotations

import json

from bindery.stack.spawner import binder_environment
from tests.builds.kernel import run_in_kernel
from tests.streams import collect

READ = ("import json, os; print(json.dumps({k: os.environ.get(k) for k in ("
        "'BINDER_REPO_URL', 'BINDER_REF_URL', 'BINDER_LAUNCH_HOST', 'BINDER_PERSISTENT_REQUEST', "
        "'BINDER_REQUEST', 'REPO_URL')}))")


async def test_a_launched_server_knows_its_binder_request(stack, git_repo_factory, git_server):
    path, url = git_repo_factory("binderenv")
    commit = git_server.git(git_server.root / path, "rev-parse", "HEAD")
    events = await collect(stack, "gh", f"{path}/main")
    ready = events[-1].data()
    assert events[-1].phase == "ready", ready
    env = json.loads(await run_in_kernel(ready["url"], ready["token"], READ))
    assert env == {
        "BINDER_REPO_URL": url,  # the repository's URL, as the provider spells it
        "BINDER_REF_URL": f"{url}/tree/{commit}",  # where a person sees that commit
        "BINDER_LAUNCH_HOST": stack.service.web_url,  # the Binder that launched it
        "BINDER_REQUEST": f"v2/gh/{path}/main",  # the link as asked
        "BINDER_PERSISTENT_REQUEST": f"v2/gh/{path}/{commit}",  # the link pinned to the commit
        "REPO_URL": url,
    }
    # The `ready` event carries the same under the start options' names, as BinderHub's does.
    options = {"BINDER_REPO_URL": "repo_url", "BINDER_REF_URL": "binder_ref_url",
               "BINDER_LAUNCH_HOST": "binder_launch_host", "BINDER_REQUEST": "binder_request",
               "BINDER_PERSISTENT_REQUEST": "binder_persistent_request"}
    assert {name: ready[key] for name, key in options.items()} == \
        {name: env[name] for name in options}


def test_only_plain_bounded_strings_become_variables():
    assert binder_environment(None) == {}
    assert binder_environment({"image": "x", "repo_url": "https://h/r"}) == {
        "BINDER_REPO_URL": "https://h/r", "REPO_URL": "https://h/r"}
    assert binder_environment({"binder_request": ["v2/gh/a/b/c"]}) == {}
    assert binder_environment({"binder_request": "v2/" + "x" * 5000}) == {}
