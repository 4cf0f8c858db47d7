"""An orderly stop for the web service: on SIGTERM, hand launches over before exiting.

uvicorn's own SIGTERM handling stops accepting connections and waits for open ones, which for
event streams means until they end or its graceful timeout cuts them, and every launch in flight
is cancelled as failed. :class:`DrainingServer` first calls the app's ``drain`` (see
bindery/web/app.py: new requests and /health answer 503, launches are released to the other
processes, open streams end so clients reconnect), bounded by ``drain_seconds``, and only then
lets uvicorn shut down. A second SIGTERM (or SIGINT) exits at once, as uvicorn does.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from types import FrameType

import uvicorn

from bindery.state import unavailable_errors

log = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain: Callable[[], Awaitable[None] | None],
                 drain_seconds: float) -> None:
        super().__init__(config)
        self.drain = drain  # the app's hand-over; None until its lifespan has started
        self.drain_seconds = drain_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining: asyncio.Future | None = None

    async def serve(self, sockets=None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM or self._draining is not None or self._loop is None:
            super().handle_exit(sig, frame)
            return
        self._loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        if self._draining is None:
            self._draining = asyncio.ensure_future(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        try:
            pending = self.drain()
            if pending is not None:
                await asyncio.wait_for(pending, self.drain_seconds)
            # Open streams notice the drain within a second and end; give them that second.
            await asyncio.sleep(1.0)
        except unavailable_errors() as exc:  # the store is down or damaged: /health says so
            log.error("handing launches over on SIGTERM failed: %s: %s", type(exc).__name__, exc)
        except Exception:  # whatever happened, the process must still stop
            log.exception("handing launches over on SIGTERM failed")
        self.should_exit = True
