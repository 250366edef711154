"""The web server: aiohttp on an event loop of its own, in its own thread ("web").

Nothing here runs on the per-frame path: the daemon only calls LiveHub.tap (edge.web.hub).
Commands go through the daemon's one command registry and queue (Daemon.submit_command), as
MQTT's do; blocking work (stats, the model export, the digit classifier) runs in a small
thread pool, never on the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import re
import threading
from pathlib import Path
from typing import Any, Optional

from aiohttp import web

from edge.config import Config, split_listen
from edge.daemon import parse_command
from edge.errors import CommandError, ConfigError, FingercountError
from edge.web.digits import DigitReader
from edge.web.export import export_filename, write_export
from edge.web.hub import LiveHub
from edge.web.security import CSRF_HEADER, Guard, error

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
COMMAND = re.compile(r"[a-z][a-z0-9_]{0,39}")
WRITE_TIMEOUT_S = 10.0  # a client that takes longer to take one write is dropped
KEEPALIVE_S = 15.0
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def _result(status: int, cid: Any, error_text: str) -> web.Response:
    return web.json_response({"id": cid, "ok": False, "data": {}, "error": error_text}, status=status)


class WebServer:
    def __init__(self, daemon: Any, cfg: Config):
        self.daemon = daemon
        self.cfg = cfg
        self.web = cfg.web
        assert self.web.listen is not None
        self.host, self.port = split_listen(self.web.listen)
        self.host = self.host.strip("[]")
        self.guard = Guard(self.web.listen, self.web.password())  # ConfigError: one line, exit
        self.hub = LiveHub(daemon, self.web)
        self.digits = DigitReader(cfg)
        self.loop = asyncio.new_event_loop()
        self.pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="web-work")
        self.loop.set_default_executor(self.pool)
        self._thread: Optional[threading.Thread] = None
        self._runner: Optional[web.AppRunner] = None
        self._export_lock: Optional[asyncio.Lock] = None
        self._tasks: list[asyncio.Task] = []
        self.url = f"http://{'[' + self.host + ']' if ':' in self.host else self.host}:{self.port}/"
        for stale in Path(cfg.state_dir).glob(".model-*.tar.gz"):  # a download cut short by a crash
            with contextlib.suppress(OSError):
                stale.unlink()

    # ---- lifecycle ---------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.web.max_body_bytes,
                              middlewares=[self._headers, self.guard.middleware])
        r = app.router
        r.add_get("/", self.page("index.html"))
        r.add_get("/digits", self.page("digits.html"))
        r.add_get("/login", self.page("login.html"))
        r.add_post("/login", self.guard.login)
        r.add_get("/static/{name}", self.static)
        r.add_get("/video", self.video)
        r.add_get("/events", self.events)
        r.add_get("/api/csrf", self.csrf)
        r.add_get("/api/model", self.model_download)
        r.add_get("/api/models", self.models)
        r.add_post("/api/digits", self.digit)
        r.add_post("/api/{command}", self.command)
        return app

    def start(self) -> WebServer:
        """Bind and serve; FingercountError (one line) if the address cannot be used."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(self._serve())
            except BaseException as e:
                failure.append(e)
                ready.set()
                return
            ready.set()
            self.loop.run_forever()
            with contextlib.suppress(Exception):
                for t in self._tasks:
                    t.cancel()
                if self._runner is not None:
                    self.loop.run_until_complete(self._runner.cleanup())
            self.loop.close()

        self._thread = threading.Thread(target=run, name="web", daemon=True)
        self._thread.start()
        ready.wait(15)
        if failure:
            e = failure[0]
            raise ConfigError(f"web.listen {self.web.listen}: cannot serve the page there "
                              f"({getattr(e, 'strerror', None) or e})")
        self.daemon.add_tap(self.hub.tap)
        self.daemon.add_stats_provider(self.hub.stats)
        self.daemon.add_shutdown_hook(self.stop)
        log.info("web page on %s%s", self.url, " (password required)" if self.guard.password else "")
        return self

    async def _serve(self) -> None:
        self.hub.start(asyncio.get_running_loop())
        self._export_lock = asyncio.Lock()
        self._runner = web.AppRunner(self.app(), handle_signals=False, access_log=None,
                                     shutdown_timeout=0.5, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=64)
        await site.start()
        self._tasks.append(asyncio.get_running_loop().create_task(self.hub.stats_loop()))

    def stop(self) -> None:
        self.hub.stop()
        if self._thread is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(2.0)
        self.pool.shutdown(wait=False, cancel_futures=True)

    # ---- pages -------------------------------------------------------------------------------
    @web.middleware
    async def _headers(self, request: web.Request, handler: Any) -> web.StreamResponse:
        resp = await handler(request)
        if not resp.prepared:
            resp.headers.setdefault("Content-Security-Policy", CSP)
            resp.headers.setdefault("X-Content-Type-Options", "nosniff")
            resp.headers.setdefault("Referrer-Policy", "no-referrer")
            resp.headers.setdefault("X-Frame-Options", "DENY")
        return resp

    def page(self, name: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            html = (STATIC / name).read_text().replace("{{csrf}}", self.guard.csrf)
            html = html.replace("{{device}}", self.cfg.device_id).replace(
                "{{wrong}}", '<p class="bad">Wrong password.</p>' if "wrong" in request.query else "")
            return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})
        return handler

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
        path = STATIC / name
        if "/" in name or name.startswith(".") or path.suffix not in types or not path.is_file():
            return error(404, "no such file")
        return web.Response(body=path.read_bytes(), content_type=types[path.suffix],
                            headers={"Cache-Control": "no-cache"})

    async def csrf(self, request: web.Request) -> web.Response:
        return web.json_response({"csrf": self.guard.csrf, "header": CSRF_HEADER})

    # ---- live ----------------------------------------------------------------------------------
    async def video(self, request: web.Request) -> web.StreamResponse:
        if self.hub.viewers >= self.web.max_clients:
            return error(503, f"too many live views ({self.web.max_clients}); close one")
        resp = web.StreamResponse(headers={
            "Content-Type": "multipart/x-mixed-replace; boundary=frame",
            "Cache-Control": "no-store", "Pragma": "no-cache"})
        await resp.prepare(request)
        self.hub.add_viewer()
        try:
            sent = self.hub.jpeg_no  # only fresh frames: an old one would look live
            while True:
                no, jpeg = await self.hub.next_jpeg(sent, KEEPALIVE_S)
                if jpeg is None or no == sent:
                    continue
                sent = no
                part = (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                        + jpeg + b"\r\n")
                await asyncio.wait_for(resp.write(part), WRITE_TIMEOUT_S)
        except (ConnectionError, asyncio.TimeoutError):
            pass
        finally:
            self.hub.remove_viewer()
        return resp

    async def events(self, request: web.Request) -> web.StreamResponse:
        if len(self.hub.subscribers) >= self.web.max_clients:
            return error(503, f"too many pages listening ({self.web.max_clients}); close one")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        sub = self.hub.subscribe()
        try:
            await resp.write(b"retry: 1000\n\n")
            while True:
                try:
                    msg = await asyncio.wait_for(sub.queue.get(), KEEPALIVE_S)
                except asyncio.TimeoutError:
                    msg = ": keepalive\n\n"
                await asyncio.wait_for(resp.write(msg.encode()), WRITE_TIMEOUT_S)
        except (ConnectionError, asyncio.TimeoutError):
            pass
        finally:
            self.hub.unsubscribe(sub)
        return resp

    # ---- commands ------------------------------------------------------------------------------
    async def _body(self, request: web.Request, cap: int) -> bytes:
        if request.content_length is not None and request.content_length > cap:
            raise web.HTTPRequestEntityTooLarge(max_size=cap, actual_size=request.content_length)
        return await request.read()  # client_max_size refuses a longer chunked body

    async def command(self, request: web.Request) -> web.Response:
        name = request.match_info["command"]
        known = self.daemon.command_names()
        if not COMMAND.fullmatch(name) or name not in known:
            return _result(404, None, f"unknown command {name[:40]!r} (known: {', '.join(known)})")
        cap = self.cfg.mqtt.max_command_bytes
        try:
            body = await self._body(request, self.web.max_body_bytes)
        except web.HTTPRequestEntityTooLarge:
            return _result(413, None, f"request too large (web.max_body_bytes is {self.web.max_body_bytes})")
        if len(body) > cap:
            return _result(413, None, f"command too large: {len(body)} bytes (mqtt.max_command_bytes is {cap})")
        try:
            parsed = parse_command(body)
        except CommandError as e:
            return _result(400, None, str(e))
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()

        def settle(res: dict) -> None:
            if not fut.done():  # a client gone meanwhile cancelled it
                fut.set_result(res)

        def reply(res: dict) -> None:  # in the commands thread
            loop.call_soon_threadsafe(settle, res)

        self.daemon.submit_command(name, body, len(body), reply)
        timeout = self.cfg.retrain.max_seconds + 120
        try:
            res = await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            return _result(504, parsed.get("id"), f"no answer within {timeout:.0f} s; it may still finish")
        status = 200 if res["ok"] else 503 if str(res["error"]).startswith("busy") else 422
        return web.json_response(res, status=status, dumps=_json)

    async def models(self, request: web.Request) -> web.Response:
        from edge.runtime.package import list_packages

        pkgs = await asyncio.get_running_loop().run_in_executor(
            None, list_packages, self.cfg.resolved_models_dir())
        clf = self.daemon.classifier
        return web.json_response({
            "running": {"name": self.cfg.model.name, "package": clf.package.name,
                        "precision": clf.precision, "model": clf.model_id,
                        "retrainable": bool(clf.package.retrainable)},
            "models": [{"name": p.root.name, "version": p.version, "task": p.task,
                        "precisions": [q for q in ("int8", "fp16", "fp32") if p.has(q)],
                        "retrainable": bool(p.retrainable)} for p in pkgs]})

    async def model_download(self, request: web.Request) -> web.StreamResponse:
        assert self._export_lock is not None
        if self._export_lock.locked():
            return error(503, "a download is being prepared; try again in a moment")
        clf = self.daemon.classifier
        loop = asyncio.get_running_loop()
        async with self._export_lock:
            try:
                path = await loop.run_in_executor(None, write_export, clf, self.cfg.device_id,
                                                  Path(self.cfg.state_dir))
            except (OSError, FingercountError) as e:
                return error(500, f"cannot export the model: {e}")
            try:
                resp = web.StreamResponse(headers={
                    "Content-Type": "application/gzip" if path.suffix == ".gz" else "application/octet-stream",
                    "Content-Disposition": f'attachment; filename="{export_filename(clf, self.cfg.device_id)}"',
                    "Content-Length": str(path.stat().st_size), "Cache-Control": "no-store"})
                await resp.prepare(request)
                with open(path, "rb") as f:
                    while True:
                        block = await loop.run_in_executor(None, f.read, 1 << 20)
                        if not block:
                            break
                        await asyncio.wait_for(resp.write(block), WRITE_TIMEOUT_S)
                await resp.write_eof()
                return resp
            finally:
                path.unlink(missing_ok=True)

    async def digit(self, request: web.Request) -> web.Response:
        try:
            body = await self._body(request, self.web.max_body_bytes)
        except web.HTTPRequestEntityTooLarge:
            return error(413, f"image too large (web.max_body_bytes is {self.web.max_body_bytes})")
        precision = request.query.get("precision", "int8")
        try:
            out = await asyncio.get_running_loop().run_in_executor(None, self.digits.read, body, precision)
        except ValueError as e:
            return error(400, str(e))
        except FingercountError as e:
            return error(503, str(e))
        return web.json_response({"ok": True, **out}, dumps=_json)


def _json(obj: Any) -> str:
    return json.dumps(obj, allow_nan=False, default=str)


def start_web(daemon: Any, cfg: Config) -> Optional[WebServer]:
    """The web page when web.listen is set (None otherwise)."""
    if cfg.web.listen is None:
        return None
    return WebServer(daemon, cfg).start()
