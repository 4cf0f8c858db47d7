"""Signed build tokens: proof that a launch was asked for from one of bindery's own launch pages.

A token is ``<payload>.<signature>``, both base64url; the payload is JSON ``{"spec", "origin", "exp"}``
and the signature an HMAC-SHA256 over the payload with ``settings.security.build_token_secret``. It is bound to
the repository (``provider/spec``, url-decoded so that ``%2F`` and ``/`` spellings agree), to the origin
of the page that embedded it, and it expires after ``build_token_expiry_seconds``. The stdlib is enough
here; a JWT library would add algorithm negotiation we do not want.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import urlsplit

from bindery.repoid import canonical_spec


class BadToken(Exception):
    """The token does not allow this launch; the message says why, for the person who has it."""


def origin_of(url: str) -> str:
    """'scheme://host[:port]' of a URL or Origin header value, lower case; '' if there is none."""
    if not url or url == "null":
        return ""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}".lower()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest())


def issue(secret: bytes, provider: str, spec: str, origin: str, expiry: float,
          now: float | None = None) -> str:
    now = time.time() if now is None else now
    claims = {"spec": canonical_spec(provider, spec), "origin": origin, "exp": int(now + expiry)}
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{payload}.{_sign(secret, payload)}"


def verify(secret: bytes, token: str, provider: str, spec: str, origin: str,
           now: float | None = None) -> None:
    """Raise BadToken unless the token is genuine, unexpired and made for this spec and origin."""
    now = time.time() if now is None else now
    if not token.isascii():  # base64url only: anything else was never issued (and HMAC needs bytes)
        raise BadToken("The build token is malformed. Open the launch page again.")
    payload, _, signature = token.partition(".")
    if not payload or not signature or not hmac.compare_digest(_sign(secret, payload), signature):
        raise BadToken("The build token is not valid. Open the launch page again to get a new one.")
    try:
        claims = json.loads(_unb64(payload))
        exp, bound_spec, bound_origin = float(claims["exp"]), claims["spec"], claims["origin"]
    except (ValueError, KeyError, TypeError):
        raise BadToken("The build token is malformed. Open the launch page again.") from None
    if now > exp:
        raise BadToken("The build token has expired. Reload the launch page to get a new one.")
    if bound_spec != canonical_spec(provider, spec):
        raise BadToken("The build token was issued for a different repository.")
    if bound_origin != origin:
        raise BadToken("The build token was issued for a page on a different site.")
