"""Opening, creating and migrating a store, on SQLite or PostgreSQL.

A store is a database plus what it knows about itself (``store_meta``): its
role (``master`` or ``device``), its device id and its clock. SQLite is the
embedded default; every SQLite connection gets WAL, ``synchronous=FULL`` and
foreign keys, and every transaction starts with ``BEGIN IMMEDIATE`` so two
writers queue instead of failing half-way. A ``postgresql://`` URL selects
PostgreSQL; the same code runs on both.

Writers are ordered on both. The op log is read by cursor (``seq`` above
what a device holds), so a write must never commit after a later one: on
PostgreSQL two transactions could take ``seq`` 10 and 11 and commit 11
first, and a reader that saw 11 would move its cursor past 10 for good.
Every `Store.write` on PostgreSQL therefore starts by taking one
transaction-level advisory lock for the store (`WRITE_LOCK`), the analogue
of SQLite's ``BEGIN IMMEDIATE``: write transactions of every process on the
store run one at a time, in ``seq`` order, and so does the clock kept in
``store_meta``. Reads take no lock.
"""
from __future__ import annotations

import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from wangge.core import codec, collector, migrations, placement
from wangge.core.capture import Recorder
from wangge.core.errors import StoreError, StoreRoleError, UsageError, WanggeError
from wangge.core.hlc import Clock
from wangge.core.ids import uuid7
from wangge.core.models import StoreMeta

ROLES = ("master", "device")
_meta = StoreMeta.__table__

#: PostgreSQL's advisory lock of a store's writers: a key of wangge's own ("wg") and the oid of the
#: store's ``store_meta`` table, so two stores in one database (two schemas) do not wait for each other.
WRITE_LOCK = "SELECT pg_advisory_xact_lock(30567, CAST(CAST(CAST('store_meta' AS regclass) AS oid) AS integer))"


def database_url(target: str) -> str:
    """Turn a path or URL given by a user into an SQLAlchemy URL.

    A plain path means an SQLite file. Raises `UsageError` for a URL of
    another scheme or one SQLAlchemy cannot parse.
    """
    if "://" not in target:
        return "sqlite:///" + str(Path(target).expanduser().resolve())
    try:
        url = make_url(target)
    except (ArgumentError, ValueError) as exc:
        raise UsageError(
            f"bad database URL {target!r}: {exc}; expected e.g. postgresql://127.0.0.1:5432/test"
        ) from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    elif not url.drivername.startswith(("sqlite", "postgresql")):
        raise UsageError(
            f"unsupported database URL {target!r}: expected a file path, "
            f"sqlite:///PATH or postgresql://HOST/DB, got scheme {url.drivername!r}"
        )
    return url.render_as_string(hide_password=False)


def connect(target: str, *, must_exist: bool = False, key: Optional[bytes] = None) -> Engine:
    """An engine for ``target`` with wangge's connection settings.

    With ``key`` (32 bytes), the SQLite file is encrypted at rest with
    SQLCipher (see `wangge.sync.device.atrest`); a wrong key surfaces as a
    `StoreError` when the store is first read. Raises `UsageError` if an
    SQLite file's folder is missing or unwritable, if ``must_exist`` and the
    file is missing, or for a key on a non-SQLite URL; nothing is created then.
    """
    url = make_url(database_url(target))
    if url.get_backend_name() == "sqlite":
        _check_sqlite_path(url.database or "", must_exist)
    elif key is not None:
        raise UsageError(f"encryption at rest is for SQLite tablet stores, not {url.get_backend_name()}")
    try:
        engine = create_engine(
            url,
            pool_pre_ping=url.get_backend_name() != "sqlite",
            # Chinese text stays readable and a third smaller than \u escapes.
            json_serializer=codec.column,
            **(_sqlcipher_options(url.database, key) if key is not None else {}),
        )
    except (NoSuchModuleError, ArgumentError, ImportError) as exc:
        raise UsageError(f"cannot use database URL {target!r}: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlcipher_options(path: str, key: bytes) -> dict:
    """`create_engine` options that open ``path`` through SQLCipher with a raw key."""
    if len(key) != 32:
        raise UsageError(f"a database key must be 32 bytes, got {len(key)}")
    try:
        from sqlcipher3 import dbapi2 as sqlcipher
    except ImportError as exc:
        raise UsageError(f"encrypted stores need the sqlcipher3 package: {exc}") from None

    def creator():
        conn = sqlcipher.connect(path, check_same_thread=False)
        # A wrong key is reported as a StoreError; SQLCipher's own log lines
        # on stderr would only confuse a field worker.
        conn.execute("PRAGMA cipher_log_level = NONE")
        # The key must be the first statement on the connection; a raw hex key
        # skips SQLCipher's own (slow) KDF, since ours already ran once.
        conn.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
        return conn

    # ``module`` makes SQLAlchemy recognise sqlcipher3's exception classes.
    return {"creator": creator, "module": sqlcipher}


def _check_sqlite_path(path: str, must_exist: bool) -> None:
    if path in ("", ":memory:"):
        raise UsageError("an in-memory SQLite database cannot hold a store: give a file path")
    file = Path(path)
    if must_exist and not file.exists():
        raise UsageError(f"no store at {file}: create one with `wangge init {file}`")
    folder = file.parent
    if not folder.is_dir():
        raise UsageError(f"cannot create a store at {file}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (file.exists() and not os.access(file, os.W_OK)):
        raise UsageError(f"cannot write the store at {file}: permission denied; choose a writable path")


def _sqlite_on_connect(dbapi_connection, _record) -> None:
    # Take transaction control from pysqlite, which would otherwise begin
    # transactions lazily and not at all around DDL.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=30000"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


class Store:
    """An open store. Use `init` or `open` to get one; `close` when done."""

    def __init__(self, engine: Engine, role: str, device_id: str, now_ms: Callable[[], int]):
        self.engine = engine
        self.role = role
        self.device_id = device_id
        self.now_ms = now_ms

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def write(self, actor: str = "", device: Optional[str] = None) -> Iterator[Recorder]:
        """One transaction whose changes are recorded as ops.

        Yields a `Recorder`; on leaving the block the changes, their ops and
        the advanced clock commit together, or on an exception none of them.
        The cyclic collector is paused meanwhile (`wangge.core.collector`):
        a bulk write or an import builds many small objects and no cycles.
        What belongs to a row moved to another grid moves with it, in ops of
        its own (`wangge.core.placement`); a row put in another grid than the
        one it belongs to raises `StoreError`, and nothing is written.
        On PostgreSQL it first waits for the store's other writers, in every
        process, to finish (`WRITE_LOCK`, see the module's doc).
        """
        with collector.paused(), self._transaction() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(WRITE_LOCK)  # released at commit or rollback
            clock = Clock(last=int(get_meta(conn, "hlc") or 0))
            physical = self.now_ms()
            recorder = Recorder(
                conn, clock=clock, physical_ms=physical, device=device or self.device_id, actor=actor
            )
            yield recorder
            if recorder.placed:
                placement.settle(recorder, recorder.placed, strict=True)
            set_meta(conn, "hlc", str(clock.last))

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading, in its own transaction."""
        with self._transaction() as conn:
            yield conn

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except DBAPIError as exc:
            raise StoreError(f"store {self.url}: {_first_line(exc)}") from exc
        except UnicodeEncodeError as exc:
            # A lone surrogate ("\\ud800" in JSON decodes to one): no database text can hold it.
            bad = exc.object[exc.start : exc.end] if isinstance(exc.object, str) else ""
            raise StoreError(f"store {self.url}: a text value holds {bad!r}, which is not a Unicode character "
                             f"(a lone surrogate): expected text that UTF-8 can encode; nothing was written") from None


def create_database(target: str) -> Optional[str]:
    """Create the PostgreSQL database a ``postgresql://`` ``target`` names if the server lacks it.

    Returns the name of the database created, or None if there was nothing
    to do (an SQLite path, or the database exists). Connects to the server's
    ``postgres`` database to run CREATE DATABASE; raises `UsageError` with
    the exact ``createdb`` command if the server refuses (no CREATEDB right).
    """
    url = make_url(database_url(target))
    if url.get_backend_name() != "postgresql" or not url.database:
        return None
    engine = connect(target)
    try:
        with engine.connect():
            return None
    except DBAPIError as exc:
        if not _missing_database(exc, url.database):
            return None  # another failure: `init` reports it in its own words
    finally:
        engine.dispose()
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            quoted = admin.dialect.identifier_preparer.quote(url.database)
            conn.exec_driver_sql(f"CREATE DATABASE {quoted}")
    except DBAPIError as exc:
        raise UsageError(f"database {url.database!r} does not exist on {url.host or 'localhost'} and the server "
                         f"refused to create it ({_first_line(exc)}): create it with `{_createdb(url)}`, "
                         f"then run `wangge init` again") from None
    finally:
        admin.dispose()
    return url.database


def _missing_database(exc: DBAPIError, name: str) -> bool:
    return f'database "{name}" does not exist' in str(exc.orig)


def _createdb(url) -> str:
    """The shell command that creates ``url``'s database."""
    parts = ["createdb"]
    if url.host:
        parts += ["-h", url.host]
    if url.port:
        parts += ["-p", str(url.port)]
    if url.username:
        parts += ["-U", url.username]
    return " ".join([*parts, url.database])


def init(
    target: str,
    role: str,
    *,
    device_id: Optional[str] = None,
    extra_migrations: Iterable[migrations.Migration] = (),
    now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    key: Optional[bytes] = None,
) -> Store:
    """Create a new store of ``role`` at ``target`` and return it open.

    With ``key``, the SQLite file is encrypted at rest (SQLCipher).
    Raises `UsageError` for a bad role, path or URL and `StoreError` if a
    store already exists there; in both cases nothing is written.
    """
    if role not in ROLES:
        raise UsageError(f"unknown store role {role!r}: expected one of {', '.join(ROLES)}")
    engine = connect(target, key=key)
    try:
        with engine.begin() as conn:
            if _existing_role(conn) is not None:
                raise StoreError(f"a store already exists at {_where(engine)}; open it instead of creating it")
            migrations.apply(conn, (*migrations.CORE, *extra_migrations))
            device_id = device_id or uuid7()
            set_meta(conn, "role", role)
            set_meta(conn, "device_id", device_id)
            set_meta(conn, "hlc", "0")
    except StoreError:
        engine.dispose()
        raise
    except SQLAlchemyError as exc:
        engine.dispose()
        if isinstance(exc, DBAPIError) and engine.url.database and _missing_database(exc, engine.url.database):
            raise StoreError(f"cannot create a store at {_where(engine)}: database {engine.url.database!r} "
                             f"does not exist: create it with `{_createdb(engine.url)}`") from None
        raise StoreError(f"cannot create a store at {_where(engine)}: {_first_line(exc)}") from None
    return Store(engine, role, device_id, now_ms)


def open(  # noqa: A001 - the store's verb
    target: str,
    role: Optional[str] = None,
    *,
    extra_migrations: Iterable[migrations.Migration] = (),
    now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    key: Optional[bytes] = None,
) -> Store:
    """Open an existing store, applying pending migrations.

    If ``role`` is given, the store must have been created in that role;
    ``key`` opens an encrypted (SQLCipher) SQLite store.
    Raises `UsageError` if there is no store, `StoreRoleError` on a role
    mismatch, `StoreError` for a wrong key; nothing is written in any case.
    """
    _probe(target, key)
    url = make_url(database_url(target))
    if role is not None and url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        raise UsageError(f"no store at {url.database}: create one with "
                         f"`wangge init {url.database}{' --role master' if role == 'master' else ''}`")
    engine = connect(target, must_exist=True, key=key)
    try:
        with engine.begin() as conn:
            found = _existing_role(conn)
            if found is None:
                raise UsageError(f"{_where(engine)} is not a wangge store: create one with `wangge init`")
            if role is not None and found != role:
                raise StoreRoleError(
                    f"{_where(engine)} is a {found} store, not a {role} store: "
                    f"open it as a {found}, or create a {role} store with `wangge init --role {role}`"
                )
            migrations.apply(conn, (*migrations.CORE, *extra_migrations))
            device_id = get_meta(conn, "device_id")
    except (UsageError, StoreError):
        engine.dispose()
        raise
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StoreError(f"cannot open the store at {_where(engine)}: {_first_line(exc)}") from None
    return Store(engine, found, device_id, now_ms)


def role_of(target: str) -> Optional[str]:
    """The role of the store at ``target``, read without opening it for use (no migrations run);
    None if there is no plain store there (nothing, another database, an encrypted file)."""
    try:
        _probe(target, None)
        engine = connect(target, must_exist=True)
    except WanggeError:
        return None
    try:
        with engine.connect() as conn:
            return _existing_role(conn)
    except DBAPIError:
        return None
    finally:
        engine.dispose()


_SQLITE_MAGIC = b"SQLite format 3\x00"


def _probe(target: str, key: Optional[bytes]) -> None:
    """Raise `UsageError` if the SQLite file at ``target`` holds no plain wangge store, telling so
    without changing it: a store's connection switches the file to WAL for good, and a mistyped
    path must not do that to another program's database (or turn an empty file into one)."""
    url = make_url(database_url(target))
    if url.get_backend_name() != "sqlite" or key is not None or not url.database:
        return
    file = Path(url.database)
    if file.is_dir():
        raise UsageError(f"{file} is a folder, not a store: give the path of the store's file")
    try:
        with file.open("rb") as opened:
            head = opened.read(len(_SQLITE_MAGIC))
    except OSError:
        return  # missing or unreadable: `connect` says which
    if head == _SQLITE_MAGIC:
        probe = sqlite3.connect(file)
        try:
            found = probe.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                  (_meta.name,)).fetchone()
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"{file} is not a wangge store: SQLite cannot read it ({exc})") from None
        finally:
            probe.close()
        if found is None:
            raise UsageError(f"{file} is not a wangge store: it is an SQLite database of something else; "
                             f"create a store with `wangge init`")
    elif Path(f"{file}.key").exists():  # `wangge.sync.device.atrest` keeps a tablet's key file beside it
        raise UsageError(f"{file} is an encrypted tablet store: this command runs on a plain (master) store; "
                         f"a tablet's commands unlock it with the worker's passphrase")
    else:
        what = "it is empty" if not head else "it is not an SQLite database"
        raise UsageError(f"{file} is not a wangge store: {what}; create one with `wangge init`")


def _existing_role(conn: Connection) -> Optional[str]:
    if not conn.dialect.has_table(conn, _meta.name):
        return None
    return get_meta(conn, "role")


def get_meta(conn: Connection, key: str) -> Optional[str]:
    return conn.execute(select(_meta.c.value).where(_meta.c.key == key)).scalar()


def set_meta(conn: Connection, key: str, value: str) -> None:
    updated = conn.execute(_meta.update().where(_meta.c.key == key).values(value=value)).rowcount
    if not updated:
        conn.execute(_meta.insert().values(key=key, value=value))


def _where(engine: Engine) -> str:
    url = engine.url
    return url.database if url.get_backend_name() == "sqlite" else url.render_as_string(hide_password=True)


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
