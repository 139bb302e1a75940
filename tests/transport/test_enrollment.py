"""Enrollment: a signed request, as text for a QR code, approved, revoked, listed."""
from __future__ import annotations

import base64
import dataclasses
import json

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


def _card_text(fields: dict) -> str:
    raw = json.dumps(fields).encode()
    return enrollment.CARD_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _good_card(device_id: str) -> dict:
    master = Tablet("office")  # any Ed25519 and X25519 keys will do for the master's
    return dataclasses.asdict(enrollment.make_card("master-1", master.request.sign_key, master.request.box_key,
                                                   device_id, master.key.sign))


def test_a_master_card_survives_its_text_and_verifies():
    card = _good_card("dev-a")
    assert dataclasses.asdict(enrollment.MasterCard.from_text(_card_text(card), "dev-a")) == card


@pytest.mark.parametrize("change, words", [
    ({"master_id": 1, "sign_key": 2}, "every field must be text, but master_id is int, sign_key is int"),
    ({"sign_key": "not base64!"}, "for device dev-a is damaged: sign_key is not base64"),
    ({"box_key": base64.b64encode(b"short").decode()}, "box_key must be a 32-byte public key, got 5 bytes"),
    ({"signature": "%%"}, "signature is not base64"),
    ({"master_id": ""}, "master_id is empty"),
    ({"extra": "x"}, "expected exactly the fields"),
], ids=["numbers for text", "a key not base64", "a short key", "a signature not base64", "no master id",
        "an extra field"])
def test_a_damaged_master_card_says_so_and_what_is_wrong(change, words):
    text = _card_text({**_good_card("dev-a"), **change})
    with pytest.raises(EnrollmentError) as caught:
        enrollment.MasterCard.from_text(text, "dev-a")
    message = str(caught.value)
    assert "master card" in message and "damaged" in message and words in message, message
    assert "enrollment request" not in message


@pytest.mark.parametrize("text", [enrollment.CARD_PREFIX + "!!!", enrollment.CARD_PREFIX + "WzEsMl0"],
                         ids=["not base64", "a JSON list"])
def test_a_master_card_whose_text_does_not_decode_is_damaged(text):
    with pytest.raises(EnrollmentError, match="master card is damaged"):
        enrollment.MasterCard.from_text(text, "dev-a")


def test_a_master_card_signed_by_another_key_is_refused():
    card = {**_good_card("dev-a"), "master_id": "someone-else"}  # altered after signing
    with pytest.raises(EnrollmentError, match="not signed by the master's own key"):
        enrollment.MasterCard.from_text(_card_text(card), "dev-a")


def test_a_request_with_a_key_that_is_not_base64_names_the_request():
    forged = dataclasses.replace(Tablet("a").request, box_key="not base64!")
    with pytest.raises(EnrollmentError, match="^enrollment request box_key is not base64$"):
        forged.verify()
