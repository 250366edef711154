"""Who may use the page: the host check, the password (session cookie or HTTP Basic) and CSRF.

- Without web.password_file the server listens on loopback only (config refuses otherwise) and
  answers only requests whose Host is a loopback name or the listen address: a web page that
  points its own domain at 127.0.0.1 (DNS rebinding) gets 421, not the camera.
- With a password, every request but the login page needs it: the session cookie the login
  page sets (HttpOnly, SameSite=Strict) or HTTP Basic (any user name) for scripts.
- Every POST needs the CSRF token (header X-CSRF-Token; the page has it in a meta tag, a script
  gets it from GET /api/csrf), and a browser's Origin / Sec-Fetch-Site must say same origin.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import secrets
import time
from typing import Any, Optional

from aiohttp import web

from edge.config import LOOPBACK_HOSTS, split_listen

COOKIE = "fc_session"
SESSION_S = 7 * 24 * 3600
MAX_SESSIONS = 64
LOGIN_FAIL_DELAY_S = 1.0
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("GET", "/static/style.css"), ("GET", "/static/icon.svg"),
          ("GET", "/static/login.js")}
CSRF_HEADER = "X-CSRF-Token"


def error(status: int, message: str, **extra: object) -> web.Response:
    return web.json_response({"ok": False, "error": message, **extra}, status=status)


class Guard:
    def __init__(self, listen: str, password: Optional[str]):
        self.password = password
        self.csrf = secrets.token_urlsafe(24)
        self.sessions: dict[str, float] = {}  # token -> expiry (monotonic)
        self._login_lock = asyncio.Lock()
        host = split_listen(listen)[0].strip("[]").lower()
        self.hosts = {h.strip("[]") for h in LOOPBACK_HOSTS} | {host}

    # ---- checks --------------------------------------------------------------------------
    def host_ok(self, request: web.Request) -> bool:
        if self.password is not None:
            return True
        host = (request.host or "").lower()
        if host.startswith("["):
            name = host[1:].partition("]")[0]
        else:
            name = host.rpartition(":")[0] if host.count(":") == 1 else host
        return name in self.hosts

    def authenticated(self, request: web.Request) -> bool:
        if self.password is None:
            return True
        tok = request.cookies.get(COOKIE)
        if tok:
            exp = self.sessions.get(tok)
            if exp is not None and exp > time.monotonic():
                return True
        auth = request.headers.get("Authorization", "")
        if auth[:6].lower() == "basic ":
            try:
                _, _, pw = base64.b64decode(auth[6:], validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            return hmac.compare_digest(pw.encode(), self.password.encode())
        return False

    @staticmethod
    def same_origin(request: web.Request) -> bool:
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            return False
        origin = request.headers.get("Origin")
        return origin is None or origin == f"{request.scheme}://{request.host}"

    def csrf_ok(self, request: web.Request) -> bool:
        return hmac.compare_digest(request.headers.get(CSRF_HEADER, ""), self.csrf)

    # ---- login -----------------------------------------------------------------------------
    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        pw = form.get("password")
        async with self._login_lock:  # guesses one at a time, each wrong one costs a second
            if self.password is None or not isinstance(pw, str) or \
                    not hmac.compare_digest(pw.encode(), self.password.encode()):
                await asyncio.sleep(LOGIN_FAIL_DELAY_S)
                raise web.HTTPSeeOther("/login?wrong=1")
        now = time.monotonic()
        self.sessions = {t: e for t, e in self.sessions.items() if e > now}
        while len(self.sessions) >= MAX_SESSIONS:
            self.sessions.pop(min(self.sessions, key=self.sessions.__getitem__))
        tok = secrets.token_urlsafe(32)
        self.sessions[tok] = now + SESSION_S
        resp = web.HTTPSeeOther("/")
        resp.set_cookie(COOKIE, tok, max_age=SESSION_S, httponly=True, samesite="Strict", path="/")
        raise resp

    # ---- the middleware --------------------------------------------------------------------
    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not self.host_ok(request):
            return error(421, f"host {request.host!r} is not this device's address; open the page "
                              "by 127.0.0.1 or localhost")
        public = (request.method, request.path) in PUBLIC
        if not public and not self.authenticated(request):
            if request.method == "GET" and request.path in ("/", "/digits"):
                raise web.HTTPSeeOther("/login")
            resp = error(401, "password needed: log in on the page, or use HTTP Basic "
                              "(any user name, the password in web.password_file)")
            resp.headers["WWW-Authenticate"] = 'Basic realm="fingercount", charset="UTF-8"'
            return resp
        if request.method not in ("GET", "HEAD"):
            if not self.same_origin(request):
                return error(403, "cross-origin request refused")
            if request.path != "/login" and not self.csrf_ok(request):
                return error(403, f"missing or wrong CSRF token: send the {CSRF_HEADER} header "
                                  "(the page has it; scripts get it from GET /api/csrf)")
        return await handler(request)
