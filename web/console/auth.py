"""Who is asking: the console's sessions, CSRF tokens and the account behind each request.

Sessions are Starlette's signed cookies (itsdangerous), HttpOnly and
SameSite=strict, holding only the account's id, the CSRF token and the
language. The signing secret is kept in the store (``console.secret``), so
sessions survive a restart and every server process of one master shares it.
Every POST must carry the session's CSRF token (a form field ``csrf`` or the
``X-CSRF-Token`` header htmx sends); one without it is refused before
anything is read from the form's other fields.
"""
from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timezone
from typing import Optional

from sqlalchemy.engine import Connection
from starlette.requests import Request

from wangge.app import accounts
from wangge.app.accounts import Account
from wangge.core.store import Store, get_meta, set_meta

SECRET_KEY = "console.secret"
#: A console session lasts a working day.
SESSION_SECONDS = 10 * 60 * 60


def session_secret(store: Store) -> str:
    """The store's session-signing secret, made on first use."""
    with store.read() as conn:
        found = get_meta(conn, SECRET_KEY)
    if found:
        return found
    with store.write(actor="console") as rec:
        found = get_meta(rec.conn, SECRET_KEY)
        if not found:
            found = secrets.token_urlsafe(48)
            set_meta(rec.conn, SECRET_KEY, found)
    return found


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_ok(request: Request, sent: Optional[str]) -> bool:
    expected = request.session.get("csrf")
    return bool(expected and sent and hmac.compare_digest(str(expected), str(sent)))


def current(store: Store, request: Request) -> Optional[Account]:
    """The account of this session, if it is still usable (not disabled or locked since)."""
    if not isinstance(request.session.get("account"), int):
        return None
    with store.read() as conn:
        return current_in(conn, request)


def current_in(conn: Connection, request: Request) -> Optional[Account]:
    """`current`, read through the caller's connection (the page's own transaction)."""
    account_id = request.session.get("account")
    if not isinstance(account_id, int):
        return None
    found = accounts.usable(conn, account_id, datetime.now(timezone.utc))
    if found is None:
        request.session.pop("account", None)
    return found


def start(request: Request, account: Account) -> None:
    """Begin a logged-in session: a fresh CSRF token, so one read before login is useless after."""
    lang = request.session.get("lang")
    request.session.clear()
    request.session.update({"account": account.id, "csrf": secrets.token_urlsafe(32)})
    if lang:
        request.session["lang"] = lang
