"""`mqtt.host: embedded`: an amqtt broker in-process on loopback (demo and single-box use).

amqtt is optional (the `demo` extra); it runs in its own thread with its own event loop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any, Optional

from edge.errors import FingercountError

log = logging.getLogger(__name__)


class EmbeddedBroker:
    def __init__(self, host: str = "127.0.0.1", port: int = 1883):
        self.host, self.port = host, port
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._broker: Any = None
        self._thread: Optional[threading.Thread] = None
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None

    def start(self, timeout: float = 10.0) -> EmbeddedBroker:
        try:
            import amqtt.broker  # noqa: F401
        except ImportError as e:
            raise FingercountError("mqtt.host 'embedded' needs amqtt: pip install 'fingercount[demo]' "
                                   "(or pip install amqtt)") from e
        with socket.socket() as s:  # fail with a clear line if the port is taken
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((self.host, self.port))
            except OSError as e:
                raise FingercountError(f"embedded broker: cannot listen on {self.host}:{self.port} "
                                       f"({e.strerror}); is another broker running? use --mqtt localhost") from e
        # amqtt logs every connection at INFO; keep the daemon's log about the daemon.
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._thread = threading.Thread(target=self._run, name="embedded-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            raise FingercountError(f"embedded broker did not start: {self._error or 'timeout'}")
        return self

    def _run(self) -> None:
        from amqtt.broker import Broker

        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }

        async def main() -> None:
            self._broker = Broker(config, loop=loop)
            await self._broker.start()

        try:
            loop.run_until_complete(main())
        except BaseException as e:  # startup failure is reported to start()
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.close()

    def stop(self, timeout: float = 2.0) -> None:
        loop, broker = self._loop, self._broker
        if loop is None or broker is None or not loop.is_running():
            return
        fut = asyncio.run_coroutine_threadsafe(broker.shutdown(), loop)
        try:
            fut.result(timeout)
        except Exception:
            log.debug("embedded broker shutdown", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)
