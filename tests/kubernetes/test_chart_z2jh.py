"""The JupyterHub side documented in docs/kubernetes.md (config an operator pastes into z2jh's values)
matches what bindery's embedded hub does (bindery/stack/jupyterhub.py)."""

from __future__ import annotations

import json
import re
import tempfile
import textwrap
from types import SimpleNamespace

import pytest
import yaml

from bindery.settings import Settings
from bindery.stack.jupyterhub import BINDERY_SCOPES
from bindery.stack.spawner import binder_environment
from tests.kubernetes.chart import CHART, ROOT, Obj, container_env, helm, named, render


def z2jh_values() -> Obj:
    text = (ROOT / "docs/kubernetes.md").read_text()
    blocks = re.findall(r"```yaml\n(# z2jh values for bindery.*?)```", text, re.S)
    assert len(blocks) == 1
    return yaml.safe_load(blocks[0])


def test_documented_role_matches_the_embedded_hub() -> None:
    values = z2jh_values()
    role = values["hub"]["loadRoles"]["bindery"]
    assert role["scopes"] == BINDERY_SCOPES and role["services"] == ["bindery"]
    assert "bindery" in values["hub"]["services"]
    assert values["cull"]["users"] is True
    defaults = Settings()
    assert values["cull"]["timeout"] == defaults.cull_idle_seconds
    assert values["cull"]["maxAge"] == defaults.cull_max_age_seconds
    assert values["hub"]["config"]["JupyterHub"]["hub_routespec"] == "/hub/"
    assert set(values["hub"]["config"]["Proxy"]["extra_routes"]) == {"/user/", "/"}
    assert values["singleuser"]["extraEnv"]["JUPYTERHUB_ALLOW_TOKEN_IN_URL"] == "1"
    egress = values["singleuser"]["networkPolicy"]["egressAllowRules"]
    assert egress["privateIPs"] is False and egress["cloudMetadataServer"] is False


async def test_documented_image_hook_through_jupyterhub() -> None:
    """The extraConfig snippet, run by traitlets config and JupyterHub's own apply_user_options path:
    bindery's images start, anything else is a 400."""
    from jupyterhub.spawner import LocalProcessSpawner
    from tornado import web
    from traitlets import Unicode
    from traitlets.config import Config

    c = Config()
    exec(compile(z2jh_values()["hub"]["extraConfig"]["bindery-images"], "extraConfig", "exec"),
         {"c": c})

    class KubeSpawner(LocalProcessSpawner):  # the config section's name; `image` as KubeSpawner declares it
        image = Unicode("default/image:1")

    def spawner() -> KubeSpawner:
        return KubeSpawner(config=c, user=SimpleNamespace(name="u", url="/user/u/"))

    ok = spawner()
    await ok._run_apply_user_options({"image": "registry.example.org/bindery/gh-org-repo:abc"})
    assert ok.image == "registry.example.org/bindery/gh-org-repo:abc"
    # BinderHub's options become the server's variables, as the embedded hub's spawner makes them.
    binder = {"repo_url": "https://h/org/repo", "binder_ref_url": "https://h/org/repo/tree/abc",
              "binder_launch_host": "https://binder.example.org/",
              "binder_request": "v2/gh/org/repo/main", "binder_persistent_request": "v2/gh/org/repo/abc"}
    told = spawner()
    await told._run_apply_user_options({"image": "registry.example.org/bindery/x:1", **binder})
    assert {k: v for k, v in told.environment.items() if "REPO_URL" in k or k.startswith("BINDER_")} \
        == binder_environment(binder)
    assert spawner().environment == {}  # another spawner's options stay its own
    plain = spawner()
    await plain._run_apply_user_options({})
    assert plain.image == "default/image:1"
    for bad in ("docker.io/evil/miner:1", "registry.example.org/bindery/../x:1", 42,
                "registry.example.org/other/x:1", "registry.example.org/bindery/x:1 --privileged"):
        refused = spawner()
        with pytest.raises(web.HTTPError) as err:
            await refused._run_apply_user_options({"image": bad})
        assert err.value.status_code == 400
        assert refused.image == "default/image:1"


def test_documented_bindery_values_render() -> None:
    """The install example's values (docs/kubernetes.md, step 3) render as the text says."""
    text = (ROOT / "docs/kubernetes.md").read_text()
    [example] = re.findall(r"e\.g\. `binder\.yaml`:\n\n   ```yaml\n(.*?)   ```", text, re.S)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(textwrap.dedent(example))
        f.flush()
        done = helm("template", "binder", str(CHART), "--namespace", "jhub", "-f", f.name)
    assert done.returncode == 0, done.stderr
    objs = tuple(d for d in yaml.safe_load_all(done.stdout) if d)
    [container] = named(objs, "Deployment")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["BINDERY_HUB_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "hub", "key": "hub.services.bindery.apiToken"}
    assert env["BINDERY_HUB_API_URL"]["value"] == "http://hub:8081/hub/api"
    assert {"Ingress", "DaemonSet"} <= {o["kind"] for o in objs}
    # the Service the z2jh block's extra routes name
    routes = z2jh_values()["hub"]["config"]["Proxy"]["extra_routes"]
    service = named(objs, "Service")
    target = f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
    assert set(routes.values()) == {target}


def test_documented_sign_in_matches_the_embedded_hub(tmp_path) -> None:
    """The z2jh sign-in block (docs/kubernetes.md) asks the hub for what bindery's embedded hub
    config has with sign-in on: the service's OAuth callback, the user role, the bindery role with
    auth_state, named servers, and the culler removing them; and bindery's chart passes the
    sign-in settings through."""
    from bindery.stack.jupyterhub import AUTH_STATE_SCOPES, SIGNED_IN_USER_ROLE, config

    text = (ROOT / "docs/kubernetes.md").read_text()
    [block] = re.findall(r"```yaml\n(# z2jh sign-in values for bindery.*?)```", text, re.S)
    values = yaml.safe_load(block)
    public = "https://binder.example.org/"
    embedded = config(Settings(data_dir=tmp_path, public_url=public, sign_in="optional",
                               authenticator_class="github",
                               person_git_credentials={"https://github.com/": "access_token"}))
    [service] = [s for s in embedded["services"] if s["name"] == "bindery"]
    documented = values["hub"]["services"]["bindery"]
    assert documented["oauth_redirect_uri"] == service["oauth_redirect_uri"]
    assert documented["oauth_no_confirm"] is service["oauth_no_confirm"] is True
    roles = {r["name"]: r for r in embedded["roles"]}
    assert values["hub"]["loadRoles"]["user"]["scopes"] == SIGNED_IN_USER_ROLE["scopes"]
    assert values["hub"]["loadRoles"]["bindery"]["scopes"] == roles["bindery"]["scopes"] \
        == BINDERY_SCOPES + AUTH_STATE_SCOPES
    hub = values["hub"]["config"]
    assert hub["JupyterHub"]["allow_named_servers"] is embedded["allow_named_servers"] is True
    assert hub["Authenticator"]["enable_auth_state"] is embedded["auth_state"] is True
    assert values["cull"]["removeNamedServers"] is True
    # bindery's chart: the sign-in settings reach the web pods as BINDERY_* variables
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump({"settings": {"sign_in": "optional", "person_git_credentials":
                                     {"https://github.com/": "access_token"}}}, f)
        f.flush()
        env = container_env(named(render("-f", f.name), "Deployment"))
    assert env["BINDERY_SIGN_IN"] == "optional"
    assert json.loads(env["BINDERY_PERSON_GIT_CREDENTIALS"]) == {"https://github.com/": "access_token"}
