"""Opening a store the one right way: a master by path or URL, a tablet by path and passphrase.

Every store wangge opens carries the sync protocol's tables (so a master
opened to approve a device can answer its first bundle, and a tablet opened
to record a visit can push it), and is opened in the role the caller means:
a master is never opened as a tablet nor the other way round. A tablet is
SQLCipher-encrypted; its key is unwrapped from the key file beside it with
the worker's passphrase.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional

from wangge.core import store
from wangge.core.errors import UsageError
from wangge.core.store import Store
from wangge.sync.device import atrest
from wangge.sync.log import tables

Clock = Callable[[], int]


def _wall_ms() -> int:
    return int(time.time() * 1000)


def create_master(target: str, *, device_id: Optional[str] = None, now_ms: Optional[Clock] = None) -> Store:
    """A new master store at ``target`` (a file path or a postgresql:// URL), open.

    Raises `UsageError` for a bad path or URL, `StoreError` if a store is there already.
    """
    return create(target, "master", device_id=device_id, now_ms=now_ms)


def open_master(target: str, *, now_ms: Optional[Clock] = None) -> Store:
    """The master store at ``target``, migrated and open.

    Raises `UsageError` if there is no store (or an encrypted tablet is
    there), `StoreRoleError` if it is a tablet's.
    """
    return store.open(str(target), "master", extra_migrations=tables.MIGRATIONS, now_ms=now_ms or _wall_ms)


def create_tablet(path: str | Path, passphrase: str, *, device_id: Optional[str] = None,
                  scrypt_n: Optional[int] = None, now_ms: Optional[Clock] = None) -> Store:
    """A new encrypted tablet store at ``path`` and its key file, open.

    ``scrypt_n`` is the passphrase's work factor (tuned to about half a
    second here by default). Raises `UsageError` for an empty passphrase or
    a bad path, `StoreError` if a store or key file is there already.
    """
    if Path(path).exists():
        raise UsageError(f"a file is already at {path}: open the tablet there instead of creating one")
    clock = now_ms or _wall_ms
    # `atrest.init_tablet` takes the moment its lease starts, not a clock: the store gets ours after.
    made = atrest.init_tablet(path, passphrase, n=scrypt_n, device_id=device_id,
                              extra_migrations=tables.MIGRATIONS, now_ms=clock())
    made.now_ms = clock
    return made


def open_tablet(path: str | Path, passphrase: str, *, for_sync: bool = False,
                now_ms: Optional[Clock] = None) -> Store:
    """The encrypted tablet store at ``path``, unlocked, migrated and open.

    Unless ``for_sync``, a tablet whose lease ran out refuses to open
    (`LeaseExpired`): syncing is the way to renew it. Raises
    `WrongPassphrase`, `UsageError` for a missing or unencrypted store.
    """
    # `atrest.open_tablet` takes a moment for its lease check, not a clock: the store gets ours after.
    clock = now_ms or _wall_ms
    opened = atrest.open_tablet(path, passphrase, for_sync=for_sync, extra_migrations=tables.MIGRATIONS,
                                now_ms=clock())
    opened.now_ms = clock
    return opened


def create(target: str, role: str, *, device_id: Optional[str] = None, now_ms: Optional[Clock] = None) -> Store:
    """A new plain (unencrypted) store of ``role`` at ``target``, open: what `wangge init` makes.

    Raises `UsageError` for a bad role, path or URL, `StoreError` if a store is there already.
    """
    return store.init(str(target), role, device_id=device_id, extra_migrations=tables.MIGRATIONS,
                      now_ms=now_ms or _wall_ms)


def create_database(target: str) -> Optional[str]:
    """Create the PostgreSQL database ``target`` names if missing: its name, or None (`store.create_database`)."""
    return store.create_database(str(target))


def open_plain(target: str) -> Store:
    """The plain (unencrypted) store at ``target`` whatever its role, migrated and open.

    Raises `UsageError` if there is none (or an encrypted tablet is there).
    """
    return store.open(str(target), extra_migrations=tables.MIGRATIONS)


def open_any(path: str, passphrase: Optional[str] = None) -> Store:
    """The store at ``path`` whatever its role: a tablet (with ``passphrase``) for sync, or a plain store.

    For the bundle commands, which run on both sides. Raises `UsageError`
    for an encrypted tablet without a passphrase.
    """
    if atrest.keyfile_path(path).exists():
        if passphrase is None:
            raise UsageError(f"{path} is an encrypted tablet: give --passphrase or set WANGGE_PASSPHRASE")
        return open_tablet(path, passphrase, for_sync=True)
    return open_plain(path)
