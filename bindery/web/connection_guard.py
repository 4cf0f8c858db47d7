"""The front door's connection limits, below HTTP: idle and half-sent connections are shed, and one
client holds a bounded number of connections.

uvicorn (its h11 protocol) closes a kept-alive connection after ``timeout_keep_alive``, but a
connection that never sends a request, or sends half of one, stays open for ever: enough of them
exhaust the process's file descriptors and nobody else gets in. :func:`guarded_protocol` makes
the protocol class the service runs with:

- a request's head (request line and headers) must arrive within ``header_timeout`` seconds of the
  connection opening, or of the previous response ending; otherwise the connection is closed. A
  request being answered (an event stream that runs for an hour) is never cut by it.
- one client (bindery/web/client_keys.py: an address, an IPv6 /64) may hold at most
  ``per_client`` connections; the next is answered 429 and closed. Trusted proxies (the load
  balancer, whose connections carry many clients) are not capped here: the balancer's own
  limits apply before it.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections import Counter
from collections.abc import Sequence

from uvicorn.protocols.http.h11_impl import H11Protocol

from bindery.outbound import networks
from bindery.web.client_keys import client_key

TOO_MANY = (b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"connection: close\r\nretry-after: 5\r\ncontent-length: %d\r\n\r\n%s")
MESSAGE = (b"Too many connections from your address at once; close some (other tabs or "
           b"clients) and try again.\n")


class GuardedProtocol(H11Protocol):
    """uvicorn's h11 protocol with a header timeout and a per-client connection cap (the class
    attributes are set by guarded_protocol; `open_by_client` is shared by one server's
    connections)."""

    header_timeout: float = 10.0
    per_client: int = 0  # 0: no cap
    exempt: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] = ()
    open_by_client: Counter[str]

    _key: str | None = None
    _header_timer: asyncio.TimerHandle | None = None
    _awaiting: object = None  # the request cycle current when the header timer was armed

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        host = self.client[0] if self.client else ""
        if self.per_client and not self._exempt(host):
            self._key = client_key(host)
            self.open_by_client[self._key] += 1
            if self.open_by_client[self._key] > self.per_client:
                transport.write(TOO_MANY % (len(MESSAGE), MESSAGE))
                transport.close()
                return
        self._arm()

    def _exempt(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        return any(address in net for net in self.exempt)

    def _arm(self) -> None:
        """Start the time a request head has to arrive in."""
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._awaiting = self.cycle
        self._header_timer = self.loop.call_later(self.header_timeout, self._header_timed_out)

    def _header_timed_out(self) -> None:
        # A request that arrived since has its own cycle: it is being answered, leave it.
        if self.cycle is self._awaiting and not self.transport.is_closing():
            self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's head has the same time to arrive

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        if self._key is not None:
            self.open_by_client[self._key] -= 1
            if self.open_by_client[self._key] <= 0:
                del self.open_by_client[self._key]
            self._key = None
        super().connection_lost(exc)


def guarded_protocol(header_timeout: float, per_client: int,
                     exempt: Sequence[str] = ()) -> type[GuardedProtocol]:
    """The protocol class for one server (uvicorn.Config(http=...))."""
    return type("GuardedProtocol", (GuardedProtocol,), {
        "header_timeout": max(0.1, header_timeout), "per_client": max(0, per_client),
        "exempt": tuple(networks(exempt)), "open_by_client": Counter()})
