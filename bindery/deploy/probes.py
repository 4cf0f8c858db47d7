"""Probes of a running instance through its public HTTP interface, each raising a classified CheckFailed.

Why only the public interface: a deploy is green only when what people use works — the event stream a browser
follows to ``ready``, the server URL opened with the token (200, never 403), ``/health`` and ``/versions``. Each
probe is one function so `bindery deploy` and `bindery canary` share them and they can be tested against a fake
HTTP transport.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from bindery import event_stream
from bindery.deploy.classify import CheckFailed, classify_health, classify_status


def health(client: httpx.Client, base: str, *, starting: bool = False) -> dict[str, Any]:
    """GET /health: ok → the payload; broken parts named → real (transient while ``starting``)."""
    r = client.get(f"{base.rstrip('/')}/health")
    try:
        payload = r.json()
    except ValueError:
        payload = None
    failed = classify_health(r.status_code, payload, starting=starting)
    if failed:
        raise failed
    return {"health": payload}


def versions(client: httpx.Client, base: str, expected: str) -> dict[str, Any]:
    """GET /versions must report exactly ``expected`` (wrong version is real: the wrong code is serving)."""
    r = client.get(f"{base.rstrip('/')}/versions")
    failed = classify_status(r.status_code, "/versions", body=r.text)
    if failed:
        raise failed
    data = r.json()
    got = data.get("bindery")
    if got != expected:
        raise CheckFailed.real(f"/versions reports {got!r}, expected {expected!r}", versions=data)
    return {"version": got}


def launch(client: httpx.Client, base: str, spec: str, timeout: float) -> dict[str, Any]:
    """Follow ``/build/<spec>`` to ``ready`` (→ the ready event) or ``failed`` (real, with the event).

    Read by the one event-stream reader: a stream that breaks is resumed with Last-Event-ID (the same launch), as a
    browser would; one that cannot be resumed is transient (the check tries a new launch within its bound)."""
    url = f"{base.rstrip('/')}/build/{spec.lstrip('/')}"
    phases: list[str] = []
    stream = event_stream.follow_sync(client, url, done=_launch_over, until=time.monotonic() + timeout)
    try:
        for message in stream:
            try:
                event = json.loads(message.data)
            except ValueError:
                continue
            phase = str(event.get("phase", "unknown"))
            if not phases or phases[-1] != phase:
                phases.append(phase)
            if phase == "ready":
                return {"ready": event, "phases": phases}
            if phase == "failed":
                reason = f"launch failed: {event.get('message', '')}".strip()
                if event.get("status_code") == 503:
                    # The instance itself says a part it needs (the hub) did not answer, after its own retries:
                    # a part restarting, not a broken version. Retried within the bound; if it persists, red.
                    raise CheckFailed.transient(reason, event=event, phases=phases)
                raise CheckFailed.real(reason, event=event, phases=phases)
    except event_stream.StreamRefused as exc:
        raise classify_status(exc.status_code, f"GET {url}", body=exc.body) or CheckFailed.real(
            f"GET {url} answered {exc.status_code}") from None
    except event_stream.StreamTimeout:
        raise CheckFailed.transient(f"launch not ready within {timeout:g} s", phases=phases) from None
    except event_stream.StreamBroken as exc:
        raise CheckFailed.transient(f"event stream ended before ready or failed ({exc})", phases=phases) from None
    raise CheckFailed.transient("event stream ended before ready or failed", phases=phases)


def _launch_over(message: event_stream.Message) -> bool:
    try:
        return json.loads(message.data).get("phase") in ("ready", "failed")
    except (ValueError, AttributeError):
        return False


def open_server(client: httpx.Client, ready: dict[str, Any]) -> dict[str, Any]:
    """GET the launched server's URL with its token, as a person's browser would: 200, never 403."""
    url, token = ready.get("url"), ready.get("token")
    if not url or not token:
        raise CheckFailed.real("ready event has no url or token", ready=ready)
    r = client.get(url, params={"token": token}, follow_redirects=True)
    final = str(r.url).split("?")[0]
    hops = [f"{h.status_code} {str(h.url).split('?')[0]}" for h in r.history]
    if r.status_code != 200:
        # `ready` promised a running server: whatever the browser gets instead is the failure people see (a 503
        # "server not running" from the hub is not a part still starting, it is a launcher that said ready too
        # early). Only network errors on the way (the proxy restarting) are transient; they raise before here.
        failed = classify_status(r.status_code, f"GET {url}?token=…", body=r.text[:300])
        if failed is None or r.status_code >= 500:
            failed = CheckFailed.real(f"GET {url}?token=… answered {r.status_code} after `ready`",
                                      status=r.status_code, body=r.text[:300])
        failed.evidence.update(final_url=final, redirects=hops)
        raise failed
    if not urlsplit(final).path.startswith(urlsplit(url).path):
        # 200, but from the hub (spawn-pending or login page), not from the server: the browser never got there.
        raise CheckFailed.real(f"GET {url}?token=… landed on {urlsplit(final).path} (a hub page), not on the "
                               "server: `ready` came before the server was up", final_url=final, redirects=hops)
    return {"status": r.status_code, "final_url": final, "redirects": hops}


_USER = re.compile(r"/user/([^/]+)/")


def stop_server(client: httpx.Client, ready: dict[str, Any]) -> dict[str, Any]:
    """Shut the canary's server down with the launch token, through the server's own API.

    Why not the hub's DELETE /users/<name>/server: a person's token opens their own server and nothing
    else (it holds no hub scope), so the hub refuses it; the server itself obeys its owner's shutdown,
    and the hub then sees the server gone."""
    url, token = str(ready.get("url", "")), ready.get("token")
    if not _USER.search(urlsplit(url).path) or not token:
        raise CheckFailed.real("cannot tell the user of the ready url", url=url)
    api = f"{url.rstrip('/')}/api/shutdown"
    r = client.post(api, headers={"Authorization": f"token {token}"})
    if r.status_code in (200, 202, 204, 404):  # 404: already gone (culled) is fine
        return {"status": r.status_code}
    raise classify_status(r.status_code, f"POST {api}", body=r.text) or CheckFailed.real(
        f"POST {api} answered {r.status_code}")
