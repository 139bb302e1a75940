"""Open311 GeoReport v2 as a city hotline's system uses it, over real HTTP on loopback.

The client (tests/support/georeport.py) is written from the specification
alone; the element and field names checked here are the specification's
documented examples'.
"""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from support.georeport import Client, GeoReportError
from wangge.app import Office, gridmap
from wangge.core import apikeys
from wangge.core.models import Case
from wangge.web import server
from wangge.web.open311 import PREFIX, open311_app

# The documented example of a GET service requests answer lists these fields.
REQUEST_FIELDS = {"service_request_id", "status", "status_notes", "service_name", "service_code", "description",
                  "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
                  "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url"}
# ... and of GET services these.
SERVICE_FIELDS = {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}
# ... and of an attribute of a service definition these.
ATTRIBUTE_FIELDS = {"variable", "code", "datatype", "required", "datatype_description", "order", "description",
                    "values"}

RULES = """ruleset 育兰 "育兰社区" / "Yulan community"
import jiading
extends jiading
register case "诉求" / "Request" {
  field 楼层 "楼层" / "Floor" integer min 1 max 40
  field 紧急 "是否紧急" / "Urgent" boolean
  field 类别 "类别" / "Kind" choices of 水, 电, 气
}
"""


def box(x0, y0, x1, y1):
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


@contextlib.contextmanager
def serving(target: str, tmp_path):
    """Malu town's 育兰社区 with two neighbourhoods mapped, served over HTTP; yields (office, base URL, key, worker)."""
    rules = tmp_path / "yulan.wg"
    rules.write_text(RULES, encoding="utf-8")
    with Office.create(target, rules=str(rules)) as office:
        office.add_grid("ML", level="街道", name="马陆镇")
        office.add_grid("YL", level="社区", name="育兰社区", upper="ML")
        worker = office.add_worker("沈社工", role="社工", grids=["YL"])
    features = [{"type": "Feature", "properties": {"code": code, "level": level, "parent": parent},
                 "geometry": box(*bounds)} for code, level, parent, bounds in (
        ("YL", "社区", "ML", (121.26, 31.33, 121.28, 31.35)),
        ("YL.01", "网格", "YL", (121.26, 31.33, 121.27, 31.35)),
        ("YL.02", "网格", "YL", (121.27, 31.33, 121.28, 31.35)))]
    (tmp_path / "yl.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    gridmap.import_map(target, str(tmp_path / "yl.geojson"))
    office = Office.open(target)
    try:
        with office.store.write() as rec:
            key = apikeys.add(rec.conn, "12345热线")
        with server.running(open311_app(office.store, lambda: office.ruleset)) as url:
            yield office, url, key, worker
    finally:
        office.close()


@pytest.fixture
def hotline(tmp_path):
    with serving(str(tmp_path / "office.db"), tmp_path) as served:
        yield served


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_discovery_services_and_a_service_definition(hotline, fmt):
    office, url, _, _ = hotline
    client = Client(url, fmt)
    found = client.discovery()
    endpoint = found["endpoints"][0]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"] == url and set(endpoint["formats"]) == {"text/xml", "application/json"}
    assert datetime.fromisoformat(found["changeset"]).tzinfo is not None  # a w3 date-time
    assert client.discovery()["changeset"] == found["changeset"]  # stable while the rules are
    services = {s["service_code"]: s for s in client.services()}
    # Open to the hotline: 求助 and 咨询; 集体信访 comes by petition only; nothing needing an on-site photo.
    assert {"1701", "1702"} <= set(services) and "1703" not in services
    assert all(set(s) == SERVICE_FIELDS for s in services.values())
    assert services["1701"]["service_name"] == "求助" and services["1701"]["type"] == "realtime"
    assert services["1701"]["metadata"] in (True, "true")
    definition = client.service_definition("1701")
    assert definition["service_code"] == "1701"
    attributes = {a["code"]: a for a in definition["attributes"]}
    assert all(set(a) == ATTRIBUTE_FIELDS for a in attributes.values())
    assert attributes["楼层"]["datatype"] == "number" and attributes["类别"]["datatype"] == "multivaluelist"
    assert [v["key"] for v in attributes["类别"]["values"]] == ["水", "电", "气"]
    with pytest.raises(GeoReportError) as missing:
        client.service_definition("9999")
    assert missing.value.status == 404
    assert set(missing.value.errors[0]) == {"code", "description"} and str(missing.value.errors[0]["code"]) == "404"


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_hotline_request_from_report_to_closed(hotline, fmt):
    _round_trip(*hotline, fmt)


@pytest.mark.postgres
def test_a_hotline_request_from_report_to_closed_on_postgresql(pg_url, tmp_path):
    with serving(pg_url, tmp_path) as served:
        _round_trip(*served, "json")


def _round_trip(office, url, key, worker, fmt):
    client = Client(url, fmt, api_key=key)
    made = client.post_request(service_code="1701", lat="31.34", long="121.275", address_string="育兰路88号3楼",
                               description="家里电闸坏了", first_name="许", last_name="女士", phone="13812345678",
                               **{"attribute[楼层]": "3", "attribute[类别][]": ["电", "气"]})
    number = made[0]["service_request_id"]
    assert set(made[0]) == {"service_request_id", "service_notice", "account_id"}
    with office.store.read() as conn:
        case = conn.execute(select(Case.__table__).where(Case.number == number)).one()
    assert case.channel == "热线" and case.owner and case.deadline is not None  # routed, with its deadline
    assert case.fields["requester"] == {"first_name": "许", "last_name": "女士", "phone": "13812345678"}
    assert case.fields["楼层"] == 3 and case.fields["类别"] == ["电", "气"]
    assert office.cases(grid="YL.02")[0].number == number  # placed by its position
    shown = client.request(number)[0]
    assert set(shown) == REQUEST_FIELDS
    assert (shown["status"], shown["status_notes"], shown["service_code"]) == ("open", "诉求受理", "1701")
    assert shown["address"] == "育兰路88号3楼" and float(shown["lat"]) == 31.34
    for move, evidence in (("登记", ()), ("处置", ()), ("办结", ("callback",))):  # the hotline calls back
        office.move_case(number, move, role="社工", by=worker, evidence=evidence)
    closed = client.request(number)[0]
    assert (closed["status"], closed["status_notes"]) == ("closed", "办结")
    assert datetime.fromisoformat(closed["updated_datetime"]) >= datetime.fromisoformat(closed["requested_datetime"])
    assert [r["service_request_id"] for r in client.requests(status="closed")] == [number]
    assert client.requests(status="open") == []
    later = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat(timespec="seconds")
    assert client.requests(start_date=later) == []


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_refusals_are_the_specifications_error_array(hotline, fmt):
    office, url, key, _ = hotline
    cases = [
        (Client(url, fmt), {"service_code": "1701", "lat": "31.34", "long": "121.265"}, 403, "api_key"),
        (Client(url, fmt, api_key="wgk_forged"), {"service_code": "1701", "lat": "31.34", "long": "121.265"}, 403,
         "api_key"),
        (Client(url, fmt, api_key=key), {"lat": "31.34", "long": "121.265"}, 400, "service_code"),
        (Client(url, fmt, api_key=key), {"service_code": "1703", "lat": "31.34", "long": "121.265"}, 404, "1703"),
        (Client(url, fmt, api_key=key), {"service_code": "1701", "address_string": "育兰路"}, 400, "lat and long"),
        (Client(url, fmt, api_key=key), {"service_code": "1701", "lat": "39.9", "long": "116.4"}, 400, "no grid"),
        (Client(url, fmt, api_key=key), {"service_code": "1701", "lat": "north", "long": "121.265"}, 400, "numbers"),
        (Client(url, fmt, api_key=key), {"service_code": "1701", "lat": "31.34", "long": "121.265",
                                         "attribute[楼层]": "99"}, 400, "不大于 40"),
        (Client(url, fmt, api_key=key), {"service_code": "1701", "lat": "31.34", "long": "121.265",
                                         "attribute[颜色]": "红"}, 400, "unknown attribute"),
    ]
    for client, fields, status, says in cases:
        with pytest.raises(GeoReportError) as refused:
            client.post_request(**fields)
        assert refused.value.status == status, fields
        error = refused.value.errors[0]
        assert str(error["code"]) == str(status) and says in error["description"], (fields, error)
    assert office.cases() == []  # nothing was written by any of them
    with pytest.raises(GeoReportError) as bad_date:
        Client(url, fmt).requests(start_date="yesterday")
    assert bad_date.value.status == 400
    with pytest.raises(GeoReportError) as unknown:
        Client(url, fmt).request("C20000101001")
    assert unknown.value.status == 404


def test_a_revoked_key_is_refused_and_keys_are_stored_hashed(hotline):
    office, url, key, _ = hotline
    with office.store.write() as rec:
        stored = rec.conn.exec_driver_sql("SELECT digest FROM api_key").scalar()
        apikeys.revoke(rec.conn, "12345热线")
    assert key not in stored and stored == apikeys.digest(key)
    with pytest.raises(GeoReportError) as refused:
        Client(url, api_key=key).post_request(service_code="1701", lat="31.34", long="121.265")
    assert refused.value.status == 403


def test_unknown_format_and_wangge_serve_mounts_the_endpoint(hotline, tmp_path):
    import httpx

    _, url, _, _ = hotline
    answer = httpx.get(f"{url}/services.yaml")
    assert answer.status_code == 404 and b"<errors>" in answer.content
    assert httpx.get(f"{url}/nothing/here.json").json()[0]["code"] == 404
    assert httpx.put(f"{url}/requests.json").json()[0]["code"] == 405
    as_json = httpx.post(f"{url}/requests.json", json={"service_code": "1701"})
    assert as_json.status_code == 400 and "x-www-form-urlencoded" in as_json.json()[0]["description"]
    too_big = httpx.post(f"{url}/requests.json", data={"description": "x" * 70_000})
    assert too_big.status_code == 413
    target = str(tmp_path / "office.db")
    made = subprocess.run([sys.executable, "-m", "wangge", "apikey", "add", target, "城市热线"],
                          capture_output=True, text=True)
    assert made.returncode == 0 and "wgk_" in made.stdout
    listed = subprocess.run([sys.executable, "-m", "wangge", "apikey", "list", target], capture_output=True, text=True)
    assert "城市热线" in listed.stdout and "wgk_" not in listed.stdout
    serve = subprocess.Popen([sys.executable, "-m", "wangge", "serve", target, "--port", "0"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = serve.stdout.readline()
        base = line.strip().rsplit(" on ", 1)[1]
        services = Client(base + PREFIX).services()
        assert "1701" in {s["service_code"] for s in services}
        assert httpx.get(base + "/health").status_code == 200  # the sync endpoints still answer beside it
    finally:
        serve.terminate()
        serve.wait(timeout=10)
