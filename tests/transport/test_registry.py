"""The device registry as a snapshot signed by the master: versioned, checkable, served over HTTP."""
from __future__ import annotations

import base64
import json

import httpx
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st_

from support import street as st
from wangge.cli import cli
from wangge.sync import enrollment
from wangge.sync.master import registry
from wangge.sync.identity import store_keys
from wangge.sync.keys import DeviceKeys


@pytest.fixture
def street(served_street):
    return served_street


def _snapshot(built) -> bytes:
    signing = store_keys(built.store)
    with built.store.read() as conn:
        return registry.snapshot(conn, built.store.device_id, signing)


def test_the_registry_served_over_http_is_signed_and_grows_with_every_change(street):
    built, url = street
    tablet = st.tablet(built, url, 0)
    master = store_keys(built.store).public
    served = httpx.get(url + "/registry")
    assert served.status_code == 200
    first = registry.verify(served.content, master)
    assert [(d["id"], d["status"]) for d in first["devices"]] == [(tablet.device_id, "active")]
    with built.store.write(actor="office") as rec:
        enrollment.revoke(rec, tablet.device_id)
    second = registry.verify(httpx.get(url + "/registry").content, master, newer_than=first["version"])
    assert second["version"] > first["version"] and second["devices"][0]["status"] == "revoked"
    with pytest.raises(registry.RegistryError, match="is not newer than .*an old list replayed"):
        registry.verify(served.content, master, newer_than=second["version"])
    tablet.close()


def test_a_tampered_or_foreign_snapshot_is_refused(street):
    built, url = street
    st.tablet(built, url, 0).close()
    data = _snapshot(built)
    outer = json.loads(data)
    outer["snapshot"] = outer["snapshot"].replace('"active"', '"revoked"')
    master = store_keys(built.store).public
    with pytest.raises(registry.RegistryError, match="signature of the registry snapshot does not verify"):
        registry.verify(json.dumps(outer).encode(), master)
    with pytest.raises(registry.RegistryError, match="signature of the registry snapshot does not verify"):
        registry.verify(data, DeviceKeys.generate().public)
    with pytest.raises(registry.RegistryError, match="not a registry snapshot"):
        registry.verify(b"{}", master)


def test_the_office_writes_the_snapshot_to_a_file(street, tmp_path):
    built, url = street
    st.tablet(built, url, 1).close()
    built.store.close()
    out = tmp_path / "registry.json"
    result = CliRunner().invoke(cli, ["device", "registry", str(tmp_path / "master.db"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "(1 devices), signed by" in result.output
    listed = CliRunner().invoke(cli, ["device", "list", str(tmp_path / "master.db")])
    body = json.loads(json.loads(out.read_bytes())["snapshot"])
    assert f"registry version {body['version']}" in listed.output


keys = DeviceKeys.generate()


@settings(max_examples=30, deadline=None)
@given(st_.lists(st_.tuples(st_.text(min_size=1, max_size=12), st_.sampled_from(["pending", "active", "revoked"])),
                 max_size=5), st_.integers(1, 2**62))
def test_a_snapshot_round_trips_whatever_the_names(devices, version):
    body = {"format": 1, "master": "m", "version": version, "issued": "2026-11-22T00:00:00+00:00",
            "devices": [{"id": f"d{n}", "name": name, "sign_key": "", "box_key": "", "status": status, "worker": None}
                        for n, (name, status) in enumerate(devices)]}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    data = json.dumps({"snapshot": text, "signature": base64.b64encode(keys.sign(text.encode())).decode()}).encode()
    assert registry.verify(data, keys.public) == body
