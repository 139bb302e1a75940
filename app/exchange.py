"""Exchanges between a tablet and its master: over HTTP, or as bundle files on a USB stick.

A sync over HTTP pushes the tablet's changes, applies the master's reply,
then moves photos, and renews the tablet's lease. Without a network the
tablet exports its push to a file, the office imports it and writes the
reply next to it, and the tablet imports the reply. Either way nothing is
lost on failure: the tablet keeps its changes until a signed reply
acknowledges them, so the same exchange can be run again.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from wangge.core.errors import UsageError
from wangge.core.ruleset import Ruleset
from wangge.core.store import Store
from wangge.sync.transport import files
from wangge.sync.transport.fieldwork import known_master, tablet_session
from wangge.sync.identity import adopt_keys, store_keys
from wangge.sync.keys import DeviceKeys
from wangge.sync.device.tablet import tablet_photos
from wangge.sync.device import exchange as device_exchange
from wangge.sync.master import exchange as master_exchange


@dataclass(frozen=True)
class Imported:
    """A bundle imported at the master: what happened and where its reply was written."""

    summary: str
    reply: Path


def keys_for(store: Store, keys_path: Optional[str | Path] = None) -> DeviceKeys:
    """The keys ``store`` exchanges bundles with: its own, or those of the key file ``keys_path``,
    which become its own if it has none yet.

    Raises `UsageError` for an unreadable key file, `SyncError` if the store
    already keeps other keys (its enrollment registered those).
    """
    if keys_path is None:
        return store_keys(store)
    try:
        given = DeviceKeys.from_bytes(Path(keys_path).read_bytes())
    except OSError as exc:
        raise UsageError(f"cannot read key file {keys_path}: {exc.strerror}") from None
    return adopt_keys(store, given)


def sync_over_http(store: Store, database: str | Path, master_url: str, *, progress: bool = False) -> str:
    """One sync of the tablet ``store`` (its file at ``database``) with the master at ``master_url``.

    Photos go both ways; the reply itself renews the lease
    (`atrest.accept_reply_lease`), for the ruleset's ``lease`` days as the
    master last sent it. Returns what moved, in one line.
    Raises `UsageError` for a malformed URL, `SyncError` in one line with
    nothing lost.
    """
    from wangge.sync.transport.client import MasterClient, ProgressBar, check_master_url

    master_url = check_master_url(master_url)
    bar = ProgressBar() if progress else None
    with MasterClient(master_url, on_progress=bar.update if bar else None) as client:
        if bar:
            bar.__enter__()
        try:
            summary = tablet_session(store, client, photos=tablet_photos(store, database))
        finally:
            if bar:
                bar.__exit__(None, None, None)
    return summary


def export_push(store: Store, out: str | Path, keys: Optional[DeviceKeys] = None) -> int:
    """Write the tablet's unsent changes to the bundle file ``out`` (atomically); return its size.

    Raises `UsageError` on a master store or for an unwritable ``out``, `SyncError`
    if the tablet knows no master yet; the tablet is unchanged then.
    """
    if store.role == "master":
        raise UsageError(f"{store.url} is a master store: a tablet exports its push; the master answers it "
                         f"by importing it")
    # Written inside the push's transaction: a failed write leaves the tablet as it was.
    data = device_exchange.DeviceSync(store, keys or store_keys(store), known_master(store)).make_push(
        deliver=lambda made: files.write_atomic(out, made))
    return len(data)


def import_push(store: Store, bundle_file: str | Path, ruleset: Callable[[], Optional[Ruleset]], *,
                reply_to: Optional[str | Path] = None, keys: Optional[DeviceKeys] = None) -> Imported:
    """At the master: apply a tablet's push from ``bundle_file`` and write the reply (default: beside it).

    ``ruleset()`` gives the ruleset to authorise with. The reply's place is
    checked first: an error after the bundle was applied would leave the
    office unsure. Raises `UsageError` for an unreadable bundle or an
    unwritable reply, `SyncError` for a refused bundle (nothing applied).
    """
    data = files.read_bundle(bundle_file)
    target = files.check_target(reply_to or f"{bundle_file}.reply")
    reply, summary = master_exchange.MasterSync(store, keys or store_keys(store), ruleset=ruleset()).exchange(data)
    try:
        files.write_atomic(target, reply)
    except UsageError as exc:
        raise UsageError(f"{summary}, but {exc}: import the same bundle again to write its reply") from None
    return Imported(summary, target)


def import_reply(store: Store, bundle_file: str | Path, keys: Optional[DeviceKeys] = None) -> device_exchange.DeviceResult:
    """On a tablet: apply the master's reply from ``bundle_file``.

    Raises `UsageError` for an unreadable file, `SyncError` for a reply that
    does not verify or answers another push; the tablet is unchanged then.
    """
    data = files.read_bundle(bundle_file)
    return device_exchange.DeviceSync(store, keys or store_keys(store), device_exchange.trusted_master(store)).accept_reply(data)
