"""The front door: which repositories may launch, and abuse controls on who may start launches.

Each field is also read from ``BINDERY_<FIELD>`` (upper case); see bindery/settings/__init__.py.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class SecuritySettings(BaseModel):
    banned_specs: list[str] = Field(
        default_factory=list,
        description="Regular expressions (re.search, ignoring case) matched against '<provider>/<spec>' "
        "(spec url-decoded, e.g. 'gh/org/repo/main') and against every other spelling of the same "
        "repository ('git/https://github.com/org/repo/main', no '.git' or trailing '/'); a match "
        "refuses the launch with banned_message.",
    )
    banned_message: str = Field(
        "This repository cannot be launched here: it is on this service's list of disabled "
        "repositories. Contact the service's operators if you think that is a mistake.",
        description="Message shown when a launch matches banned_specs.",
    )
    allowed_specs: list[str] = Field(
        default_factory=list,
        description="Regular expressions matched like banned_specs (ignoring case, every spelling of "
        "the repository). Empty: every repository may launch; otherwise only those matching one of "
        "them.",
    )
    rate_limit_per_minute: int = Field(
        0,
        description="Launches one client address may start per minute (a token bucket that refills "
        "evenly). 0: no limit.",
    )
    blocked_networks: list[str] = Field(
        default_factory=list,
        description="Client networks (CIDR, e.g. '203.0.113.0/24' or '2001:db8::/32') that may not "
        "launch anything.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Networks (CIDR) of reverse proxies whose X-Forwarded-For header is believed when "
        "finding a client's address. Empty: the header is ignored and the peer address is used.",
    )
    max_open_launches_per_client: int = Field(
        50, description="Launch sessions one client address may have open (not yet ready or failed) "
        "at once; beyond it a launch is refused with an in-band 429. A classroom behind one NAT "
        "address launches together: leave room for it. 0: no limit.")
    max_open_launches: int = Field(
        1000, description="Launch sessions open at once in total; beyond it a launch is refused with "
        "an in-band 429. 0: no limit.")
    header_timeout_seconds: float = Field(
        10.0, description="Seconds a connection to the web service has to send a request's head "
        "(request line and headers) after it opens or after the previous response; a silent or "
        "half-sent connection is closed then. A request being answered is never cut by it.")
    idle_timeout_seconds: int = Field(
        5, description="Seconds a kept-alive connection may stay idle between requests before "
        "the web service closes it.")
    max_connections_per_client: int = Field(
        64, description="Connections one client (address; an IPv6 client is its /64) may hold to "
        "the web service at once; the next is answered 429 and closed. Peers in trusted_proxies "
        "are not capped (their connections carry many clients). 0: no cap.")
    build_token_secret: SecretStr | None = Field(
        None,
        description="Secret that signs build tokens. Set: every launch needs a valid build_token "
        "(launch pages embed one, bound to the repository and the page's origin). Empty: no tokens.",
    )
    build_token_expiry_seconds: int = Field(
        300, description="Seconds a build token stays valid after the launch page issued it."
    )
