"""`wangge serve --workers 2` on PostgreSQL, over real HTTP: two processes racing on one tablet's bundles.

The master runs as `wangge serve` does, in a subprocess; the tablets are
real (`DeviceSync`), their bundles posted with the real client. A pair of
kept-alive connections answered by two different processes (each names its
process in ``GET /health``) posts the same bundle, or two bundles of one
tablet, at once. Whatever the order, every op the tablet recorded is in
the master's log exactly once, and the tablet ends in step with it.
"""
from __future__ import annotations

import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from support import office as of
from support import street as st
from support.running import Running
from support.transport import wait_for
from wangge.core import casework
from wangge.core.errors import SyncError, UsageError
from wangge.core.models import Case, Op
from wangge.sync.device import exchange as device_exchange
from wangge.sync.identity import store_keys
from wangge.sync.transport.client import MasterClient, Signer
from wangge.web import workers

_op, _case = Op.__table__, Case.__table__


@pytest.fixture
def served(pg_url, tmp_path):
    """A TEDA street on PostgreSQL served by `wangge serve --workers 2`: (street, url, the server)."""
    street = of._street_at(pg_url, tmp_path)
    store_keys(street.store)  # the master's key file, made once before two processes read it
    server = Running("serve", pg_url, "--workers", "2", "--port", "0", cwd=tmp_path)
    try:
        url = server.find(r"serving .* on (http://\S+) in 2 processes").group(1)
        wait_for(lambda: len(set(_started(server))) == 2, "both processes to start", timeout=90)
        yield street, url, server
    finally:
        assert server.stop() == 0, "\n".join(server.lines[-20:])
        street.store.close()


def _started(server: Running) -> list[str]:
    return [line.split("[")[-1].rstrip("]") for line in list(server.lines) if "Started server process" in line]


def _two_processes(url: str) -> tuple[MasterClient, MasterClient]:
    """Two clients whose kept-alive connections are answered by different processes."""
    first = MasterClient(url, sleep=lambda s: None)
    pid = first.health()["process"]
    for _ in range(200):
        other = MasterClient(url, sleep=lambda s: None)
        if other.health()["process"] != pid:
            return first, other
        other.close()
    raise AssertionError("200 connections in a row were all answered by one process")


def _race(*calls):
    """Run ``calls`` at once, from one barrier; each one's result, or the `SyncError` it raised."""
    barrier, results = threading.Barrier(len(calls)), [None] * len(calls)

    def run(n, call):
        barrier.wait(30)
        try:
            results[n] = call()
        except SyncError as exc:
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n, call)) for n, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def _tablet(street, url):
    """Grid 0's tablet, enrolled, approved and synced once: (its store, its `DeviceSync`, its signer)."""
    tablet = st.tablet(street, url, 0)
    st.sync(tablet, url)
    keys = store_keys(tablet)
    device = device_exchange.DeviceSync(tablet, keys, device_exchange.trusted_master(tablet))
    return tablet, device, Signer(tablet.device_id, keys.sign)


def _own_ops(store, device_id: str) -> list[str]:
    with store.read() as conn:
        return list(conn.execute(select(_op.c.op_id).where(_op.c.device == device_id, _op.c.kind != "mark")
                                 .order_by(_op.c.seq)).scalars())


def _report(street, tablet, text: str, minutes: int) -> None:
    with tablet.write(actor=street.workers[0]) as rec:
        casework.report_case(rec, street.ruleset, item="0103", grid_id=street.grids[0], channel="巡查",
                             reporter_id=street.workers[0], at=st.PATROL + timedelta(minutes=minutes),
                             description=text, photos=["sha256:p"])


def _master_holds_once(street, tablet) -> list[str]:
    """The tablet's own ops as the master's log holds them, checked to be each there exactly once."""
    sent = _own_ops(tablet, tablet.device_id)
    held = _own_ops(street.store, tablet.device_id)
    assert sorted(held) == sorted(sent), "the master's log lost or doubled an op of the tablet"
    return held


@pytest.mark.postgres
def test_one_bundle_posted_to_two_processes_at_once_is_applied_once_and_both_get_its_reply(served):
    street, url, server = served
    tablet, device, signer = _tablet(street, url)
    for n in range(3):
        _report(street, tablet, f"井盖缺失{n}", n)
    push = device.make_push()

    first, second = _two_processes(url)
    with first, second:
        answers = _race(lambda: first.exchange(push, signer=signer), lambda: second.exchange(push, signer=signer))
    assert not [a for a in answers if isinstance(a, SyncError)], answers
    (reply, record), (again, record_again) = answers
    assert reply == again and record == record_again

    assert not device.accept_reply(reply).again
    _master_holds_once(street, tablet)
    with street.store.read() as conn:
        described = sorted(conn.execute(select(_case.c.description)).scalars())
    assert described == ["井盖缺失0", "井盖缺失1", "井盖缺失2"]
    _in_step(tablet, url)


@pytest.mark.postgres
def test_two_bundles_of_one_tablet_racing_on_two_processes_lose_nothing_and_apply_nothing_twice(served):
    street, url, server = served
    tablet, device, signer = _tablet(street, url)
    _report(street, tablet, "路灯不亮", 0)
    older = device.make_push()  # its reply lost, say: the tablet pushes again with one more case
    _report(street, tablet, "垃圾满溢", 1)
    newer = device.make_push()

    first, second = _two_processes(url)
    with first, second:
        old_answer, new_answer = _race(lambda: first.exchange(older, signer=signer),
                                       lambda: second.exchange(newer, signer=signer))
    assert not isinstance(new_answer, SyncError), new_answer
    if isinstance(old_answer, SyncError):  # the newer one went first: the older is a replay now
        assert "not above the last accepted" in str(old_answer)
    device.accept_reply(new_answer[0])

    _master_holds_once(street, tablet)
    with street.store.read() as conn:
        counted = dict(conn.execute(select(_case.c.description, func.count()).group_by(_case.c.description)).all())
    assert counted == {"路灯不亮": 1, "垃圾满溢": 1}
    _in_step(tablet, url)


def _in_step(tablet, url) -> None:
    """One more sync of the tablet finds nothing left to send and its scope's checksums equal."""
    line = st.sync(tablet, url)
    assert "0 ops acknowledged" in line and "repair" not in line, line


def test_several_workers_on_an_sqlite_master_are_refused_before_the_port_is_taken(tmp_path):
    done = subprocess.run([sys.executable, "-m", "wangge", "init", "office.db", "--role", "master"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([sys.executable, "-m", "wangge", "serve", "office.db", "--workers", "2", "--port", "0"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "serving" not in done.stdout
    assert done.stderr.strip().splitlines()[-1] == (
        "Error: --workers 2: an SQLite master has one writer, so more processes would only queue for it; serve it "
        "with --workers 1 (the default), or run the district's master on PostgreSQL (docs/deploy.md)")


@pytest.mark.parametrize("count, backend, says", [
    (0, "postgresql", "--workers 0: expected a number of processes, at least 1"),
    (3, "sqlite", "--workers 3: an SQLite master has one writer"),
])
def test_a_number_of_workers_the_store_cannot_have_is_refused(count, backend, says):
    with pytest.raises(UsageError) as refused:
        workers.check(count, backend)
    assert str(refused.value).startswith(says)

