"""Encryption at rest and the lease, on real SQLCipher files."""
from __future__ import annotations

import json

import pytest

from wangge.core import store
from wangge.core.errors import StoreError, UsageError
from wangge.sync.device import atrest

FAST_N = 2**10  # scrypt work factor for tests; production tunes to ~0.5 s


@pytest.fixture
def tablet(tmp_path):
    path = tmp_path / "tablet.db"
    atrest.init_tablet(path, "正确的口令 right", n=FAST_N).close()
    return path


def test_right_passphrase_opens_and_data_is_not_plain(tablet):
    with atrest.open_tablet(tablet, "正确的口令 right") as opened:
        with opened.write(actor="w") as rec:
            rec.insert("worker", {"name": "王芳", "role": "网格员"})
    raw = tablet.read_bytes()
    assert not raw.startswith(b"SQLite format 3")
    assert "王芳".encode() not in raw and b"worker" not in raw


def test_wrong_passphrase_cannot_open(tablet):
    with pytest.raises(atrest.WrongPassphrase, match="wrong passphrase"):
        atrest.open_tablet(tablet, "wrong")


def test_without_key_or_with_wrong_key_the_store_stays_closed(tablet):
    with pytest.raises(UsageError, match="is an encrypted tablet store"):
        store.open(str(tablet))
    with pytest.raises(StoreError, match="not a database"):
        store.open(str(tablet), key=b"\x01" * 32)


def test_new_passphrase_rewraps_the_same_key(tablet):
    atrest.change_passphrase(tablet, "正确的口令 right", "a new passphrase")
    atrest.open_tablet(tablet, "a new passphrase").close()
    with pytest.raises(atrest.WrongPassphrase):
        atrest.open_tablet(tablet, "正确的口令 right")


def test_tampered_work_factor_is_refused(tablet):
    keyfile = atrest.keyfile_path(tablet)
    data = json.loads(keyfile.read_text())
    data["n"] = 2
    keyfile.write_text(json.dumps(data))
    with pytest.raises(StoreError, match="scrypt N=2"):
        atrest.open_tablet(tablet, "正确的口令 right")


def test_scrypt_is_tuned_towards_half_a_second():
    def measure(n):  # 0.1 s at 2^14, linear in N
        return 0.1 * n / 2**14

    assert atrest.tune_scrypt_n(0.5, measure=measure) == 2**16  # 0.4 s, nearer than 0.8 s
    assert atrest.tune_scrypt_n(0.3, measure=measure) == 2**15  # 0.2 s, nearer than 0.4 s


def test_lease_locks_a_tablet_that_has_not_synced(tablet):
    day = atrest.DAY_MS
    with atrest.open_tablet(tablet, "正确的口令 right", now_ms=0) as opened:
        with opened.write() as rec:
            atrest.renew_lease(rec.conn, now_ms=10 * day, lease_days=3)
    atrest.open_tablet(tablet, "正确的口令 right", now_ms=13 * day).close()
    with pytest.raises(atrest.LeaseExpired, match="lease is 3 days"):
        atrest.open_tablet(tablet, "正确的口令 right", now_ms=13 * day + 1)
    # a sync is how the lease is renewed, so it is always allowed
    atrest.open_tablet(tablet, "正确的口令 right", now_ms=20 * day, for_sync=True).close()
