"""Enrollment: a signed request, as text for a QR code, approved, revoked, listed."""
from __future__ import annotations

import dataclasses

import pytest

from support.transport import Tablet
from wangge.core import store
from wangge.core.errors import UsageError
from wangge.sync import enrollment
from wangge.sync.enrollment import EnrollmentError, EnrollmentRequest


def test_request_survives_the_qr_text_and_verifies():
    request = Tablet("a").request
    text = request.to_text()
    assert text.startswith("wangge-enroll:1:") and "\n" not in text and len(text) < 400
    again = EnrollmentRequest.from_text(text)
    assert again == request
    again.verify()


def test_a_request_with_someone_elses_key_is_refused():
    mine, theirs = Tablet("a").request, Tablet("b").request
    forged = dataclasses.replace(mine, sign_key=theirs.sign_key)
    with pytest.raises(EnrollmentError, match="not signed by its own key"):
        forged.verify()
    with pytest.raises(EnrollmentError, match="damaged"):
        EnrollmentRequest.from_text(mine.to_text()[:-7] + "!!!")


def test_approve_binds_a_worker_and_revoke_sticks(tmp_path):
    tablet = Tablet("a")
    with store.init(str(tmp_path / "m.db"), "master") as master:
        with master.write() as rec:
            rec.insert("worker", {"id": "w1", "name": "王芳", "role": "网格员"})
            assert enrollment.submit(rec, tablet.request) == "pending"
            assert enrollment.submit(rec, tablet.request) == "pending"  # idempotent
            with pytest.raises(UsageError, match="no worker '李四'"):
                enrollment.approve(rec, tablet.device_id, "李四")
            enrollment.approve(rec, tablet.device_id, "王芳")
        with master.read() as conn:
            [row] = enrollment.list_devices(conn)
        assert (row["status"], row["worker"], row["fingerprint"]) == ("active", "王芳", tablet.request.fingerprint)
        with master.write() as rec:
            enrollment.revoke(rec, tablet.device_id)
            with pytest.raises(EnrollmentError, match="revoked"):
                enrollment.approve(rec, tablet.device_id, "王芳")
            other = Tablet("a")  # same device id, other keys: a cloned or reset tablet
            with pytest.raises(EnrollmentError, match="other keys"):
                enrollment.submit(rec, other.request)
