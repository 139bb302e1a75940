"""The commands a street office and a tablet run, as processes: serve, enroll, approve, export, sync, revoke.

`wangge serve --port 0` runs the real master (rules watched, inbox watched) in
its own process; every other step is a `wangge` command, as a user types it.
"""
from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest

from support.transport import wait_for
from wangge import rulesets

PASSPHRASE = {"WANGGE_PASSPHRASE": "王芳的口令 tablet"}


def _run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "wangge", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def _first_line(proc, timeout: float = 30.0) -> str:
    """The server's first stdout line, within ``timeout`` seconds."""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sel.select(timeout=deadline - time.monotonic()):
                return proc.stdout.readline()
    raise AssertionError(f"wangge serve printed nothing in {timeout:.0f} s")


@contextmanager
def _serving(*args):
    proc = subprocess.Popen([sys.executable, "-m", "wangge", "serve", *args, "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = _first_line(proc)
        assert " serving " in line, line + proc.stderr.read()
        yield line.split(" on ")[-1].strip()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_tablet_enrolls_syncs_by_usb_and_http_and_is_revoked_with_the_commands_alone(tmp_path):
    office, tablet, inbox = str(tmp_path / "office.db"), str(tmp_path / "tablet.db"), tmp_path / "inbox"
    teda = str(rulesets.path("teda"))
    assert _run("init", office, "--role", "master", "--rules", teda).returncode == 0
    _run("grid", "add", office, "TF", "--level", "社区", "--name", "泰丰社区")
    _run("grid", "add", office, "TF.01", "--level", "网格", "--name", "泰丰1网格", "--upper", "TF")
    assert _run("worker", "add", office, "王芳", "--role", "网格员", "--grid", "TF.01").returncode == 0
    with _serving(office, "--rules", teda, "--inbox", str(inbox)) as url:
        enrolled = _run("device", "enroll", tablet, "--name", "王芳的平板", "--master", url, env=PASSPHRASE)
        assert enrolled.returncode == 0 and "sent to" in enrolled.stdout, enrolled.stderr
        device_id = enrolled.stdout.split()[1]
        approved = _run("device", "approve", office, device_id, "--worker", "王芳")
        assert approved.returncode == 0 and "wangge-master:1:" in approved.stdout

        # No extra step: right after approval the tablet can write a USB bundle...
        push = tmp_path / "push.wgb"
        exported = _run("bundle", "export", tablet, "--out", str(push), env=PASSPHRASE)
        assert exported.returncode == 0, exported.stderr
        (inbox / "push.wgb").write_bytes(push.read_bytes())  # ...dropped in the master's watched inbox
        reply = wait_for(lambda: next((inbox / "replies").glob("push.wgb.reply"), None), "the inbox's reply")
        imported = _run("bundle", "import", tablet, str(reply), env=PASSPHRASE)
        assert imported.returncode == 0 and "received" in imported.stdout, imported.stderr

        # ...or sync over HTTP.
        synced = _run("sync", tablet, "--master", url, env=PASSPHRASE)
        assert synced.returncode == 0 and "ops acknowledged" in synced.stdout and "photos: 0 sent" in synced.stdout
        wrong = _run("sync", tablet, "--master", url, env={"WANGGE_PASSPHRASE": "guess"})
        assert wrong.returncode == 3 and wrong.stderr.strip().startswith("Error: wrong passphrase")

        assert _run("device", "revoke", office, device_id).returncode == 0
        refused = _run("sync", tablet, "--master", url, env=PASSPHRASE)
        assert refused.returncode == 1 and "revoked" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    listed = _run("device", "list", office)
    assert "王芳的平板" in listed.stdout and "revoked" in listed.stdout


def _self_signed(folder):
    """A certificate for 127.0.0.1 and its key, as PEM files, made the way an office makes its own."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "街道办")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "office.pem", folder / "office.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_a_certificate_and_its_key_load_for_serving_and_mismatched_ones_are_named(tmp_path):
    from wangge.core.errors import UsageError
    from wangge.sync.transport.fieldwork import check_tls

    cert, key = _self_signed(tmp_path)
    check_tls(str(cert), str(key))
    other = tmp_path / "other"
    other.mkdir()
    _, other_key = _self_signed(other)
    with pytest.raises(UsageError, match=f"cannot serve TLS with certificate {cert} and key {other_key}"):
        check_tls(str(cert), str(other_key))
    with pytest.raises(UsageError, match="needs its certificate"):
        check_tls(None, str(key))
