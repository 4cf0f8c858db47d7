"""Sign-in: who may launch (anyone, signed-in people, or both), the hub's authenticator, the servers a
person may have, and the person's own tokens for private repositories.

Each field is also read from ``BINDERY_<FIELD>`` (upper case); see bindery/settings/__init__.py.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class SignInSettings(BaseModel):
    sign_in: Literal["off", "optional", "required"] = Field(
        "off",
        description="Who may launch: 'off' (anonymous launches only, no sign-in), 'optional' "
        "(anonymous launches, and people who sign in launch servers of their own) or 'required' "
        "(only signed-in people launch). Signing in goes through the hub's authenticator "
        "(authenticator_class) and JupyterHub's OAuth, with bindery as a hub service.")
    authenticator_class: str = Field(
        "",
        description="The JupyterHub Authenticator people sign in with, as JupyterHub's own "
        "authenticator_class takes it: an entry-point name ('native', 'generic-oauth', 'github', "
        "'gitlab', ...) or an import path ('nativeauthenticator.NativeAuthenticator'). Needed when "
        "sign_in is not 'off'. On Kubernetes, configure it in z2jh's hub.config instead.")
    authenticator_config: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="The authenticator's traitlets config, as in a jupyterhub_config.py: a JSON "
        "object mapping a class name to its settings, e.g. {\"GenericOAuthenticator\": "
        "{\"client_id\": \"bindery\", \"oauth_callback_url\": \"http://hub.example.org/hub/"
        "oauth_callback\"}, \"Authenticator\": {\"allow_all\": true}}. Written into the embedded "
        "hub's generated config as c.<Class>.<name> = <value>.")
    named_server_limit_per_user: int = Field(
        3, description="Servers one signed-in person may have at once (each launch is a named server "
        "of theirs); JupyterHub's named_server_limit_per_user. 0: no limit of its own (the quotas "
        "max_servers and max_servers_per_repo still count every person's servers).")
    person_git_credentials: dict[str, str] = Field(
        default_factory=dict,
        description="Repository URL prefixes (e.g. 'https://github.com/') whose private repositories "
        "a signed-in person launches with their own token: a JSON object mapping the prefix to the "
        "key of the authenticator's auth_state that holds the token ('access_token' for "
        "oauthenticator's GitHub, GitLab and generic authenticators). The token is read from the hub "
        "per launch, never shown or logged, and for those prefixes it replaces git_credentials. "
        "Non-empty turns on the hub's auth_state (encrypted with a key kept in the data folder, or "
        "JUPYTERHUB_CRYPT_KEY).")
    sign_in_cookie_seconds: int = Field(
        8 * 3600, description="How long bindery's sign-in cookie lasts (it holds the person's hub "
        "OAuth token; the hub's own expiry of that token applies too).")
