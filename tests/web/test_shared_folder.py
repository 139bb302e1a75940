"""Two servers of one master sharing one files folder, as the processes of `wangge serve --workers N` do.

Each test here forces one interleaving of the two, deterministically: the
second server reads the upload only after the first has applied the bundle
and removed it, or sees an answer the first wrote.
"""
from __future__ import annotations

import hashlib

from support import street as st
from wangge.sync.device import exchange as device_exchange
from wangge.sync.identity import store_keys
from wangge.sync.transport.client import MasterClient, Signer
from wangge.web.server import running


def _push(street, url):
    """A pushed bundle of grid 0's tablet with one new case, and the tablet's signer."""
    tablet = st.tablet(street, url, 0)
    st.sync(tablet, url)
    street.report(tablet, 0, "消防通道堵塞")
    keys = store_keys(tablet)
    device = device_exchange.DeviceSync(tablet, keys, device_exchange.trusted_master(tablet))
    return device.make_push(), Signer(tablet.device_id, keys.sign)


def test_a_server_whose_upload_the_other_answered_and_removed_meanwhile_answers_the_same_reply(tmp_path):
    street = st.street(tmp_path)
    first, second = street.app(), street.app()  # one master, one folder
    with running(first) as first_url, running(second) as second_url:
        push, signer = _push(street, first_url)
        sha = hashlib.sha256(push).hexdigest()
        applied_before, answered = first.sync.exchanges, {}
        read = second.sync.uploads.read

        def read_once_the_first_answered(name):
            # The first server applies the bundle, records its answer and removes the upload,
            # between the second's look at the answers and its read of the upload.
            with MasterClient(first_url, sleep=lambda s: None) as client:
                answered["first"] = client.exchange(push, signer=signer)
            return read(name)

        second.sync.uploads.read = read_once_the_first_answered
        with MasterClient(second_url, sleep=lambda s: None) as client:
            answered["second"] = client.exchange(push, signer=signer)

        assert not second.sync.uploads.has(sha)
        assert answered["second"] == answered["first"]
        assert (first.sync.exchanges - applied_before, second.sync.exchanges) == (1, 0)
        assert st.cases(street.store) == ["消防通道堵塞"]
    street.store.close()


def test_a_server_asked_about_an_upload_the_other_answered_says_so(tmp_path):
    street = st.street(tmp_path)
    first, second = street.app(), street.app()
    with running(first) as first_url, running(second) as second_url:
        push, signer = _push(street, first_url)
        sha = hashlib.sha256(push).hexdigest()
        with MasterClient(first_url, sleep=lambda s: None) as client:
            reply, record = client.exchange(push, signer=signer)
        with MasterClient(second_url, sleep=lambda s: None) as client:
            status = client.http.get(f"/uploads/{sha}").json()
            again = client.http.post(f"/exchange/{sha}").json()
    assert status == {"received": 0, "answered": True}
    assert again == record and second.sync.exchanges == 0
    street.store.close()
