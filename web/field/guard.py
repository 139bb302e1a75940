"""The field app's guards: loopback only, one session per unlock, CSRF on every form.

The app runs on the tablet itself, but a page of any other local origin (a
site in the tablet's browser, another port on 127.0.0.1) could still send it
requests. So: the Host header must name loopback (no DNS rebinding); a
session cookie, made at unlock and HttpOnly, must come with every request
but the unlock page's; every state-changing request must carry a CSRF token
bound to the session by an HMAC of a secret that never leaves the process,
and, when the browser says where it came from, the Origin must be ours.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from typing import Optional

from starlette.requests import Request

SESSION_COOKIE = "wangge_field"
PRE_COOKIE = "wangge_field_pre"  # before unlock: binds the unlock form's token to this browser
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; the app refuses to listen anywhere else."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_ok(request: Request) -> bool:
    """The Host header names a loopback address (a rebound DNS name does not)."""
    host = request.headers.get("host", "")
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return is_loopback(name)


def origin_ok(request: Request) -> bool:
    """A cross-origin POST says so in Origin (or Referer); absent both, the CSRF token decides alone."""
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if not claimed or claimed == "null":
        return not claimed
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    return claimed == own or claimed.startswith(own + "/")


class Guard:
    """Sessions and CSRF tokens of one running app (all in memory: a restart asks to unlock again)."""

    def __init__(self) -> None:
        self._secret = secrets.token_bytes(32)
        self.sessions: set[str] = set()
        self.logins: set[str] = set()  # one-time links printed by `wangge field` when unlocked at start

    def new_session(self) -> str:
        session = secrets.token_urlsafe(32)
        self.sessions.add(session)
        return session

    def new_login(self) -> str:
        token = secrets.token_urlsafe(24)
        self.logins.add(token)
        return token

    def use_login(self, token: str) -> Optional[str]:
        """A session for a one-time login token, or None (each token works once)."""
        if token in self.logins:
            self.logins.discard(token)
            return self.new_session()
        return None

    def end_all(self) -> None:
        self.sessions.clear()
        self.logins.clear()

    def session_of(self, request: Request) -> Optional[str]:
        session = request.cookies.get(SESSION_COOKIE)
        return session if session in self.sessions else None

    def token(self, binding: str) -> str:
        return hmac.new(self._secret, binding.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, request: Request, binding: Optional[str], sent: Optional[str]) -> bool:
        if not binding or not sent:
            return False
        return hmac.compare_digest(self.token(binding), sent) and origin_ok(request)
