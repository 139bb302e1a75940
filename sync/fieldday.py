"""A worker's whole day, end to end, on embedded SQLite: what `wangge demo` runs.

The street office runs a master (the TEDA ruleset) behind a real HTTP server
on loopback. Two tablets, encrypted at rest, enroll and are approved; each
worker patrols offline, records cases with photos and edits a household;
the office edits one of the same critical fields meanwhile. Both tablets sync
over HTTP with signed, encrypted bundles; the clash lands in the conflict
queue instead of being dropped; the office moves a case on; a worker takes
on his tablet a case the office already gave a department, and his stale
move is kept and listed; an overdue case escalates; and the month is scored. Everything goes through the public API.
"""
from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, select

from wangge import rulesets
from wangge.core import casework, store
from wangge.core.models import Attachment, Case, Household
from wangge.core.report import table
from wangge.sync import atrest, enrollment, protocol, tables
from wangge.sync.attachments import BlobStore
from wangge.sync.client import MasterClient
from wangge.sync.fieldwork import installed_rules, protocol_exchange, tablet_session
from wangge.sync.identity import store_keys
from wangge.sync.office import Office
from wangge.sync.tablet import enrollment_request, tablet_photos

CST = timezone(timedelta(hours=8))
MORNING = datetime(2026, 10, 13, 9, 0, tzinfo=CST)  # a Tuesday
PASSPHRASE = "演示口令 demo passphrase"
#: A cheaper scrypt than production's half second, so the demo starts quickly.
DEMO_SCRYPT_N = 2**14


def run_field_day(workdir: Path) -> str:
    """Run the day in ``workdir`` (its databases stay there) and return the report."""
    # A rerun starts a fresh day: the last run's stores, key files, photos and the master's transfers go.
    for old in [*workdir.glob("*.db*"), workdir / "master-files"]:
        if old.is_dir():
            shutil.rmtree(old)
        elif old.exists():
            old.unlink()
    ruleset = rulesets.load("teda")
    master = store.init(str(workdir / "street-master.db"), "master", extra_migrations=tables.MIGRATIONS)
    report = [f"wangge demo: a field day under {ruleset.label.text()} (ruleset {ruleset.version[:12]})",
              f"databases in {workdir}"]
    with master:
        ids = _street(master, ruleset)
        office = Office(master, protocol_exchange(master, installed_rules(master)), public_keys=store_keys(master).public)
        from wangge.web.server import master_app, running

        with running(master_app(office, workdir / "master-files")) as url:
            tablets = {name: _enroll(workdir, name, worker, master, url) for name, worker in
                       (("zhao-tablet", "赵巧珍"), ("li-tablet", "李明"))}
            syncs = [[name, "first contact", _sync(workdir, name, t, url)] for name, t in tablets.items()]
            cases = _patrol(tablets, ruleset, ids, workdir)
            _office_edits(master, ids)
            syncs += [[name, "after patrol", _sync(workdir, name, t, url)] for name, t in tablets.items()]
            moves = _office_moves(master, ruleset, cases, ids, workdir)
            syncs += [[name, "evening", _sync(workdir, name, t, url)] for name, t in tablets.items()]
            moves.append(_confirm_on_site(tablets["zhao-tablet"], ruleset, cases["zhao-tablet"], ids))
            moves += _taken_twice(master, tablets["li-tablet"], ruleset, cases["li-tablet"], ids)
            for name in tablets:
                syncs.append([name, "next day", _sync(workdir, name, tablets[name], url)])
            for t in tablets.values():
                t.close()
        report += ["", _devices_table(master)]
        report += ["", table(["tablet", "sync", "what moved"], syncs, title=f"Encrypted syncs over HTTP ({url})")]
        report += ["", _cases_table(master), "", table(["case", "move", "role", "status"], moves, title="The office's moves")]
        report += ["", _conflicts_table(master), "", _escalation(master, ruleset), "", _scores(master, ruleset)]
    return "\n".join(report)


def _street(master, ruleset) -> dict:
    with master.write(actor="office") as rec:
        casework.install_ruleset(rec.conn, ruleset)
        ids = {"area": rec.insert("grid_cell", {"code": "TD", "level": "区", "name": "泰达开发区"})}
        ids["street"] = rec.insert("grid_cell", {"code": "TD.1", "level": "街道", "name": "泰达街道", "upper_id": ids["area"]})
        ids["taifeng"] = rec.insert("grid_cell", {"code": "TD.1.TF", "level": "社区", "name": "泰丰社区",
                                                  "upper_id": ids["street"]})
        for n, key in ((1, "grid1"), (2, "grid2")):
            ids[key] = rec.insert("grid_cell", {"code": f"TD.1.TF.{n:02d}", "level": "网格", "name": f"泰丰{n}网格",
                                                "upper_id": ids["taifeng"], "grade": "A"})
            rec.insert_many("household", [{"grid_id": ids[key], "address": f"{n}-{unit}", "members": 3,
                                           "户主": f"住户{n}-{unit}", "人口": 3} for unit in range(1, 6)])
        for name, role, grid in (("赵巧珍", "网格员", "grid1"), ("李明", "网格员", "grid2"),
                                 ("系统中心", "指挥中心", "street"), ("电信维修", "专业部门", "area")):
            ids[name] = rec.insert("worker", {"name": name, "role": role})
            rec.insert("assignment", {"worker_id": ids[name], "grid_id": ids[grid]})
    return ids


def _enroll(workdir: Path, name: str, worker: str, master, url: str):
    tablet = atrest.init_tablet(workdir / f"{name}.db", PASSPHRASE, n=DEMO_SCRYPT_N, extra_migrations=tables.MIGRATIONS)
    with MasterClient(url) as client:
        client.enroll(enrollment_request(tablet, name).__dict__)
    with master.write(actor="office") as rec:
        enrollment.approve(rec, tablet.device_id, worker)
    return tablet


def _devices_table(master) -> str:
    with master.read() as conn:
        rows = [[d["name"], d["worker"], d["status"], d["fingerprint"]] for d in enrollment.list_devices(conn)]
    return table(["tablet", "worker", "status", "fingerprint (read aloud at approval)"], sorted(rows),
                 title="Tablets enrolled at the office (keys made on each tablet, kept in its encrypted database)")


def _photos(workdir: Path, name: str, tablet) -> BlobStore:
    return tablet_photos(tablet, workdir / f"{name}.db")


def _sync(workdir: Path, name: str, tablet, url: str) -> str:
    with MasterClient(url) as client:
        summary = tablet_session(tablet, client, photos=_photos(workdir, name, tablet))
        up, down = client.traffic.bytes_up, client.traffic.bytes_down
    ops, photos = summary.split("; ")[0], summary.split("; ")[-1]
    return f"{ops.split(': ', 1)[1]}; {photos} ({up:,} B up, {down:,} B down)"


def _patrol(tablets, ruleset, ids, workdir: Path) -> dict:
    """Offline: each worker records a case with a photo and edits a household."""
    plan = (("zhao-tablet", "grid1", "赵巧珍", "0103", "巡查", "电信通讯箱破损,电线裸露"),
            ("li-tablet", "grid2", "李明", "1102", "巡查", "楼道口乱堆物料"))
    cases = {}
    for name, grid, worker, item, channel, text in plan:
        tablet = tablets[name]
        photo = f"{text} photo taken at {MORNING:%H:%M}".encode()
        sha = _photos(workdir, name, tablet).put(photo)  # sealed on the tablet, like its database
        with tablet.write(actor=ids[worker]) as rec:
            reported = casework.report_case(rec, ruleset, item=item, grid_id=ids[grid], channel=channel,
                                            reporter_id=ids[worker], at=MORNING + timedelta(hours=1),
                                            description=text, photos=[sha])
            rec.insert("attachment", {"sha256": sha, "size": len(photo), "media_type": "image/jpeg",
                                      "case_id": reported.case_id, "grid_id": ids[grid], "name": "现场照片.jpg"})
            casework.move_case(rec, ruleset, reported.case_id, "上报", role="网格员", actor_id=ids[worker],
                               at=MORNING + timedelta(hours=2), evidence=["photo"])
            home = rec.conn.execute(select(Household.id).where(Household.grid_id == ids[grid]).order_by(Household.address)).scalar()
            rec.update("household", home, {"户主": f"{worker}核实后的户主", "人口": 4})
        cases[name] = reported
    return cases


def _office_edits(master, ids) -> None:
    """Meanwhile the office corrects the same household's head (a critical field) from a resident's call."""
    with master.write(actor="office") as rec:
        home = rec.conn.execute(select(Household.id).where(Household.grid_id == ids["grid1"]).order_by(Household.address)).scalar()
        rec.update("household", home, {"户主": "来电更正的户主"})


def _office_moves(master, ruleset, cases, ids, workdir: Path) -> list:
    """The centre dispatches both cases; the department repairs the box and attaches a photo of it."""
    rows = []
    box = cases["zhao-tablet"]
    repaired = b"telecom box repaired, photo by the department"
    sha = BlobStore(workdir / "master-files" / "blobs").put(repaired)
    with master.write(actor="系统中心") as rec:
        rec.insert("attachment", {"sha256": sha, "size": len(repaired), "media_type": "image/jpeg",
                                  "case_id": box.case_id, "grid_id": ids["grid1"], "name": "修复后.jpg"})
        for reported in cases.values():
            status = casework.move_case(rec, ruleset, reported.case_id, "派遣", role="指挥中心", actor_id=None,
                                        at=MORNING + timedelta(hours=3))
            rows.append([reported.number, "派遣", "指挥中心", status])
        for move, role in (("接单", "专业部门"), ("修复", "专业部门")):
            status = casework.move_case(rec, ruleset, box.case_id, move, role=role, actor_id=None,
                                        at=MORNING + timedelta(hours=6))
            rows.append([box.number, move, role, status])
    return rows


def _confirm_on_site(tablet, ruleset, reported, ids) -> list:
    """Next noon the centre calls: repaired, "please confirm on site" — she does, on her tablet."""
    with tablet.write(actor=ids["赵巧珍"]) as rec:
        status = casework.move_case(rec, ruleset, reported.case_id, "结案", role="网格员", actor_id=ids["赵巧珍"],
                                    at=MORNING + timedelta(days=1, hours=3), evidence=["onsite_confirmation"],
                                    satisfied=True, on_device=True)
    return [reported.number, "结案 (on site, on the tablet)", "网格员", status]


def _taken_twice(master, tablet, ruleset, reported, ids) -> list:
    """Next morning the centre hands the rubbish pile to a department, which takes it at the office;
    Li, offline, takes it too on his tablet. Replayed in order his move comes second: it is kept,
    marked stale, and listed for the office instead of moving the case twice."""
    at = MORNING + timedelta(days=1, hours=1)
    with master.write(actor="系统中心") as rec:
        office = casework.move_case(rec, ruleset, reported.case_id, "接单", role="专业部门", actor_id=None, at=at)
    with tablet.write(actor=ids["李明"]) as rec:
        casework.move_case(rec, ruleset, reported.case_id, "接单", role="网格员", actor_id=ids["李明"],
                           at=at + timedelta(minutes=30), on_device=True)
    return [[reported.number, "接单", "专业部门", office],
            [reported.number, "接单 (offline, on the tablet)", "网格员", "stale: listed for the office"]]


def _cases_table(master) -> str:
    with master.read() as conn:
        rows = conn.execute(select(Case.number, Case.item_code, Case.status, Case.owner, Case.description)
                            .order_by(Case.number)).all()
        photos = conn.execute(select(func.count()).select_from(Attachment)).scalar()
    return table(["case", "item", "status", "owner", "description"], rows,
                 title=f"Cases at the master ({photos} photos, each sent once by content hash)")


def _conflicts_table(master) -> str:
    rows = [[c["kind"], c["entity"], c.get("field") or "-", _short(c.get("kept")), _short(c.get("lost")), c.get("note") or ""]
            for c in protocol.conflicts(master)]
    return table(["kind", "entity", "field", "kept", "queued for review", "note"], rows,
                 title="Conflicts for the office (wangge conflicts)")


def _short(value) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= 24 else text[:23] + "…"


def _escalation(master, ruleset) -> str:
    later = MORNING + timedelta(days=10)
    with master.write(actor="escalation") as rec:
        moved, stuck = casework.sweep(rec, ruleset, later)
        numbers = dict(rec.conn.execute(select(Case.id, Case.number)).all())
    rows = [[numbers.get(m.case, m.case[:8]), m.level, m.owner, m.reason] for m in moved]
    return table(["case", "to level", "owner", "why"], rows,
                 title=f"Escalation sweep at {later:%Y-%m-%d %H:%M} ({len(stuck)} at their ceiling)")


def _scores(master, ruleset) -> str:
    with master.read() as conn:
        results = casework.month_scores(conn, ruleset, MORNING.year, MORNING.month)
    rows = [[r.worker, r.role, f"{r.metrics['closed']:g}/{r.metrics['registered']:g}", r.score.total, r.score.tier]
            for r in results]
    return table(["worker", "role", "closed/registered", "score", "tier"], rows, title=f"Monthly scores {MORNING:%Y-%m}")
