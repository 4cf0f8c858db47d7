"""A real OpenID Connect provider for tests: django-oauth-toolkit (PyPI; the OAuth2/OIDC provider
many Django sites run) in a small Django project of its own, served by uvicorn.

It offers the authorization-code flow with a login form, signed ID tokens (RS256), and a userinfo
endpoint that names the person (``preferred_username``). Its access tokens are what a person's
git host would accept in tests/signin (the test git server asks this provider's userinfo about
them, as a forge accepts the tokens of its own OAuth provider).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bindery.backoff import wait_until

SETTINGS = '''\
from pathlib import Path

HERE = Path(__file__).parent
SECRET_KEY = {secret!r}
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
                  "oauth2_provider"]
MIDDLEWARE = ["django.contrib.sessions.middleware.SessionMiddleware",
              "django.middleware.common.CommonMiddleware",
              "django.middleware.csrf.CsrfViewMiddleware",
              "django.contrib.auth.middleware.AuthenticationMiddleware"]
ROOT_URLCONF = "idp_urls"
TEMPLATES = [{{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [HERE],
              "APP_DIRS": True, "OPTIONS": {{"context_processors": [
                  "django.template.context_processors.request",
                  "django.contrib.auth.context_processors.auth"]}}}}]
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": HERE / "idp.sqlite"}}}}
USE_TZ = True
LOGIN_URL = "/accounts/login/"


OAUTH2_PROVIDER = {{
    "OIDC_ENABLED": True,
    "OIDC_RSA_PRIVATE_KEY": (HERE / "oidc.key").read_text(),
    "OAUTH2_VALIDATOR_CLASS": "idp_validator.Validator",
    "SCOPES": {{"openid": "OpenID Connect", "profile": "Your name"}},
    "PKCE_REQUIRED": False,
}}
'''

URLS = '''\
from django.contrib.auth.views import LoginView
from django.urls import include, path

urlpatterns = [
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("accounts/login/", LoginView.as_view(template_name="login.html")),
]
'''

VALIDATOR = '''\
from oauth2_provider.oauth2_validators import OAuth2Validator


class Validator(OAuth2Validator):
    oidc_claim_scope = None  # every claim below for the openid scope

    def get_additional_claims(self, request):
        return {"preferred_username": request.user.username}
'''

LOGIN = '''\
<!doctype html><title>Identity provider</title>
<form method="post">{% csrf_token %}{{ form.as_p }}
<input type="hidden" name="next" value="{{ next }}"><button type="submit">Sign in</button></form>
'''

SETUP = '''\
import django, sys
django.setup()
from django.contrib.auth.models import User
from oauth2_provider.models import Application
client_id, secret, redirect = sys.argv[1:4]
for name, password in zip(sys.argv[4::2], sys.argv[5::2]):
    User.objects.create_user(name, password=password)
Application.objects.create(
    name="hub", client_id=client_id, client_secret=secret, client_type="confidential",
    authorization_grant_type="authorization-code", redirect_uris=redirect,
    skip_authorization=True, algorithm="RS256")
'''


class OidcProvider:
    """`start(redirect_uri, people)` sets it up (users, one client for the hub) and serves it."""

    client_id = "jupyterhub"
    client_secret = "hub-client-secret-3f9d1c"

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": f"{self.root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
                "DJANGO_SETTINGS_MODULE": "idp_settings"}

    def start(self, redirect_uri: str, people: dict[str, str], timeout: float = 60) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (self.root / "oidc.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        (self.root / "idp_settings.py").write_text(SETTINGS.format(secret=os.urandom(16).hex()))
        (self.root / "idp_urls.py").write_text(URLS)
        (self.root / "idp_validator.py").write_text(VALIDATOR)
        (self.root / "login.html").write_text(LOGIN)
        env = self._env()
        subprocess.run([sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
                       env=env, cwd=self.root, check=True, timeout=120, capture_output=True)
        subprocess.run([sys.executable, "-c", SETUP, self.client_id, self.client_secret,
                        redirect_uri, *[v for pair in people.items() for v in pair]],
                       env=env, cwd=self.root, check=True, timeout=60, capture_output=True)
        self.log = open(self.root / "idp.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(self.port),
             "--no-access-log", "django.core.asgi:get_asgi_application", "--factory"],
            env=env, cwd=self.root, stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(lambda: httpx.get(f"{self.url}/o/.well-known/openid-configuration",
                                     timeout=2).status_code == 200,
                   timeout=timeout, what="the OIDC provider answering", errors=(httpx.HTTPError,))

    def userinfo(self, token: str) -> dict | None:
        """Who the access token belongs to, as the provider says (None: not a valid token)."""
        r = httpx.get(f"{self.url}/o/userinfo/", headers={"Authorization": f"Bearer {token}"},
                      timeout=10)
        return r.json() if r.status_code == 200 else None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None:
            self.log.close()
