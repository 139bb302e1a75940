"""Encryption at rest for a tablet's database, and the sync lease.

A tablet's SQLite file is encrypted with SQLCipher under a random 256-bit
*database key*. That key never touches the disk in the clear: it is wrapped
(AES-256-GCM) by a *key-encryption key* derived from the worker's passphrase
with scrypt, tuned on the tablet so one derivation costs about half a second
(slow enough to make guessing expensive, fast enough to unlock at the gate).
The wrapped key lives in a small JSON *key file* next to the database
(``tablet.db.key``); losing the tablet loses neither the passphrase nor the
key, so its data stays unreadable.

Changing the passphrase rewraps the same database key, so the database is
never re-encrypted.

The lease: a tablet that has not synced for ``lease_days`` (a ruleset
setting) refuses to open for work until it syncs again; a sync is always
allowed, since it is the way to renew the lease. Every reply the tablet
accepts renews it, by HTTP or by USB file, at the master's signed clock in
that reply; it is measured against the latest time the tablet has seen (that
clock, or any wall-clock reading at an open), so setting the clock back does
not extend it. All of it is kept inside the encrypted database
(``store_meta``), where it cannot be edited without the key.

Everything here except `KeyFile.read`/`write` is pure: clocks, paths and
passphrases are passed in.
"""
from __future__ import annotations

import base64
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from wangge.core.errors import StoreError, UsageError, WanggeError
from wangge.sync.device.session import DeviceSession

FORMAT = "wangge-keyfile/1"
KEY_BYTES = 32
#: Bound into the AEAD so a wrapped key cannot be reused as anything else.
_AAD = b"wangge tablet database key v1"
#: scrypt's block size and parallelism (RFC 7914's interactive defaults); only N is tuned.
SCRYPT_R, SCRYPT_P = 8, 1
#: Never accept a work factor below this, even from a key file (2^14 ~ 16 MiB).
MIN_SCRYPT_N = 2**10
MAX_SCRYPT_N = 2**20  # 1 GiB of memory: beyond any tablet
DAY_MS = 86_400_000



class WrongPassphrase(WanggeError, PermissionError):
    """The passphrase does not unwrap the key file's database key."""

    exit_code = 3


class WeakPassphrase(UsageError):
    """A new passphrase does not meet `PASSPHRASE_RULE`."""


#: The one rule for a tablet's passphrase, checked wherever one is set (enroll, change).
MIN_PASSPHRASE_CHARS = 8
PASSPHRASE_RULE = (f"at least {MIN_PASSPHRASE_CHARS} characters (Chinese characters count one each), "
                   "not one character repeated")


def check_passphrase(passphrase: str) -> None:
    """Raise `WeakPassphrase` unless ``passphrase`` meets `PASSPHRASE_RULE`.

    A stolen tablet is attacked offline: only the passphrase's length stands
    between the thief and the residents' data, and scrypt's half second per
    guess makes 8 characters years of work where 4 digits take an hour.
    """
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise WeakPassphrase(f"a passphrase of {len(passphrase)} characters is too short to protect a tablet: "
                             f"choose one of {PASSPHRASE_RULE}, e.g. a short sentence")
    if len(set(passphrase)) == 1:
        raise WeakPassphrase(f"a passphrase of one character repeated is guessed first: choose one of "
                             f"{PASSPHRASE_RULE}, e.g. a short sentence")


class LeaseExpired(WanggeError, PermissionError):
    """The tablet has not synced within its lease and is locked until it syncs."""

    exit_code = 3


def tune_scrypt_n(target_seconds: float = 0.5, *, measure: Optional[Callable[[int], float]] = None) -> int:
    """The power-of-two scrypt N whose derivation takes about ``target_seconds`` here.

    Doubles N from 2^14 until one derivation takes at least half the target,
    then keeps N or its double, whichever is nearer (cost is linear in N).
    ``measure(n)`` returns the seconds one derivation takes; by default it
    times a real one.
    """
    measure = measure or _time_derivation
    n = 2**14
    while n < MAX_SCRYPT_N:
        seconds = measure(n)
        if seconds >= target_seconds / 2:
            return n if abs(seconds - target_seconds) <= abs(2 * seconds - target_seconds) else n * 2
        n *= 2
    return n


def _time_derivation(n: int) -> float:
    start = time.perf_counter()
    _derive(b"tuning", secrets.token_bytes(16), n)
    return time.perf_counter() - start


def _derive(passphrase: bytes, salt: bytes, n: int) -> bytes:
    return Scrypt(salt=salt, length=KEY_BYTES, n=n, r=SCRYPT_R, p=SCRYPT_P).derive(passphrase)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class KeyFile:
    """A database key wrapped under a passphrase: what ``tablet.db.key`` holds."""

    salt: bytes
    n: int
    nonce: bytes
    wrapped: bytes

    @classmethod
    def create(cls, passphrase: str, key: Optional[bytes] = None, *, n: Optional[int] = None) -> tuple["KeyFile", bytes]:
        """A new key file and the database key it wraps (random unless given).

        ``n`` is the scrypt work factor; by default it is tuned to ~0.5 s on
        this machine. Raises `WeakPassphrase` (see `check_passphrase`), `StoreError` for a bad N.
        """
        check_passphrase(passphrase)
        n = n or tune_scrypt_n()
        _check_n(n, "requested")
        key = key or secrets.token_bytes(KEY_BYTES)
        salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
        kek = _derive(passphrase.encode("utf-8"), salt, n)
        return cls(salt, n, nonce, AESGCM(kek).encrypt(nonce, key, _AAD)), key

    def unwrap(self, passphrase: str, where: str = "the key file") -> bytes:
        """The database key. Raises `WrongPassphrase` if the passphrase does not fit."""
        kek = _derive(passphrase.encode("utf-8"), self.salt, self.n)
        try:
            return AESGCM(kek).decrypt(self.nonce, self.wrapped, _AAD)
        except InvalidTag:
            raise WrongPassphrase(
                f"wrong passphrase for {where}: it does not unlock this tablet's database; "
                "check the keyboard layout and try again"
            ) from None

    def rewrap(self, old: str, new: str, *, n: Optional[int] = None) -> "KeyFile":
        """The same database key under a new passphrase. Raises `WrongPassphrase`."""
        return KeyFile.create(new, self.unwrap(old), n=n or self.n)[0]

    def to_json(self) -> str:
        return json.dumps(
            {"format": FORMAT, "kdf": "scrypt", "n": self.n, "r": SCRYPT_R, "p": SCRYPT_P,
             "salt": _b64(self.salt), "nonce": _b64(self.nonce), "wrapped": _b64(self.wrapped)},
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str, where: str = "key file") -> "KeyFile":
        """Parse a key file. Raises `StoreError` naming what is wrong with it."""
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT or data.get("kdf") != "scrypt":
                raise ValueError(f"expected format {FORMAT!r} with kdf 'scrypt', got {data.get('format')!r}")
            if (data.get("r"), data.get("p")) != (SCRYPT_R, SCRYPT_P):
                raise ValueError(f"expected scrypt r={SCRYPT_R} p={SCRYPT_P}, got r={data.get('r')} p={data.get('p')}")
            keyfile = cls(base64.b64decode(data["salt"]), int(data["n"]),
                          base64.b64decode(data["nonce"]), base64.b64decode(data["wrapped"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StoreError(f"{where} is not a wangge key file: {exc}") from None
        _check_n(keyfile.n, f"{where} asks for")
        return keyfile

    def write(self, path: Path) -> None:
        """Write atomically (temp file, fsync, rename), readable by the owner only."""
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(self.to_json())
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)

    @classmethod
    def read(cls, path: Path) -> "KeyFile":
        """Raises `StoreError` if the file is missing or malformed."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise StoreError(f"no key file at {path}: this tablet database cannot be unlocked without it") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(f"cannot read key file {path}: {exc}") from None
        return cls.from_json(text, str(path))


def _check_n(n: int, what: str) -> None:
    # A power of two (scrypt's rule) within bounds: a tampered key file must not
    # downgrade the work factor nor make unlocking exhaust memory.
    if n < MIN_SCRYPT_N or n > MAX_SCRYPT_N or n & (n - 1):
        raise StoreError(f"{what} scrypt N={n}: expected a power of two from {MIN_SCRYPT_N} to {MAX_SCRYPT_N}")


def keyfile_path(database: str | Path) -> Path:
    """Where the key file of the database at ``database`` lives."""
    return Path(str(database) + ".key")


def create_key(database: str | Path, passphrase: str, *, n: Optional[int] = None) -> bytes:
    """Make a database key for a new tablet database, write its key file, return the key.

    Raises `StoreError` if a key file already exists (it would orphan a database).
    """
    path = keyfile_path(database)
    if path.exists():
        raise StoreError(f"a key file already exists at {path}: unlock it instead of creating a new one")
    keyfile, key = KeyFile.create(passphrase, n=n)
    keyfile.write(path)
    return key


def unlock(database: str | Path, passphrase: str) -> bytes:
    """The database key of the tablet database at ``database``.

    Raises `StoreError` for a missing or malformed key file, `WrongPassphrase`
    for a passphrase that does not fit.
    """
    path = keyfile_path(database)
    return KeyFile.read(path).unwrap(passphrase, where=str(path))


def change_passphrase(database: str | Path, old: str, new: str) -> Path:
    """Rewrap the database key under ``new`` (the database is not re-encrypted); return the key file's path.

    Raises `WrongPassphrase` for a wrong ``old``, `WeakPassphrase` for a weak
    ``new``, `StoreError` for a missing or damaged key file.
    """
    check_passphrase(new)
    if not Path(database).exists():
        raise UsageError(f"no tablet store at {database}: make one with `wangge device enroll {database} --name NAME`")
    path = keyfile_path(database)
    KeyFile.read(path).rewrap(old, new).write(path)
    return path


# -- the lease ---------------------------------------------------------------

@dataclass(frozen=True)
class Lease:
    """When a tablet last synced, how long it may work without syncing, and the latest time it has seen.

    ``last_sync_ms`` is the master's signed clock in the last reply the tablet
    accepted (by HTTP or by file); ``high_water_ms`` the latest of that and
    every wall-clock reading at which the tablet was opened. Both live in the
    encrypted store, out of reach without the key.
    """

    last_sync_ms: Optional[int]
    lease_days: int
    high_water_ms: int = 0

    def expires_ms(self) -> Optional[int]:
        return None if self.last_sync_ms is None else self.last_sync_ms + self.lease_days * DAY_MS

    def now(self, wall_ms: int) -> int:
        """The time to measure the lease at: the wall clock, unless it was set back behind what was seen."""
        return max(wall_ms, self.high_water_ms, self.last_sync_ms or 0)

    def days_left(self, wall_ms: int) -> Optional[float]:
        """Days until the tablet locks (negative once locked); None if it has no lease yet."""
        expires = self.expires_ms()
        return None if expires is None else (expires - self.now(wall_ms)) / DAY_MS

    def check(self, now_ms: int) -> None:
        """Raises `LeaseExpired` if the lease ran out before ``now_ms`` (or before a later time already seen).

        A tablet that never synced has no lease yet (it is being provisioned).
        """
        expires = self.expires_ms()
        now = self.now(now_ms)
        if expires is not None and now > expires:
            days = (now - self.last_sync_ms) / DAY_MS
            raise LeaseExpired(
                f"this tablet last synced {days:.1f} days ago and its lease is {self.lease_days} days: "
                "it is locked until it syncs with the office (`wangge sync --master URL`, or a bundle by USB)"
            )


def read_lease(conn, default_days: int = 14) -> Lease:
    """The lease recorded in a store (through a connection in a transaction)."""
    state = DeviceSession.load(conn)
    return Lease(state.last_sync_ms, state.lease_days or default_days, state.high_water_ms or 0)


def renew_lease(conn, now_ms: int, lease_days: Optional[int] = None) -> None:
    """Record an accepted reply whose master's clock read ``now_ms`` (and the ruleset's lease, if given).

    Called in the transaction that applies the reply, for HTTP and USB alike.
    """
    state = DeviceSession.load(conn)
    state.last_sync_ms = now_ms
    # The master's clock is the trusted one: a reading the tablet took ahead of it (a clock set
    # forward by mistake) no longer counts, or one wrong date would lock the tablet for good.
    state.high_water_ms = now_ms
    if lease_days is not None:
        state.lease_days = int(lease_days)
    state.save(conn)


def accept_reply_lease(conn, master_clock, ruleset) -> None:
    """Renew the lease for a reply the tablet accepted: at the master's signed clock (an HLC stamp) in it.

    A reply that names no sound clock renews nothing. ``ruleset`` (or None)
    gives the lease's length.
    """
    from wangge.core.hlc import wall_of
    from wangge.sync.log.ops import MAX_INT

    if type(master_clock) is not int or not 0 < master_clock <= MAX_INT:
        return
    days = ruleset.settings.lease_days if ruleset is not None else None
    renew_lease(conn, wall_of(master_clock), days)


def see_time(conn, wall_ms: int) -> None:
    """Raise the tablet's high-water time to ``wall_ms`` if it is later: a clock set back cannot undo it."""
    state = DeviceSession.load(conn)
    if wall_ms > (state.high_water_ms or 0):
        state.high_water_ms = wall_ms
        state.save(conn)


def lease_of(opened, wall_ms: Optional[int] = None) -> tuple[Lease, Optional[float]]:
    """The open tablet's lease and the days it has left (None: no lease yet), for a screen to show."""
    wall = wall_ms if wall_ms is not None else int(time.time() * 1000)
    with opened.read() as conn:
        lease = read_lease(conn)
    return lease, lease.days_left(wall)


# -- opening a tablet --------------------------------------------------------

def init_tablet(database: str | Path, passphrase: str, *, n: Optional[int] = None, now_ms: Optional[int] = None,
                **store_options):
    """Create an encrypted device store at ``database`` and its key file; return it open.

    Raises what `wangge.core.store.init` raises; on failure the key file is
    removed again so a retry starts clean.
    """
    from wangge.core import store

    key = create_key(database, passphrase, n=n)
    try:
        made = store.init(str(database), "device", key=key, **store_options)
    except Exception:
        keyfile_path(database).unlink(missing_ok=True)
        raise
    with made.write(actor="lease") as rec:
        # The lease runs from the day the tablet is made: one that never syncs locks too.
        renew_lease(rec.conn, now_ms if now_ms is not None else int(time.time() * 1000))
    return made


def open_tablet(database: str | Path, passphrase: str, *, now_ms: Optional[int] = None,
                for_sync: bool = False, **store_options):
    """Unlock and open the encrypted device store at ``database``: the one way a tablet store is opened.

    Unless ``for_sync``, the lease is checked at ``now_ms`` (default: now),
    or at the latest time the tablet has seen if its clock was set back; the
    time is recorded either way (see `Lease`).
    Raises `WrongPassphrase`, `LeaseExpired` (the store is closed again), or
    what `wangge.core.store.open` raises.
    """
    from wangge.core import store

    if not Path(database).exists():
        raise UsageError(f"no tablet store at {database}: make one with `wangge device enroll {database} --name NAME`")
    if not keyfile_path(database).exists():
        _refuse_plain_store(database)
    opened = store.open(str(database), "device", key=unlock(database, passphrase), **store_options)
    wall = now_ms if now_ms is not None else int(time.time() * 1000)
    try:
        # Seen before it is checked, and kept even when the check refuses: a refusal at the true
        # time cannot be undone by setting the clock back and trying again.
        with opened.write(actor="lease") as rec:
            see_time(rec.conn, wall)
        if not for_sync:
            with opened.read() as conn:
                read_lease(conn).check(wall)
    except BaseException:
        opened.close()
        raise
    return opened


def _refuse_plain_store(database: str | Path) -> None:
    """Raise `UsageError` if ``database`` is an unencrypted store: a master's, say, given to a tablet command."""
    from wangge.core import store

    role = store.role_of(str(database))
    if role is None:
        return  # not a plain store either: the missing key file is what to say
    what = ("a master answers tablets with `wangge serve`" if role == "master"
            else "a tablet's store is made encrypted by `wangge device enroll TABLET.db`")
    raise UsageError(f"{database} is an unencrypted {role} store, not a tablet's: {what}")
