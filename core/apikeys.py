"""API keys of the systems that integrate with the office (a city hotline forwarding requests).

A key is shown once, when it is made, and stored only as its SHA-256: the
key is 256 random bits, so a fast hash is as safe as a slow one would be for
a password, and checking one costs a single lookup. Each key carries the
name of its system and the channel its requests come in by.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import DateTime, select
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel

from wangge.core.errors import UsageError

PREFIX = "wgk_"


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"
    name: str = Field(primary_key=True)
    digest: str = Field(unique=True, index=True)
    channel: str = ""
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc), sa_type=DateTime(timezone=True))
    revoked_at: Optional[datetime] = Field(default=None, sa_type=DateTime(timezone=True))


_keys = ApiKey.__table__


@dataclass(frozen=True)
class Holder:
    """Who a key belongs to: the integrating system's name and its channel."""

    name: str
    channel: str


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def add(conn: Connection, name: str, channel: str = "") -> str:
    """Make a key for the system ``name`` and return it (the only time it is seen).

    Raises `UsageError` if the name is blank or a live key already has it.
    """
    name = name.strip()
    if not name:
        raise UsageError("an API key needs the name of the system that uses it, e.g. 12345热线")
    found = conn.execute(select(_keys.c.revoked_at).where(_keys.c.name == name)).first()
    if found is not None and found.revoked_at is None:
        raise UsageError(f"there is already a key named {name!r}: revoke it first with `wangge apikey revoke`")
    key = PREFIX + secrets.token_urlsafe(32)
    if found is not None:
        conn.execute(_keys.delete().where(_keys.c.name == name))
    conn.execute(_keys.insert().values(name=name, digest=digest(key), channel=channel,
                                       created_at=datetime.now(timezone.utc), revoked_at=None))
    return key


def holder(conn: Connection, key: Optional[str]) -> Optional[Holder]:
    """The holder of a live ``key``, or None for a missing, unknown or revoked one."""
    if not key:
        return None
    wanted = digest(key)
    row = conn.execute(select(_keys).where(_keys.c.digest == wanted)).first()
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.digest, wanted):
        return None
    return Holder(row.name, row.channel)


def revoke(conn: Connection, name: str) -> None:
    """Revoke the key named ``name``; raises `UsageError` if there is no live one."""
    done = conn.execute(_keys.update().where(_keys.c.name == name, _keys.c.revoked_at.is_(None))
                        .values(revoked_at=datetime.now(timezone.utc))).rowcount
    if not done:
        raise UsageError(f"no live API key named {name!r}: `wangge apikey list` shows them")


def listing(conn: Connection) -> list:
    """Every key's name, channel, creation and revocation time (never the key)."""
    return conn.execute(select(_keys.c.name, _keys.c.channel, _keys.c.created_at, _keys.c.revoked_at)
                        .order_by(_keys.c.name)).all()
