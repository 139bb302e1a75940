"""Open311 GeoReport v2: a city hotline's requests as cases, and their status back.

The use cases behind the HTTP endpoints (`wangge.web.open311`), as data in and
data out in the specification's field names:

- `services`: the catalogue items a hotline request may name, each with its
  attributes (the rule file's case register);
- `create_request`: a case through the integrating system's channel, placed
  in its grid by its position, routed and given its deadline like any other,
  with the requester's contact kept for the callback (回访);
- `requests`: requests with their status, ``open`` or ``closed`` as the
  lifecycle says, and the state's own label in ``status_notes``.

Every refusal is an `Open311Error` carrying the HTTP status and the
description the specification's error array shows.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Optional
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Connection

from wangge.app import gridmap
from wangge.core import casework
from wangge.core.apikeys import Holder
from wangge.core.capture import Recorder, stored_json
from wangge.core.errors import RoutingError, UsageError, ValidationFailed
from wangge.core.lifecycle import Lifecycle
from wangge.core.models import Building, Case, CaseEvent, Household
from wangge.core.ruleset import CaseItem, FieldSpec, FieldType, Ruleset
from wangge.core.validators import ruleset_lang

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
#: With no dates asked for, requests of this many days back (the specification's default).
DEFAULT_DAYS = 90
#: The most requests one listing returns (the specification's suggested cap).
MAX_REQUESTS = 1000
_cases, _events = Case.__table__, CaseEvent.__table__
_DATATYPES = {FieldType.text: "string", FieldType.integer: "number", FieldType.decimal: "number",
              FieldType.boolean: "singlevaluelist", FieldType.date: "datetime", FieldType.choice: "singlevaluelist",
              FieldType.choices: "multivaluelist", FieldType.phone: "string", FieldType.id_number: "string"}


class Open311Error(UsageError):
    """A request the endpoint refuses; ``status`` is the HTTP status and the error's code."""

    def __init__(self, status: int, description: str):
        super().__init__(description)
        self.status, self.description = status, description


def hotline_channel(ruleset: Ruleset) -> str:
    """The channel requests come in by when a key names none: the rule file's ``热线``, else the
    first channel called a hotline. Raises `Open311Error` if the rule file has none."""
    codes = [c.code for c in ruleset.channels]
    if "热线" in codes:
        return "热线"
    for channel in ruleset.channels:
        if "热线" in channel.code or "hotline" in channel.label.en.casefold():
            return channel.code
    raise Open311Error(500, "the rule file defines no hotline channel (热线) for requests to come in by")


def _open_to(item: CaseItem, channel: str) -> bool:
    # A photo taken on site cannot come down a phone line: such items are the patrol's.
    return (not item.channels or channel in item.channels) and "photo" not in item.evidence


def services(ruleset: Ruleset, channel: Optional[str] = None, lang: Optional[str] = None) -> list[dict]:
    """The catalogue items open to ``channel`` (default: the hotline), as GeoReport services."""
    lang = lang or ruleset_lang(ruleset)
    channel = channel or hotline_channel(ruleset)
    attributes = bool(ruleset.register("case"))
    found = []
    for cls in ruleset.catalogue:
        for item in cls.items:
            if _open_to(item, channel):
                found.append({"service_code": item.code, "service_name": item.label.text(lang),
                              "description": _notice(item, lang), "metadata": attributes, "type": "realtime",
                              "keywords": ", ".join(s.text(lang) for s in item.steps), "group": cls.label.text(lang)})
    return found


def _notice(item: CaseItem, lang: str) -> str:
    steps = " → ".join(s.text(lang) for s in item.steps)
    sla = ", ".join(f"{s.state} {s.within.amount:g} {s.within.unit.value}" for s in item.sla)
    return "; ".join(x for x in (steps, sla) if x)


def service_definition(ruleset: Ruleset, code: str, lang: Optional[str] = None) -> dict:
    """The attributes a request for service ``code`` may carry; raises `Open311Error` (404) for an
    unknown or closed service."""
    lang = lang or ruleset_lang(ruleset)
    item = _item(ruleset, code, hotline_channel(ruleset))
    attributes = []
    for order, spec in enumerate(ruleset.register("case"), start=1):
        values = [{"key": v, "name": v} for v in spec.choices]
        if spec.type is FieldType.boolean:
            values = [{"key": "true", "name": "是" if lang == "zh" else "yes"},
                      {"key": "false", "name": "否" if lang == "zh" else "no"}]
        attributes.append({"variable": True, "code": spec.code, "datatype": _DATATYPES[spec.type],
                           "required": spec.required, "datatype_description": _datatype_description(spec),
                           "order": order, "description": spec.label.text(lang), "values": values})
    return {"service_code": item.code, "attributes": attributes}


def _datatype_description(spec: FieldSpec) -> Optional[str]:
    if spec.type is FieldType.phone:
        return "11-digit mobile or landline with area code"
    if spec.type is FieldType.id_number:
        return "18-character resident ID number"
    if spec.type is FieldType.integer:
        return "whole number"
    return None


def _item(ruleset: Ruleset, code: Optional[str], channel: str) -> CaseItem:
    if not code:
        raise Open311Error(400, "service_code was not provided")
    item = ruleset.items.get(code)
    if item is None or not _open_to(item, channel):
        raise Open311Error(404, f"service_code {code} not found: GET services lists the services open to requests")
    return item


# -- POST requests ------------------------------------------------------------------------------


def create_request(rec: Recorder, ruleset: Ruleset, holder: Optional[Holder], params: Mapping[str, Any],
                   now: datetime) -> list[dict]:
    """Make a case of a POSTed request; return the specification's response (one element).

    ``params`` are the form's fields, a list for a repeated one
    (``attribute[CODE][]``). Raises `Open311Error`: 403 for a missing or
    revoked key, 400 for a request that cannot be taken (no position, a
    position in no grid, an attribute that fails the rule file's checks),
    404 for an unknown service. Nothing is written then.
    """
    if holder is None:
        raise Open311Error(403, "api_key is missing or not valid: ask the street office for a key")
    lang = ruleset_lang(ruleset)
    channel = holder.channel or hotline_channel(ruleset)
    item = _item(ruleset, _one(params, "service_code"), channel)
    grid_id = _place(rec.conn, params)
    attributes = _attributes(ruleset, params)
    try:
        reported = casework.report_case(rec, ruleset, item=item.code, grid_id=grid_id, channel=channel,
                                        reporter_id=None, at=now, description=_one(params, "description") or "",
                                        fields=attributes)
    except ValidationFailed as failed:
        raise Open311Error(400, "; ".join(getattr(failed, "problems", [str(failed)]))) from None
    except RoutingError as failed:
        raise Open311Error(400, str(failed)) from None
    contact = {k: _one(params, k) for k in ("first_name", "last_name", "email", "phone", "account_id", "device_id")}
    place = {k: _one(params, k) for k in ("address_string", "address_id", "lat", "long", "media_url")}
    rec.update("case", reported.case_id, {"open311": {"source": holder.name, **{k: v for k, v in place.items() if v}},
                                          "requester": {k: v for k, v in contact.items() if v}})
    return [{"service_request_id": reported.number, "service_notice": _notice(item, lang),
             "account_id": contact["account_id"]}]


def _one(params: Mapping[str, Any], name: str) -> Optional[str]:
    value = params.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _place(conn: Connection, params: Mapping[str, Any]) -> str:
    """The grid of the request: by its position, else by its address id (a building or household)."""
    lat, lon = _one(params, "lat"), _one(params, "long")
    if lat is not None or lon is not None:
        try:
            latitude, longitude = float(lat), float(lon)
        except (TypeError, ValueError):
            raise Open311Error(400, f"lat and long must both be numbers in degrees (WGS84), got lat={lat!r} "
                                    f"long={lon!r}") from None
        found = gridmap.locate(conn, longitude, latitude)
        if found is None:
            raise Open311Error(400, f"the position lat={latitude} long={longitude} lies in no grid of this office")
        return found.grid_id
    address = _one(params, "address_id")
    if address is not None:
        b, h = Building.__table__, Household.__table__
        grid = conn.execute(select(h.c.grid_id).where(h.c.id == address, h.c.deleted.is_(None))).scalar() or \
            conn.execute(select(b.c.grid_id).where((b.c.id == address) | (b.c.code == address),
                                                   b.c.deleted.is_(None))).scalar()
        if grid is None:
            raise Open311Error(400, f"address_id {address} is no building or household of this office")
        return grid
    raise Open311Error(400, "a request needs its place: lat and long (WGS84), or an address_id; address_string "
                            "alone cannot be placed in a grid")


def _attributes(ruleset: Ruleset, params: Mapping[str, Any]) -> dict:
    """``attribute[CODE]`` fields as the rule file's case fields, typed; unknown codes refused."""
    specs = {s.code: s for s in ruleset.register("case")}
    found = {}
    for name, value in params.items():
        if not name.startswith("attribute["):
            continue
        code = name[len("attribute["):].split("]", 1)[0]
        spec = specs.get(code)
        if spec is None:
            raise Open311Error(400, f"unknown attribute {code!r}: the service definition lists "
                                    f"{', '.join(specs) or 'none'}")
        values = value if isinstance(value, list) else [value]
        found[code] = _typed(spec, values)
    return found


def _typed(spec: FieldSpec, values: list) -> Any:
    if spec.type is FieldType.choices:
        return [str(v) for v in values]
    value = str(values[0]) if values else ""
    if spec.type in (FieldType.integer, FieldType.decimal):
        try:
            number = float(value)
        except ValueError:
            return value  # the validators name it
        return int(number) if spec.type is FieldType.integer and number.is_integer() else number
    if spec.type is FieldType.boolean:
        return {"true": True, "false": False}.get(value.casefold(), value)
    return value


# -- GET requests -------------------------------------------------------------------------------


def requests(conn: Connection, ruleset: Ruleset, params: Mapping[str, Any], now: datetime) -> list[dict]:
    """Requests that came in through Open311, filtered as the specification's GET requests allows.

    ``service_request_id``, ``service_code`` and ``status`` take comma lists;
    ``start_date`` and ``end_date`` bound the request time (default: the last
    90 days). Raises `Open311Error` (400) for a bad date or status.
    """
    ids = _list(params, "service_request_id")
    codes = _list(params, "service_code")
    statuses = _list(params, "status")
    if set(statuses) - {"open", "closed"}:
        raise Open311Error(400, f"status must be open or closed, got {','.join(statuses)}")
    start, end = _date(params, "start_date"), _date(params, "end_date")
    query = select(_cases).where(_cases.c.deleted.is_(None))
    if ids:
        query = query.where(_cases.c.number.in_(ids))
    else:
        start = start or ((end or now) - timedelta(days=DEFAULT_DAYS))
    if codes:
        query = query.where(_cases.c.item_code.in_(codes))
    if start is not None:
        query = query.where(_cases.c.reported_at >= start)
    if end is not None:
        query = query.where(_cases.c.reported_at <= end)
    rows = [r for r in conn.execute(query.order_by(_cases.c.reported_at.desc()))
            if (stored_json(r.fields) or {}).get("open311")]
    lifecycle = Lifecycle.of(ruleset)
    closed = lifecycle.closed | lifecycle.final
    if statuses:
        rows = [r for r in rows if ("closed" if r.status in closed else "open") in statuses]
    rows = rows[:MAX_REQUESTS]
    updated = _last_moves(conn, [r.id for r in rows])
    lang = ruleset_lang(ruleset)
    return [_request(r, ruleset, closed, updated.get(r.id), lang) for r in rows]


def request(conn: Connection, ruleset: Ruleset, number: str, now: datetime) -> list[dict]:
    """The one request ``number`` (in a list, as the specification answers); 404 if there is none."""
    found = requests(conn, ruleset, {"service_request_id": number}, now)
    if not found:
        raise Open311Error(404, f"service_request_id {number} not found")
    return found


def _list(params: Mapping[str, Any], name: str) -> list[str]:
    value = params.get(name)
    values = value if isinstance(value, list) else [value] if value else []
    return [v.strip() for text in values for v in str(text).split(",") if v.strip()]


def _date(params: Mapping[str, Any], name: str) -> Optional[datetime]:
    text = _one(params, name)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Open311Error(400, f"{name} must be a w3 date-time such as 2026-10-01T00:00:00Z, got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _last_moves(conn: Connection, ids: list[str]) -> dict[str, datetime]:
    latest: dict[str, datetime] = {}
    for start in range(0, len(ids), 500):
        for case_id, at in conn.execute(select(_events.c.case_id, _events.c.at)
                                        .where(_events.c.case_id.in_(ids[start:start + 500]))):
            at = _aware(at)
            if case_id not in latest or at > latest[case_id]:
                latest[case_id] = at
    return latest


def _aware(moment: Optional[datetime]) -> Optional[datetime]:
    # SQLite hands times back without their zone; change capture wrote them in UTC.
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _w3(moment: Optional[datetime], zone: Optional[str] = None) -> Optional[str]:
    """A w3 date-time with its offset, in the district's zone when given (as its hotline reads times)."""
    if moment is None:
        return None
    moment = _aware(moment)
    return (moment.astimezone(ZoneInfo(zone)) if zone else moment).isoformat(timespec="seconds")


def _request(row, ruleset: Ruleset, closed: frozenset, updated: Optional[datetime], lang: str) -> dict:
    fields = stored_json(row.fields) or {}
    place = fields.get("open311", {})
    item = ruleset.items.get(row.item_code)
    states = {s.code: s for s in ruleset.lifecycle.states} if ruleset.lifecycle else {}
    state = states.get(row.status)
    zone = ruleset.settings.timezone
    return {
        "service_request_id": row.number,
        "status": "closed" if row.status in closed else "open",
        "status_notes": state.label.text(lang) if state else row.status,
        "service_name": item.label.text(lang) if item else row.item_code,
        "service_code": row.item_code,
        "description": row.description or None,
        "agency_responsible": row.owner or None,
        "service_notice": _notice(item, lang) if item else None,
        "requested_datetime": _w3(row.reported_at, zone),
        "updated_datetime": _w3(updated or row.reported_at, zone),
        "expected_datetime": _w3(row.deadline, zone),
        "address": place.get("address_string"),
        "address_id": place.get("address_id"),
        "zipcode": None,
        "lat": float(place["lat"]) if place.get("lat") else None,
        "long": float(place["long"]) if place.get("long") else None,
        "media_url": place.get("media_url"),
    }


def changeset(rec: Recorder, ruleset: Ruleset, now: datetime) -> str:
    """When the catalogue clients cache last changed: the moment this office first served the
    ruleset's version (kept in the store, so it stays put across restarts)."""
    from wangge.core.store import get_meta, set_meta

    seen = get_meta(rec.conn, "open311.changeset") or ""
    version, _, moment = seen.partition(" ")
    if version != ruleset.version:
        moment = _w3(now)
        set_meta(rec.conn, "open311.changeset", f"{ruleset.version} {moment}")
    return moment


def discovery(base_url: str, ruleset: Ruleset, changed: str, contact: str = "") -> dict:
    """The service discovery document for the endpoint at ``base_url``."""
    return {"changeset": changed, "contact": contact or ruleset.label.text("zh"),
            "key_service": "API keys are issued by the street office (wangge apikey add NAME)",
            "endpoints": [{"specification": SPECIFICATION, "url": base_url, "changeset": changed,
                           "type": "production", "formats": ["text/xml", "application/json"]}]}
