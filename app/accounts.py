"""Office accounts: who may log in to the console, as which role, over which grids.

An account carries a role of the installed ruleset, so the lifecycle's role
guards decide what it may move, and optionally a grid code, so it sees only
that grid and the grids below it. Each account acts as a worker of the
store (the worker of the same name, made if there is none), because a
case's events name the worker who made each move.

Passwords are hashed with Argon2id; five failed logins in a row lock an
account for `LOCK_MINUTES`. Every login, refusal and action is written to
the audit trail with the account's name (`record`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Optional

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.engine import Connection

from wangge.core import accounts as tables
from wangge.core import casework, roster
from wangge.core.errors import UsageError, WanggeError
from wangge.core.models import Worker
from wangge.core.ruleset import Ruleset
from wangge.core.store import Store

MAX_FAILURES = 5
LOCK_MINUTES = 15
MIN_PASSWORD = 8
_hasher = PasswordHasher()  # argon2-cffi's defaults are Argon2id with RFC 9106's low-memory profile
_accounts, _audit = tables.account, tables.audit
_workers = Worker.__table__


class AccountError(UsageError):
    """An account cannot be made, changed or used that way; the message says why."""


class LoginRefused(AccountError):
    """Wrong name or password, a disabled account, or one locked after too many failures.

    ``reason`` is "wrong", "now_locked", "locked" or "disabled", and ``until`` the end of a lock,
    so a page can say it in its own language.
    """

    def __init__(self, message: str, reason: str = "wrong", until: Optional[datetime] = None):
        super().__init__(message)
        self.reason, self.until = reason, until


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    role: str
    grid_code: Optional[str]
    worker_id: Optional[str]
    disabled: bool = False
    locked_until: Optional[datetime] = None
    failed_logins: int = 0
    department: Optional[str] = None  # a department's account sees that department's cases only

    def office(self, ruleset: Ruleset) -> bool:
        """Whether the account's role is an office role of ``ruleset`` (reviews, devices, sweeps)."""
        return any(r.code == self.role and r.office for r in ruleset.roles)


def _row_account(row) -> Account:
    return Account(row.id, row.name, row.role, row.grid_code, row.worker_id, bool(row.disabled),
                   _aware(row.locked_until), row.failed_logins, row.department)


def _aware(moment: Optional[datetime]) -> Optional[datetime]:
    return moment.replace(tzinfo=timezone.utc) if moment is not None and moment.tzinfo is None else moment


def check_password(password: str) -> None:
    """Raise `AccountError` unless ``password`` is long enough to guard resident data."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters, got {len(password)}")


def add(store: Store, name: str, role: str, password: str, *, grid: Optional[str] = None,
        department: Optional[str] = None, by: str = "office", now: Optional[datetime] = None) -> Account:
    """Make an account; return it. Raises `AccountError`, writing nothing, for an empty or taken
    name, a short password, a role the ruleset lacks, an unknown grid or department, or a
    same-named worker of another role.

    An account with a ``department`` (a functional department such as 电信 or 城管, which routing
    names as a case's owner) sees only the cases routed to that department and those it acted on:
    a utility's repair desk has no business with the street's other residents' problems."""
    name = name.strip()
    if not name:
        raise AccountError("an account needs a name, e.g. 王芳")
    check_password(password)
    now = now or datetime.now(timezone.utc)
    with store.write(actor=by) as rec:
        ruleset = installed(rec.conn)
        roles = [r.code for r in ruleset.roles]
        if role not in roles:
            raise AccountError(f"unknown role {role!r}: the ruleset defines {', '.join(roles)}")
        if rec.conn.execute(select(_accounts.c.id).where(_accounts.c.name == name)).first():
            raise AccountError(f"an account named {name!r} exists already: change its password with "
                               f"`wangge user password`")
        if grid is not None:
            roster.grid_id(rec, grid)  # raises for an unknown code
        if department is not None:
            known = [d.code for d in ruleset.departments]
            if department not in known:
                raise AccountError(f"unknown department {department!r}: the ruleset defines "
                                   f"{', '.join(known) or 'no departments'}")
        worker = _worker_for(rec, name, role, grid)
        new_id = rec.conn.execute(_accounts.insert().values(
            name=name, role=role, grid_code=grid, department=department, worker_id=worker,
            password_hash=_hasher.hash(password), disabled=False, failed_logins=0,
            created_at=now)).inserted_primary_key[0]
        record(rec.conn, by, "account_add", name, f"role {role}" + (f", grid {grid}" if grid else "")
               + (f", department {department}" if department else ""), now)
    return Account(new_id, name, role, grid, worker, department=department)


def _worker_for(rec, name: str, role: str, grid: Optional[str]) -> str:
    found = rec.conn.execute(select(_workers.c.id, _workers.c.role)
                             .where(_workers.c.name == name, _workers.c.deleted.is_(None))).all()
    if len(found) > 1:
        raise AccountError(f"{len(found)} workers are named {name!r}: rename one before making its account")
    if found:
        if found[0].role != role:
            raise AccountError(f"worker {name} is a {found[0].role}, not a {role}: give the account the "
                               f"worker's role, or another name")
        return found[0].id
    return roster.add_worker(rec, name, role, [grid] if grid else [])


def listed(store: Store) -> list[Account]:
    """Every account, by name."""
    with store.read() as conn:
        return [_row_account(r) for r in conn.execute(select(_accounts).order_by(_accounts.c.name))]


def get(conn: Connection, account_id: int) -> Optional[Account]:
    row = conn.execute(select(_accounts).where(_accounts.c.id == account_id)).first()
    return _row_account(row) if row is not None else None


def _named(conn: Connection, name: str):
    row = conn.execute(select(_accounts).where(_accounts.c.name == name)).first()
    if row is None:
        names = conn.execute(select(_accounts.c.name).order_by(_accounts.c.name).limit(8)).scalars().all()
        raise AccountError(f"no account {name!r}: expected one of {', '.join(names) or '(none yet: add one with `wangge user add`)'}")
    return row


def disable(store: Store, name: str, *, by: str = "office", now: Optional[datetime] = None) -> str:
    """Disable an account: its next request is refused. Raises `AccountError` if there is none."""
    now = now or datetime.now(timezone.utc)
    with store.write(actor=by) as rec:
        _named(rec.conn, name)
        rec.conn.execute(_accounts.update().where(_accounts.c.name == name).values(disabled=True))
        record(rec.conn, by, "account_disable", name, "", now)
    return f"account {name} disabled"


def set_password(store: Store, name: str, password: str, *, by: str = "office",
                 now: Optional[datetime] = None) -> str:
    """Give an account a new password; this also lifts a lockout and re-enables it."""
    check_password(password)
    now = now or datetime.now(timezone.utc)
    with store.write(actor=by) as rec:
        _named(rec.conn, name)
        rec.conn.execute(_accounts.update().where(_accounts.c.name == name).values(
            password_hash=_hasher.hash(password), failed_logins=0, locked_until=None, disabled=False))
        record(rec.conn, by, "account_password", name, "", now)
    return f"account {name}: password changed"


def login(store: Store, name: str, password: str, *, now: Optional[datetime] = None) -> Account:
    """The account whose name and password these are. Raises `LoginRefused` (a failure counts
    towards the lockout), saying no more than needed: an unknown name and a wrong password read
    the same."""
    now = now or datetime.now(timezone.utc)
    wrong = LoginRefused("wrong account name or password")
    with store.write(actor=name or "anonymous") as rec:
        row = rec.conn.execute(select(_accounts).where(_accounts.c.name == name.strip())).first()
        if row is None:
            _hasher.hash(password)  # the same time as a known name: no timing tells names apart
            record(rec.conn, name, "login_failed", name, "unknown account", now)
            raise_after = wrong
        else:
            raise_after = _check_login(rec.conn, row, password, now, wrong)
    if raise_after is not None:
        raise raise_after
    return _row_account(row)


def _check_login(conn: Connection, row, password: str, now: datetime, wrong: LoginRefused):
    """None if the login succeeds (recorded); else the refusal, with the failure recorded."""
    locked = _aware(row.locked_until)
    if row.disabled:
        record(conn, row.name, "login_failed", row.name, "disabled", now)
        return LoginRefused(f"account {row.name} is disabled: ask the office to enable it", "disabled")
    if locked is not None and locked > now:
        record(conn, row.name, "login_failed", row.name, "locked", now)
        return LoginRefused(f"account {row.name} is locked after {MAX_FAILURES} failed logins until "
                            f"{locked:%H:%M} UTC: try again then, or ask the office to set a new password",
                            "locked", locked)
    try:
        _hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        failures = row.failed_logins + 1
        values = {"failed_logins": failures}
        if failures >= MAX_FAILURES:
            values = {"failed_logins": 0, "locked_until": now + timedelta(minutes=LOCK_MINUTES)}
        conn.execute(_accounts.update().where(_accounts.c.id == row.id).values(**values))
        record(conn, row.name, "login_failed", row.name, f"wrong password ({failures} in a row)", now)
        if failures >= MAX_FAILURES:
            return LoginRefused(f"wrong account name or password; account {row.name} is now locked for "
                                f"{LOCK_MINUTES} minutes after {MAX_FAILURES} failed logins", "now_locked",
                                values["locked_until"])
        return wrong
    conn.execute(_accounts.update().where(_accounts.c.id == row.id).values(failed_logins=0, locked_until=None))
    record(conn, row.name, "login", row.name, "", now)
    return None


def usable(conn: Connection, account_id: int, now: Optional[datetime] = None) -> Optional[Account]:
    """The account behind a session, or None if it is gone, disabled or locked since."""
    found = get(conn, account_id)
    now = now or datetime.now(timezone.utc)
    if found is None or found.disabled or (found.locked_until is not None and found.locked_until > now):
        return None
    return found


def record(conn: Connection, account: str, action: str, target: str = "", detail: str = "",
           now: Optional[datetime] = None) -> None:
    """Write one line of the audit trail in the caller's transaction."""
    conn.execute(_audit.insert().values(at=now or datetime.now(timezone.utc), account=account, action=action,
                                        target=target, detail=detail[:2000]))


def trail(conn: Connection, limit: int = 200, account: Optional[str] = None) -> list[dict]:
    """The newest lines of the audit trail, newest first."""
    query = select(_audit).order_by(_audit.c.id.desc()).limit(limit)
    if account is not None:
        query = query.where(_audit.c.account == account)
    return [dict(r) for r in conn.execute(query).mappings()]


def installed(conn: Connection) -> Ruleset:
    """The store's ruleset; an `AccountError` saying how to install one if there is none."""
    try:
        return casework.installed_ruleset(conn)
    except WanggeError:
        raise AccountError("this store has no ruleset installed: accounts take their roles from it; "
                           "install one with `wangge init --rules` or serve with --rules") from None
