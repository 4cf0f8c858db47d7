"""Sign-in without a stack: the hub config the settings make (run through traitlets as the hub runs
it), quotas over people's named servers, whose token a repository gets, and the sign-in routes'
refusals (forged or stale state, places outside this site)."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.testclient import TestClient
from traitlets.config import Config

from bindery.builds.log_access import is_private
from bindery.launches.people import SERVER_NAME, new_server
from bindery.launches.reservations import HubSnapshot, Limits, QuotaFull, take_place
from bindery.launches.hub_api import server_path
from bindery.launches.hub_users import PREFIX, repo_key
from bindery.launches.launcher import person_token_scopes
from bindery.providers.credentials import credential_for, git_auth_config
from bindery.settings import Settings
from bindery.stack import jupyterhub, process
from bindery.web.signin import STATE_COOKIE, SignIn, _local_next


def hub_config(tmp_path, **settings) -> tuple[dict, Config]:
    """The embedded hub's config values and the traitlets Config its generated file makes."""
    s = Settings(data_dir=tmp_path, **settings)
    values = jupyterhub.config(s)
    text = jupyterhub.CONFIG_TEMPLATE.format(data_dir=tmp_path, blob=json.dumps(values))
    c = Config()
    exec(compile(text, "jupyterhub_config.py", "exec"), {"c": c})
    return values, c


def test_anonymous_only_hub_has_no_logins_and_no_named_servers(tmp_path) -> None:
    values, c = hub_config(tmp_path)
    assert c.JupyterHub.authenticator_class == "null"
    assert c.JupyterHub.allow_named_servers is False
    [service] = [s for s in values["services"] if s["name"] == "bindery"]
    assert "oauth_redirect_uri" not in service
    assert [r["name"] for r in values["roles"]] == ["bindery", "idle-culler"]


def test_sign_in_renders_the_authenticator_its_config_and_named_servers(tmp_path) -> None:
    values, c = hub_config(
        tmp_path, sign_in="optional", authenticator_class="native", named_server_limit_per_user=4,
        public_url="https://binder.example.org/",
        authenticator_config={"NativeAuthenticator": {"open_signup": True},
                              "Authenticator": {"allow_all": True}})
    assert c.JupyterHub.authenticator_class == "native"
    assert c.NativeAuthenticator.open_signup is True and c.Authenticator.allow_all is True
    assert c.JupyterHub.allow_named_servers is True
    assert c.JupyterHub.named_server_limit_per_user == 4
    assert "enable_auth_state" not in c.Authenticator  # no person tokens asked for
    [service] = [s for s in c.JupyterHub.services if s["name"] == "bindery"]
    assert service["oauth_redirect_uri"] == "https://binder.example.org/oauth_callback"
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert roles["user"] == jupyterhub.SIGNED_IN_USER_ROLE
    assert roles["bindery"]["scopes"] == jupyterhub.BINDERY_SCOPES  # no auth_state to read
    [culler] = [s for s in values["services"] if s["name"] == "idle-culler"]
    assert "--remove-named-servers=True" in culler["command"]
    # bindery's own settings win over the pass-through (it is applied first)
    _, c = hub_config(tmp_path, sign_in="optional", authenticator_class="native",
                      authenticator_config={"JupyterHub": {"allow_named_servers": False}})
    assert c.JupyterHub.allow_named_servers is True


def test_person_tokens_turn_on_auth_state_and_its_scope(tmp_path) -> None:
    _, c = hub_config(tmp_path, sign_in="required", authenticator_class="github",
                      person_git_credentials={"https://github.com/": "access_token"})
    assert c.Authenticator.enable_auth_state is True
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert "admin:auth_state" in roles["bindery"]["scopes"]


def test_sign_in_without_an_authenticator_is_refused_clearly(tmp_path) -> None:
    with pytest.raises(process.StackError, match="authenticator_class"):
        jupyterhub.config(Settings(data_dir=tmp_path, sign_in="optional"))


def test_named_servers_count_against_the_quotas_of_their_repository() -> None:
    repo = "https://example.org/org/repo"
    mine = new_server("alice", repo)
    person, _, server = mine.partition("/")
    assert person == "alice" and SERVER_NAME.fullmatch(server)
    assert server_path(mine) == f"/users/alice/servers/{server}"
    assert server_path("b-1-2") == "/users/b-1-2/server"
    assert person_token_scopes(mine) == [f"access:servers!server=alice/{server}"]
    users = [
        {"name": "alice", "servers": {server: {}, "own": {}, "": {}}},  # only bindery's count
        {"name": f"{PREFIX}{repo_key(repo)}-00000000", "servers": {"": {}}},
        {"name": "bob", "servers": {}},
    ]
    hub = HubSnapshot.of(users, 0.0)
    assert hub.active == {mine, f"{PREFIX}{repo_key(repo)}-00000000"}
    limits = Limits(total=10, per_repo=2, repo_prefix=f"{PREFIX}{repo_key(repo)}-")
    with pytest.raises(QuotaFull) as full:
        take_place({}, new_server("bob", repo), hub, limits)
    assert full.value.quota == "repo_quota"
    other = "https://example.org/other"
    held: dict = {}
    take_place(held, new_server("bob", other), hub,
               Limits(total=10, per_repo=2, repo_prefix=f"{PREFIX}{repo_key(other)}-"))
    assert len(held) == 1
    with pytest.raises(QuotaFull) as full:  # the total counts everyone's: 2 servers + bob's place
        take_place(held, new_server("bob", other), hub, Limits(3, 5, limits.repo_prefix))
    assert full.value.quota == "pod_quota"


def test_a_person_token_host_never_gets_the_operators_token() -> None:
    s = Settings(git_credentials={"https://git.example.org/": SecretStr("operator")},
                 person_git_credentials={"https://git.example.org/team/": "access_token"})
    assert credential_for(s, "https://git.example.org/team/repo") is None
    assert credential_for(s, "https://git.example.org/other/repo") is not None
    assert git_auth_config(s, "https://git.example.org/team/repo") == ()
    mine = ("https://git.example.org/team/", SecretStr("persons-token"))
    [(key, value)] = git_auth_config(s, "https://git.example.org/team/repo", mine)
    assert key == "http.https://git.example.org/team/.extraHeader" and "operator" not in value
    assert is_private(s, "https://git.example.org/team/repo")  # its build log needs its key


def sign_in_client(**settings) -> TestClient:
    s = Settings(sign_in="optional", authenticator_class="native",
                 hub_api_token=SecretStr("t" * 32), public_url="http://binder.test/", **settings)
    signin = SignIn(s)
    return TestClient(Starlette(routes=signin.routes()), base_url="http://binder.test")


def test_sign_in_goes_to_the_hub_and_a_forged_or_stale_answer_is_refused() -> None:
    client = sign_in_client(hub_url="http://hub.test")
    started = client.get("/sign-in", params={"next": "/v2/gh/org/repo/main"},
                         follow_redirects=False)
    assert started.status_code == 302
    assert started.headers["location"].startswith("http://hub.test/hub/api/oauth2/authorize?")
    assert "code_challenge=" in started.headers["location"]
    assert STATE_COOKIE in started.cookies
    # the hub's answer with another state (a forged callback) is refused, before any hub call
    forged = client.get("/oauth_callback", params={"code": "x", "state": "not-the-state"})
    assert forged.status_code == 400 and "does not match" in forged.json()["message"]
    client.cookies.clear()
    stale = client.get("/oauth_callback", params={"code": "x", "state": "y"})
    assert stale.status_code == 400 and "sign in again" in stale.json()["message"]
    assert client.get("/api/me").status_code == 401
    assert client.delete("/api/servers/b-00000000-00000000").status_code == 401


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example",
                                    "javascript:alert(1)", "", None])
def test_sign_in_returns_only_to_this_site(target) -> None:
    assert _local_next(target, "/") == "/"
    assert _local_next("/v2/gh/org/repo/main?urlpath=lab", "/") == "/v2/gh/org/repo/main?urlpath=lab"
