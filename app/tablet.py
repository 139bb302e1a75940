"""`Tablet`: a field worker's encrypted tablet store, and what the worker does on it.

    with Tablet.open("tablet.db", passphrase) as tablet:
        home = tablet.record_household(by=me, grid="TF.03", address="3-201", fields={"户主": "王"})
        tablet.record_visit(by=me, household=home, minutes=20, purpose="走访")
        reported = tablet.report_case(by=me, item="0103", grid="TF.03", channel="巡查", photos=[sha])
        tablet.move_case(reported.number, "上报", role="网格员", by=me, evidence=["photo"])
        print(tablet.sync("http://10.0.0.2:8470"))

The database is SQLCipher-encrypted under a key unwrapped from the key
file beside it (``tablet.db.key``) with the worker's passphrase; photos are
sealed in ``tablet.db.files``. The ruleset is the one the master sent at
the last sync. A tablet whose lease ran out opens only to sync.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from wangge.app import devices, exchange, households, stores
from wangge.app.handle import Handle
from wangge.core.store import Store
from wangge.sync.device.exchange import DeviceResult
from wangge.sync.device.tablet import SealedBlobStore, tablet_photos


class Tablet(Handle):
    """A tablet store, open. Get one with `Tablet.open` or `Tablet.create`."""

    NO_RULESET = "this tablet has no ruleset yet: sync with the master first (`wangge sync --master URL`)"

    def __init__(self, store: Store, path: str | Path):
        super().__init__(store)
        self.path = Path(path)
        self._photos: Optional[SealedBlobStore] = None

    @classmethod
    def open(cls, path: str | Path, passphrase: str, *, for_sync: bool = False,
             now_ms: Optional[Callable[[], int]] = None) -> "Tablet":
        """Unlock and open the tablet store at ``path``, migrated.

        Unless ``for_sync``, a tablet whose lease ran out refuses to open
        (`LeaseExpired`). Raises `WrongPassphrase`, `UsageError` for a missing
        or unencrypted store.
        """
        return cls(stores.open_tablet(path, passphrase, for_sync=for_sync, now_ms=now_ms), path)

    @classmethod
    def create(cls, path: str | Path, passphrase: str, *, scrypt_n: Optional[int] = None,
               device_id: Optional[str] = None, now_ms: Optional[Callable[[], int]] = None) -> "Tablet":
        """Create an encrypted tablet store at ``path`` (and its key file), open.

        Raises `UsageError` for an empty passphrase or a taken path.
        """
        return cls(stores.create_tablet(path, passphrase, scrypt_n=scrypt_n, device_id=device_id, now_ms=now_ms),
                   path)

    @property
    def photos(self) -> SealedBlobStore:
        """The tablet's sealed photo store: ``photos.put(data)`` returns the photo's SHA-256 name."""
        if self._photos is None:
            self._photos = tablet_photos(self.store, self.path)
        return self._photos

    def _blobs(self) -> SealedBlobStore:
        return self.photos

    # -- households, residents, visits ---------------------------------------------------------

    def record_household(self, *, by: str, grid: str, address: str = "", head_name: str = "", members: int = 0,
                         building: Optional[str] = None, fields: Optional[Mapping[str, Any]] = None) -> str:
        """Record a household in grid ``grid`` (code or id); return its id. See `wangge.app.households`."""
        return households.record_household(self.store, self.installed_ruleset(), by=by, grid=grid, address=address,
                                           head_name=head_name, members=members, building=building, fields=fields)

    def edit_household(self, household: str, changes: Mapping[str, Any], *, by: str) -> None:
        """Change some fields of ``household``; only those are checked and sent."""
        households.edit_household(self.store, self.installed_ruleset(), household, changes, by=by)

    def record_resident(self, *, by: str, household: str, name: str, id_number: str = "", phone: str = "",
                        fields: Optional[Mapping[str, Any]] = None) -> str:
        """Record a resident of ``household``; return the resident's id."""
        return households.record_resident(self.store, by=by, household=household, name=name, id_number=id_number,
                                          phone=phone, fields=fields)

    def edit_resident(self, resident: str, changes: Mapping[str, Any], *, by: str) -> None:
        """Change some fields of ``resident``."""
        households.edit_resident(self.store, resident, changes, by=by)

    def record_visit(self, *, by: str, household: str, at: Optional[datetime] = None, minutes: int = 0,
                     purpose: str = "", notes: str = "", fields: Optional[Mapping[str, Any]] = None) -> str:
        """Record worker ``by``'s visit to ``household``; return its id. Visits are never edited."""
        return households.record_visit(self.store, self.installed_ruleset(), by=by, household=household, at=at,
                                       minutes=minutes, purpose=purpose, notes=notes, fields=fields)

    # -- enrollment ----------------------------------------------------------------------------

    def enroll(self, name: str, master_url: Optional[str] = None) -> devices.Enrolled:
        """This tablet's enrollment request named ``name``, sent to ``master_url`` if given."""
        return devices.enroll(self.store, name, master_url)

    def trust(self, card: str) -> str:
        """Learn the master from the card the office's approval printed; return the master's id."""
        return devices.trust(self.store, card)

    # -- exchanges -----------------------------------------------------------------------------

    def sync(self, master_url: str, *, progress: bool = False) -> str:
        """Sync with the master at ``master_url`` over HTTP, photos included; say what moved."""
        return exchange.sync_over_http(self.store, self.path, master_url, progress=progress)

    def export_bundle(self, out: str | Path) -> int:
        """Write the unsent changes to the bundle file ``out``, for a USB stick; return its size."""
        return exchange.export_push(self.store, out)

    def import_bundle(self, bundle_file: str | Path) -> DeviceResult:
        """Apply the master's reply from ``bundle_file``."""
        return exchange.import_reply(self.store, bundle_file)
