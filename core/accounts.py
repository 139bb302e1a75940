"""The office's accounts and its audit trail: two tables of the master store.

Neither table is replicated: accounts log in at the office that holds them,
and the audit trail is that office's record of who did what in the console
or with the `wangge` commands that act for an account. The rules about them
(hashing, lockout, what an account may see) live in `wangge.app.accounts`.
"""
from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Index, Integer, MetaData, String, Table, Text
from sqlalchemy.engine import Connection

metadata = MetaData()

account = Table(
    "office_account", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String, nullable=False, unique=True),
    Column("role", String, nullable=False),  # a role of the ruleset: its moves are the account's
    Column("grid_code", String, nullable=True),  # the account sees this grid and those below; None: all
    # A department's account (电信, 城管) sees the cases routed to its department and those it acted on.
    Column("department", String, nullable=True),
    Column("worker_id", String, nullable=True),  # the worker its case moves are recorded as
    Column("password_hash", String, nullable=False),  # Argon2id, in the PHC string format
    Column("disabled", Boolean, nullable=False, default=False),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

audit = Table(
    "office_audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("account", String, nullable=False),
    Column("action", String, nullable=False),  # login, login_failed, move, resolve, approve, ...
    Column("target", String, nullable=False, default=""),
    Column("detail", Text, nullable=False, default=""),
    Index("ix_office_audit_at", "at"),
)


def create(conn: Connection) -> None:
    """Migration step: the account and audit tables."""
    metadata.create_all(conn)


def queue_indexes(conn: Connection) -> None:
    """Migration step: the console's case queue pages by deadline and counts by status over 100k
    cases; both indexes hold every column those reads filter on, so neither visits the table."""
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_cases_queue ON cases (deadline, number, deleted)")
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_cases_status ON cases (status, deadline, deleted)")
