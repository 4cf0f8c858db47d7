"""Signing in to bindery through the hub: bindery is a hub service, and people sign in with the
hub's authenticator through the hub's OAuth (JupyterHub's HubOAuth does the token exchange and
asks the hub who a token belongs to).

Nothing is kept in this process: the OAuth state and PKCE verifier travel in a short-lived cookie
of the browser that started the sign-in (HubOAuth keeps them in memory, which a second replica
or a restart would not have), and the person's hub token in an HttpOnly cookie that the hub
checks (user_for_token, cached briefly). So any process answers the same, after a restart too.

Routes: /sign-in (to the hub), /oauth_callback (back from it), /sign-out, /api/me (who am I and
my servers), /api/servers/<name> (DELETE: stop one of mine).
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from urllib.parse import urlencode

from jupyterhub.services.auth import HubOAuth
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bindery import datadir
from bindery.launches import people
from bindery.launches.hub_api import Hub, HubError
from bindery.settings import Settings

log = logging.getLogger(__name__)

TOKEN_COOKIE = "bindery-signin"
STATE_COOKIE = "bindery-signin-state"
STATE_SECONDS = 600  # a sign-in must come back from the hub within this
CLIENT_ID = "service-bindery"  # JupyterHub's OAuth client id of the service named "bindery"


def enabled(settings: Settings) -> bool:
    return settings.signin.sign_in != "off"


def _local_next(url: str | None, base: str) -> str:
    """Only a path on this site: a sign-in never sends anyone elsewhere."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return base
    return url


class SignIn:
    """Who the person of a request is (by their hub token cookie), and the sign-in routes."""

    def __init__(self, settings: Settings, hub: Hub | None = None) -> None:
        self.settings = settings
        self.secure = settings.service.web_url.startswith("https://")
        self.oauth = HubOAuth(
            api_url=datadir.hub_api(settings) + "/", api_token=datadir.hub_token(settings),
            oauth_client_id=CLIENT_ID, oauth_redirect_uri=settings.sign_in_callback_url,
            hub_host=settings.hub_public, hub_prefix="/hub/", cache_max_age=60)
        self._hub = hub

    @property
    def hub(self) -> Hub:
        if self._hub is None:
            self._hub = Hub(datadir.hub_api(self.settings), datadir.hub_token(self.settings),
                            self.settings.launches.hub_timeout)
        return self._hub

    async def person(self, request: Request) -> str | None:
        """The signed-in person's hub name, or None (no cookie, an expired or revoked token, a
        hub that does not answer: anonymous)."""
        token = request.cookies.get(TOKEN_COOKIE)
        if not token:
            return None
        try:
            model = await self.oauth.user_for_token(token, sync=False)
        except Exception as exc:  # the hub's answer, whatever it is, means "not signed in"
            log.info("sign-in token not accepted: %s", type(exc).__name__)
            return None
        if not model or model.get("kind", "user") != "user" or not model.get("name"):
            return None
        return str(model["name"])

    # -- routes ------------------------------------------------------------------------------
    async def sign_in(self, request: Request) -> Response:
        base = request.scope.get("root_path", "").rstrip("/") + "/"
        state = secrets.token_urlsafe(24)
        verifier, challenge, method = self.oauth.generate_pkce_code_challenge()
        query = urlencode({
            "client_id": CLIENT_ID, "redirect_uri": self.settings.sign_in_callback_url,
            "response_type": "code", "state": state, "code_challenge": challenge,
            "code_challenge_method": method})
        response = RedirectResponse(f"{self.oauth.oauth_authorization_url}?{query}", 302)
        carried = {"state": state, "verifier": verifier,
                   "next": _local_next(request.query_params.get("next"), base)}
        response.set_cookie(STATE_COOKIE, base64.urlsafe_b64encode(json.dumps(carried).encode())
                            .decode(), max_age=STATE_SECONDS, httponly=True, samesite="lax",
                            secure=self.secure)
        return response

    async def callback(self, request: Request) -> Response:
        base = request.scope.get("root_path", "").rstrip("/") + "/"
        try:
            carried = json.loads(base64.urlsafe_b64decode(request.cookies.get(STATE_COOKIE, "")))
            state, verifier, next_url = carried["state"], carried["verifier"], carried["next"]
        except (ValueError, KeyError, TypeError):
            return _refused(400, "This sign-in did not start here or took too long; "
                            "please sign in again.")
        code = request.query_params.get("code", "")
        if not code or not secrets.compare_digest(request.query_params.get("state", ""), state):
            return _refused(400, "The sign-in answer does not match the sign-in this browser "
                            "started; please sign in again.")
        try:
            token = await self.oauth.token_for_code(code, code_verifier=verifier, sync=False)
        except Exception as exc:
            log.warning("the hub refused a sign-in code: %s", type(exc).__name__)
            return _refused(403, "The hub did not accept this sign-in; please sign in again.")
        response = RedirectResponse(_local_next(next_url, base), 302)
        response.delete_cookie(STATE_COOKIE)
        response.set_cookie(TOKEN_COOKIE, token, max_age=self.settings.signin.sign_in_cookie_seconds,
                            httponly=True, samesite="lax", secure=self.secure)
        return response

    async def sign_out(self, request: Request) -> Response:
        base = request.scope.get("root_path", "").rstrip("/") + "/"
        # The hub's own session ends too, or the next sign-in would pass straight through.
        response = RedirectResponse(f"{self.settings.hub_public}/hub/logout", 302) \
            if request.query_params.get("hub") else RedirectResponse(base, 302)
        response.delete_cookie(TOKEN_COOKIE)
        return response

    async def me(self, request: Request) -> Response:
        person = await self.person(request)
        if person is None:
            return JSONResponse({"signed_in": False, "sign_in": self.settings.signin.sign_in},
                                status_code=401)
        try:
            servers = await people.servers_of(self.hub, person)
        except HubError as exc:
            return _refused(503, f"JupyterHub did not list your servers ({exc}).")
        return JSONResponse({"signed_in": True, "name": person,
                             "sign_in": self.settings.signin.sign_in,
                             "server_limit": self.settings.signin.named_server_limit_per_user,
                             "servers": [s.as_json() for s in servers]},
                            headers={"Cache-Control": "no-store"})

    async def stop(self, request: Request) -> Response:
        person = await self.person(request)
        if person is None:
            return _refused(401, "Sign in to stop your servers.")
        name = request.path_params["name"]
        try:
            await people.stop_server(self.hub, person, name)
        except people.NotYours:
            return _refused(404, f"You have no server named {name[:80]!r}.")
        except HubError as exc:
            return _refused(503, f"JupyterHub did not stop the server ({exc}).")
        log.info("stopped a server at its person's request", extra={"server": name})
        return JSONResponse({"stopped": name}, status_code=202)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/sign-in", self.sign_in),
            Route("/oauth_callback", self.callback),
            Route("/sign-out", self.sign_out),
            Route("/api/me", self.me),
            Route("/api/servers/{name}", self.stop, methods=["DELETE"]),
        ]

    async def aclose(self) -> None:
        if self._hub is not None:
            await self._hub.aclose()


def _refused(status: int, message: str) -> JSONResponse:
    return JSONResponse({"status_code": status, "message": message}, status_code=status)
