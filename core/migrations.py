"""Named schema migrations, each applied once, in order, inside a transaction.

A migration's name is recorded in ``schema_migration`` in the same transaction
as its DDL (SQLite and PostgreSQL both have transactional DDL), so a failed
migration leaves nothing half-applied and applying the list twice is a no-op.
New schema changes are appended as new migrations; an applied migration is
never edited.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable

from sqlalchemy import Column, DateTime, MetaData, String, Table, inspect
from sqlalchemy.engine import Connection

from wangge.core import accounts, apikeys, boundaries, models

_meta = MetaData()
schema_migration = Table(
    "schema_migration",
    _meta,
    Column("name", String, primary_key=True),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Migration:
    name: str
    apply: Callable[[Connection], None]


def create_tables(*tables: type) -> Callable[[Connection], None]:
    """A migration step that creates the given SQLModel tables (and their indexes)."""

    def step(conn: Connection) -> None:
        for table in tables:
            table.__table__.create(conn)

    return step


#: The core schema. Append, never edit: stores in the field have applied these.
CORE: tuple[Migration, ...] = (
    Migration(
        "0001_domain",
        create_tables(
            models.StoreMeta,
            models.GridCell,
            models.Building,
            models.Household,
            models.Resident,
            models.Worker,
            models.Assignment,
            models.Device,
            models.Case,
            models.CaseEvent,
            models.Visit,
            models.Attachment,
            models.PointEntry,
            models.Op,
        ),
    ),
    # Stores made before this carry an index on op.hlc that no query uses; it
    # cost every change an extra B-tree insert (about a fifth of a raw write).
    Migration("0002_op_without_hlc_index", lambda conn: conn.exec_driver_sql("DROP INDEX IF EXISTS ix_op_hlc")),
    Migration("0003_op_field_stamps", lambda conn: _add_column(conn, "op", "stamps", "JSON")),
    # A tablet (SQLite) holds any 64-bit number; a PostgreSQL master refused past 2**31 and so
    # every later bundle of the tablet that recorded one.
    Migration("0004_wide_integers", lambda conn: _widen(conn, WIDE_INTEGERS)),
    # The office console's accounts and audit trail, and the indexes its case queue reads by.
    Migration("0006_accounts", accounts.create),
    Migration("0006b_case_queue_indexes", accounts.queue_indexes),
    # Meetings held with their attendance, and projects' delivery logs: office records.
    Migration("0008_meetings_and_project_records", lambda conn: _office_records(conn)),
    # Grid boundaries drawn in GIS tools, for placing a reported position in its grid.
    Migration("0009_grid_boundaries", create_tables(boundaries.GridBoundary)),
    # Keys of the systems (a city hotline) that send requests through Open311.
    Migration("0009b_api_keys", create_tables(apikeys.ApiKey)),
    # Accounts of a functional department see that department's cases only.
    Migration("0010_account_department", lambda conn: _add_column(conn, "office_account", "department", "VARCHAR")),
    # Third-party spot checks of the workers, with their scores.
    Migration("0010b_spot_checks", lambda conn: _spot_checks(conn)),
)
#: Typed integer columns made BIGINT by 0004 (SQLite's INTEGER is 64-bit already).
WIDE_INTEGERS = (("household", "members"), ("visit", "minutes"), ("attachment", "size"), ("point_entry", "delta"))


def _office_records(conn: Connection) -> None:
    from wangge.core.meetings import MeetingRecord
    from wangge.core.projects import ProjectRecord

    create_tables(MeetingRecord, ProjectRecord)(conn)


def _spot_checks(conn: Connection) -> None:
    from wangge.core.spotchecks import SpotCheckRecord

    create_tables(SpotCheckRecord)(conn)


def _widen(conn: Connection, columns) -> None:
    if conn.dialect.name == "postgresql":
        for table, column in columns:
            conn.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE BIGINT")


def _add_column(conn: Connection, table: str, column: str, sql_type: str) -> None:
    # Stores made after the column joined the model already have it from 0001.
    if column not in {c["name"] for c in inspect(conn).get_columns(table)}:
        conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")


def applied(conn: Connection) -> set[str]:
    """Names of the migrations already applied to the database behind ``conn``."""
    schema_migration.create(conn, checkfirst=True)
    return {row[0] for row in conn.execute(schema_migration.select())}


def apply(conn: Connection, migrations: Iterable[Migration]) -> list[str]:
    """Apply the migrations not yet applied, in order; return their names.

    The caller owns the transaction: if any step raises, rolling it back
    leaves the schema and the record of applied migrations as they were.
    """
    done = applied(conn)
    names = []
    for migration in migrations:
        if migration.name in done:
            continue
        migration.apply(conn)
        conn.execute(
            schema_migration.insert().values(
                name=migration.name, applied_at=datetime.now(timezone.utc)
            )
        )
        names.append(migration.name)
    return names
