"""One name per repository: the normal form that bans, allow lists, quotas and image names all use.

People can spell one repository many ways: ``gh/org/x``, ``gh/ORG/X``, ``git/https://GitHub.com/org/x.git``,
``git/https%3A%2F%2Fgithub.com%2Forg%2Fx/``. If a ban matched only one spelling it could be dodged by
another; if quotas and images were keyed by the spelling, one repository would get several quotas and
be built several times. The normal form of a repository URL:

- scheme and host lower case, default ports dropped, ``http`` ≡ ``https`` (the same repository);
- URL escapes undone, ``//`` collapsed, a trailing ``/`` and ``.git`` removed;
- the path lower case on hosts that treat names case-insensitively: the configured GitHub, GitLab
  and gist servers (and github.com, gitlab.com).

A repository on the configured GitHub or GitLab server also has its provider names (``gh/org/x``,
``gl/group/project``), so a rule written on one provider matches the same repository named by another.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from bindery.settings import Settings

DEFAULT_PORTS = {"http": 80, "https": 443, "git": 9418}
KNOWN_CASE_INSENSITIVE = ("github.com", "gitlab.com", "gist.github.com")


def _unescape(text: str, rounds: int = 3) -> str:
    """Undo URL escapes, also escapes of escapes (bounded)."""
    for _ in range(rounds):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def _host_port(url: str) -> tuple[str, str, str]:
    """(scheme, host[:port] without a default port, path) of a URL, scheme and host lower case."""
    parts = urlsplit(_unescape(url.strip()))
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    if scheme == "http":
        scheme = "https"  # one repository, whichever of the two a person typed
    return scheme, host, parts.path


def case_insensitive_hosts(settings: Settings) -> set[str]:
    hosts = set(KNOWN_CASE_INSENSITIVE)
    for url in (settings.providers.github_url, settings.providers.gitlab_url, settings.providers.gist_url):
        hosts.add(_host_port(url)[1])
    return hosts


def normal_url(url: str, insensitive: set[str] | frozenset[str] = frozenset()) -> str:
    scheme, host, path = _host_port(url)
    while "//" in path:
        path = path.replace("//", "/")
    path = path.rstrip("/").removesuffix(".git").rstrip("/")
    if host in insensitive:
        path = path.lower()
    return f"{scheme}://{host}{path}"


@dataclass(frozen=True)
class RepoIdentity:
    url: str  # the normal form: keys quotas and image names
    names: tuple[str, ...]  # '<provider>/<name>' spellings (no ref) that rules are matched against
    slug: str | None  # readable image-name part when the repository has a provider name


def identify(settings: Settings, repo_url: str) -> RepoIdentity:
    insensitive = case_insensitive_hosts(settings)
    url = normal_url(repo_url, insensitive)
    names = [f"git/{url}"]
    slug = None
    for provider, base_setting, parts in (("gh", settings.providers.github_url, 2), ("gl", settings.providers.gitlab_url, 0)):
        base = normal_url(base_setting, insensitive) + "/"
        if not url.startswith(base):
            continue
        rest = url[len(base):]
        pieces = rest.split("/")
        if (parts and len(pieces) != parts) or len(pieces) < 2 or not all(pieces):
            continue
        names.append(f"{provider}/{rest}")
        slug = slug or f"{provider}-{rest}"
    return RepoIdentity(url, tuple(names), slug)


def rule_targets(settings: Settings, raw: str, repo_url: str | None, ref: str | None) -> list[str]:
    """What banned_specs/allowed_specs/quota_tiers patterns are matched against (case-insensitively):
    the spec as sent (url-decoded) and, when it parses, every name of its repository with the ref."""
    targets = [_unescape(raw)]
    if repo_url is not None and ref is not None:
        targets += [f"{name}/{ref}" for name in identify(settings, repo_url).names]
    return targets


def canonical_spec(provider: str, spec: str) -> str:
    """'<provider>/<spec>' as people write it: url-decoded, no outer slashes."""
    return unquote(f"{provider}/{spec.strip('/')}")
