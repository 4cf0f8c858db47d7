"""Signed-in people: their launches are named servers of their own hub user, their own tokens
reach their private repositories, and they see and stop only their own servers.

Who a person is comes from the hub (bindery/web/signin.py asks it with the person's OAuth token);
everything here takes that name as given and keeps nothing in memory: a person's servers are the
hub's list of their named servers, their tokens are the authenticator's auth_state in the hub, so
any bindery process (after a restart, behind replicas) answers the same.

A person's server is named like an anonymous launch's user (``b-<repository hash>-<random>``,
bindery/launches/hub_users.py), so quotas count it under its repository; bindery calls it
``person/server`` (bindery/launches/hub_api.py's ``server_path``). Their home (a volume per person
and repository) is chosen by bindery/launches/homes.py's ``launch_home``, which the pipeline calls.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import SecretStr

from bindery.launches.hub_api import Hub, HubError
from bindery.launches.hub_users import user_name
from bindery.providers.credentials import Credential, person_prefix
from bindery.settings import Settings

log = logging.getLogger(__name__)

# The only server names bindery makes (user_name's shape); anything else is not bindery's to stop.
SERVER_NAME = re.compile(r"b-[0-9a-f]{8}-[0-9a-f]{8}")


def new_server(person: str, repo_key: str) -> str:
    """`person/server`: the name of a new named server of `person` for a launch of `repo_key`."""
    return f"{person}/{user_name(repo_key, secrets.token_hex(4))}"


async def git_credential(settings: Settings, hub: Hub, person: str, repo_url: str
                         ) -> Credential | None:
    """The person's own token for `repo_url` (person_git_credentials: from their authenticator's
    auth_state, read from the hub now), or None. Never logged; it reaches git only as the
    provider's credential (bindery/providers/credentials.py)."""
    found = person_prefix(settings, repo_url)
    if found is None:
        return None
    prefix, key = found
    model = await hub.get_user(person)
    token = ((model or {}).get("auth_state") or {}).get(key)
    if not isinstance(token, str) or not token:
        log.info("no token of the signed-in person for %s in their auth_state", prefix)
        return None
    return prefix, SecretStr(token)


@dataclass(frozen=True)
class PersonServer:
    name: str  # the server's name (without the person)
    url: str  # its path through the hub's proxy
    ready: bool
    pending: str | None  # "spawn", "stop", ... while it changes
    started: str | None
    last_activity: str | None
    repo_url: str  # what it was launched from (the start options bindery gave)
    binder_request: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


async def servers_of(hub: Hub, person: str) -> list[PersonServer]:
    """The person's servers that bindery launched, as the hub lists them now."""
    model = await hub.get_user(person)
    found = []
    for name, server in sorted(((model or {}).get("servers") or {}).items()):
        if not SERVER_NAME.fullmatch(name):
            continue  # the person's own default server, or one they made on the hub
        options = server.get("user_options") or {}
        found.append(PersonServer(
            name=name, url=str(server.get("url", "")), ready=bool(server.get("ready")),
            pending=server.get("pending"), started=server.get("started"),
            last_activity=server.get("last_activity"), repo_url=str(options.get("repo_url", "")),
            binder_request=str(options.get("binder_request", ""))))
    return found


class NotYours(LookupError):
    """No server of this name among the person's: nothing is said about anyone else's."""


async def stop_server(hub: Hub, person: str, server: str) -> None:
    """Stop and remove one of the person's servers. The server is looked up among the person's
    own (the name never reaches the hub otherwise): another person's server of the same name is
    out of reach, and so is everything that is not a bindery server. Raises NotYours."""
    if not SERVER_NAME.fullmatch(server):
        raise NotYours(server)
    if server not in {s.name for s in await servers_of(hub, person)}:
        raise NotYours(server)
    try:
        await hub.stop_server(f"{person}/{server}")
    except HubError as exc:
        log.warning("could not stop %s's server %s: %s", person, server, exc)
        raise
