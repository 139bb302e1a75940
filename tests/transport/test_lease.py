"""The lease: renewed by every reply a tablet accepts (HTTP or USB), checked at every open, not undone by the clock."""
from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from support import street as st
from wangge.cli import cli
from wangge.sync import enrollment, protocol
from wangge.sync.device import atrest
from wangge.sync.log import tables
from wangge.sync.identity import store_keys
from wangge.sync.device.tablet import enrollment_request
from wangge.sync.device import exchange as device_exchange

PASSPHRASE = "王芳的口令 tablet"
DAY = atrest.DAY_MS


def wangge(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], env={"WANGGE_PASSPHRASE": PASSPHRASE})


@pytest.fixture
def usb_tablet(tmp_path):
    """A master and an approved encrypted tablet that knows it, made 30 days ago, never synced: (street, path)."""
    built = st.street(tmp_path)
    path = tmp_path / "tablet.db"
    made = int(time.time() * 1000) - 30 * DAY
    with atrest.init_tablet(path, PASSPHRASE, n=atrest.MIN_SCRYPT_N, now_ms=made,
                            extra_migrations=tables.MIGRATIONS) as tablet:
        with built.store.write(actor="office") as rec:
            enrollment.submit(rec, enrollment_request(tablet, "usb"))
            enrollment.approve(rec, tablet.device_id, built.workers[0])
        device_exchange.trust_master(tablet, protocol.Peer(built.store.device_id, store_keys(built.store).public))
    built.store.close()
    yield built, path


def _usb_round_trip(folder, path) -> None:
    push = folder / "push.wgb"
    for args in (("bundle", "export", path, "--out", push), ("bundle", "import", folder / "master.db", push),
                 ("bundle", "import", path, folder / "push.wgb.reply")):
        done = wangge(*args)
        assert done.exit_code == 0, done.output


def test_a_tablet_that_never_synced_locks_when_its_first_lease_runs_out(usb_tablet):
    built, path = usb_tablet
    with pytest.raises(atrest.LeaseExpired, match="last synced 30.0 days ago"):
        atrest.open_tablet(path, PASSPHRASE)


def test_a_usb_round_trip_renews_the_lease_to_the_masters_clock(usb_tablet):
    built, path = usb_tablet
    _usb_round_trip(built.folder, path)
    with atrest.open_tablet(path, PASSPHRASE) as tablet:  # open for work again
        lease, left = atrest.lease_of(tablet)
    assert lease.lease_days == built.ruleset.settings.lease_days
    assert lease.lease_days - 1 < left <= lease.lease_days
    later = int(time.time() * 1000) + (lease.lease_days + 1) * DAY
    with pytest.raises(atrest.LeaseExpired):
        atrest.open_tablet(path, PASSPHRASE, now_ms=later)


def test_setting_the_clock_back_does_not_reopen_a_locked_tablet(usb_tablet):
    built, path = usb_tablet
    _usb_round_trip(built.folder, path)
    now = int(time.time() * 1000)
    days = built.ruleset.settings.lease_days
    with pytest.raises(atrest.LeaseExpired):
        atrest.open_tablet(path, PASSPHRASE, now_ms=now + (days + 5) * DAY)  # the true date, weeks on
    for back in (now + DAY, now - 365 * DAY):  # the worker sets the tablet's clock back
        with pytest.raises(atrest.LeaseExpired, match=f"lease is {days} days"):
            atrest.open_tablet(path, PASSPHRASE, now_ms=back)
    _usb_round_trip(built.folder, path)  # only a sync reopens it
    atrest.open_tablet(path, PASSPHRASE).close()


def test_an_http_sync_renews_the_lease_with_the_command(tmp_path):
    built = st.street(tmp_path)
    from wangge.web.server import running

    with running(built.app()) as url:
        tablet = st.tablet(built, url, 0, encrypted=True)
        path = tmp_path / "tablet0.db"
        tablet.close()
        old = int(time.time() * 1000) - 40 * DAY
        with atrest.open_tablet(path, "passphrase", for_sync=True) as opened, opened.write() as rec:
            atrest.renew_lease(rec.conn, old)  # as if it last synced 40 days ago
        with pytest.raises(atrest.LeaseExpired):
            atrest.open_tablet(path, "passphrase")
        done = CliRunner().invoke(cli, ["sync", str(path), "--master", url], env={"WANGGE_PASSPHRASE": "passphrase"})
        assert done.exit_code == 0, done.output
    with atrest.open_tablet(path, "passphrase") as opened:
        assert atrest.lease_of(opened)[1] > built.ruleset.settings.lease_days - 1
    built.store.close()
