"""Stacks whose hub has a real authenticator: NativeAuthenticator (sign-up and login pages), and
oauthenticator's GenericOAuthenticator against a real OpenID Connect provider (oidc_provider.py)
whose access tokens also open a private repository on a smart-HTTP git server.

One dedicated stack (its hub config differs from the session stack's) serves the package: it
starts with NativeAuthenticator; `oidc_stack` brings the same stack up again with the OIDC settings
(only the hub and the web service restart), so the package pays for one stack start.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from pydantic import SecretStr

from bindery import stack as embedded
from bindery.event_stream import follow_sync
from bindery.events import Event
from bindery.settings import Settings
from tests.conftest import free_port
from tests.production.own_stack import dedicated_stack
from tests.providers.httpgit import HttpGitServer
from tests.signin.oidc_provider import OidcProvider
from tests.web.browser import chromium

PEOPLE = {"alice": "alice-password-7c1e", "bob": "bob-password-92fd"}


@pytest.fixture(scope="package")
def native_stack(tmp_path_factory, git_server) -> Iterator[Settings]:
    with dedicated_stack(
            tmp_path_factory.mktemp("signin-native"), git_server.base_url,
            sign_in="optional", authenticator_class="native", named_server_limit_per_user=2,
            max_servers_per_repo=2,
            authenticator_config={"NativeAuthenticator": {"open_signup": True},
                                  "Authenticator": {"allow_all": True}}) as settings:
        yield settings


@pytest.fixture(scope="package")
def oidc_provider(tmp_path_factory) -> Iterator[OidcProvider]:
    provider = OidcProvider(tmp_path_factory.mktemp("idp"), free_port())
    yield provider
    provider.stop()


@pytest.fixture(scope="package")
def token_git(git_server, oidc_provider) -> Iterator[HttpGitServer]:
    """A git host that, as a forge does with its own OAuth tokens, accepts exactly the access
    tokens the identity provider vouches for (its userinfo answers for them)."""
    server = HttpGitServer(git_server.root, token=lambda t: t == OPERATOR_TOKEN
                           or oidc_provider.userinfo(t) is not None)
    server.start()
    yield server
    server.stop()


OPERATOR_TOKEN = "operator-token-the-git-host-would-accept-1d2c"


@pytest.fixture(scope="package")
def oidc_stack(native_stack, oidc_provider, token_git) -> Iterator[Settings]:
    """The package's stack with GenericOAuthenticator against the real provider, sign-in required,
    and people's own tokens (auth_state's access_token) for the token git host. The operator also
    holds a token for that host, which the host would accept: bindery must never use it there."""
    hub = native_stack.hub_public
    oidc_provider.start(f"{hub}/hub/oauth_callback", {"carol": "carol-password-51ab"})
    idp = oidc_provider.url
    settings = native_stack.model_copy(update={
        "sign_in": "required", "authenticator_class": "generic-oauth",
        "person_git_credentials": {f"{token_git.base_url}/": "access_token"},
        "git_credentials": {f"{token_git.base_url}/": SecretStr(OPERATOR_TOKEN)},
        "authenticator_config": {
            "GenericOAuthenticator": {
                "client_id": oidc_provider.client_id,
                "client_secret": oidc_provider.client_secret,
                "oauth_callback_url": f"{hub}/hub/oauth_callback",
                "authorize_url": f"{idp}/o/authorize/", "token_url": f"{idp}/o/token/",
                "userdata_url": f"{idp}/o/userinfo/", "scope": ["openid", "profile"],
                "username_claim": "preferred_username", "login_service": "Test IdP"},
            "Authenticator": {"allow_all": True}}})
    embedded.up(settings, log=lambda line: None)  # restarts the hub and the web service
    yield settings


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def web(settings: Settings) -> str:
    return settings.service.web_url.rstrip("/")


def launch(settings: Settings, spec: str, cookies: dict[str, str] | None = None,
           timeout: float = 300) -> list[Event]:
    """Every event of one launch through bindery's /build stream, as the cookie's person."""
    return stream(f"{web(settings)}/build/git/{spec}", cookies, timeout)


def stream(url: str, cookies: dict[str, str] | None = None, timeout: float = 300) -> list[Event]:
    """Every event of one event stream of bindery's (`url`), as the cookie's person."""
    events: list[Event] = []
    with httpx.Client(timeout=httpx.Timeout(30, read=timeout), cookies=cookies or {}) as client:
        for message in follow_sync(client, url, done=lambda m: json.loads(m.data).get("phase") in
                                   ("ready", "failed")):
            events.append(Event.model_validate_json(message.data))
    return events


def git_spec(url: str, ref: str = "main") -> str:
    return f"{quote(url, safe='')}/{ref}"


def signin_cookie(context) -> dict[str, str]:
    """bindery's sign-in cookie from a browser context (to use the same person from httpx)."""
    return {c["name"]: c["value"] for c in context.cookies() if c["name"] == "bindery-signin"}
