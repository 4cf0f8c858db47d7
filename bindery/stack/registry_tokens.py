"""The embedded registry's token issuer: anyone may pull, only the pusher credential may push.

The stack's registry (bindery/stack/registry_server.py) runs with Docker registry token auth: a
request without a valid token answers 401 naming this issuer, and clients (podman's engines,
bindery's registry client) ask it for a token for the scope they need. The rule:

- no credential: ``pull`` on repositories. Run and build engines pull without holding anything
  that could write;
- the pusher credential (user ``pusher``, password in ``<data_dir>/secrets/registry-pusher``):
  every action on repositories and the catalog. Only bindery and its builds' pusher (repo2docker
  talking to the build engine) hold it; repository code (build steps, servers) never does;
- a wrong credential: 401.

Tokens are ES256 JWTs carrying their signing certificate (``x5c``), which the registry trusts
(``rootcertbundle``); key and certificate are made once per data folder (mode 600), tokens live
TOKEN_SECONDS. Runs as a stack process: ``python -m bindery.stack.registry_tokens CONFIG.json``.
"""

from __future__ import annotations

import base64
import datetime
import hmac
import json
import os
import secrets
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

ISSUER = "bindery"
SERVICE = "bindery-registry"
TOKEN_SECONDS = 300
MAX_SCOPES = 16  # scopes honoured in one token request


def make_key(key_file: Path, cert_file: Path) -> None:
    """The signing key (mode 600) and its self-signed certificate, unless both exist."""
    if key_file.is_file() and cert_file.is_file():
        return
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bindery registry tokens")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def granted(scopes: list[str], pusher: bool) -> list[dict]:
    """The access claims for the asked scopes (``type:name:actions``): pull for anyone, anything
    for the pusher."""
    access = []
    for scope in " ".join(scopes).split()[:MAX_SCOPES]:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        wanted = {a for a in actions.split(",") if a}
        allowed = wanted if pusher else wanted & ({"pull"} if kind == "repository" else set())
        if kind in ("repository", "registry") and name and allowed:
            access.append({"type": kind, "name": name, "actions": sorted(allowed)})
    return access


class Issuer:
    def __init__(self, key_file: Path, cert_file: Path, password: str) -> None:
        self.key = serialization.load_pem_private_key(key_file.read_bytes(), None)
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        self.x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self.password = password

    def pusher(self, authorization: str) -> bool | None:
        """True for the pusher credential, False for none, None for a wrong one."""
        if not authorization:
            return False
        scheme, _, encoded = authorization.partition(" ")
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        ok = scheme.lower() == "basic" and user == "pusher" and \
            hmac.compare_digest(password.encode(), self.password.encode())
        return True if ok else None

    def token(self, subject: str, access: list[dict]) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [self.x5c]}
        claims = {"iss": ISSUER, "sub": subject, "aud": SERVICE, "exp": now + TOKEN_SECONDS,
                  "nbf": now - 10, "iat": now, "jti": secrets.token_hex(12), "access": access}
        signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def handler(issuer: Issuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 10  # seconds a silent connection is kept

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            url = urlparse(self.path)
            if url.path != "/token":
                return self._answer(404, {"error": "not found"})
            pusher = issuer.pusher(self.headers.get("Authorization", ""))
            if pusher is None:
                return self._answer(401, {"error": "wrong credential"})
            access = granted(parse_qs(url.query).get("scope", []), pusher)
            token = issuer.token("pusher" if pusher else "", access)
            self._answer(200, {"token": token, "access_token": token,
                               "expires_in": TOKEN_SECONDS})

        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # no access log: token requests carry credentials in headers only, but quiet

    return Handler


def main(argv: list[str]) -> None:
    config = json.loads(Path(argv[0]).read_text())
    issuer = Issuer(Path(config["key"]), Path(config["cert"]),
                    Path(config["password_file"]).read_text().strip())
    server = ThreadingHTTPServer(("127.0.0.1", int(config["port"])), handler(issuer))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
