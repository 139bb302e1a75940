"""The demos `wangge demo` runs, through `Office` and `Tablet` as any tool would.

`field_day`: a worker's whole day, end to end, on embedded SQLite. The street
office runs a master (the TEDA ruleset) behind a real HTTP server on
loopback. Two tablets, encrypted at rest, enroll and are approved; each
worker patrols offline, records cases with photos and edits a household; the
office edits one of the same critical fields meanwhile. Both tablets sync
over HTTP with signed, encrypted bundles; the clash lands in the conflict
queue instead of being dropped; the office moves a case on; a worker takes
on his tablet a case the office already gave a department, and his stale
move is kept and listed; an overdue case escalates; and the month is scored.

`tour`: a guided tour of one shipped model, driven by its rule file alone:
the district is built from its grid levels, its workers from its roles, a
case walks its lifecycle from the initial state to closure by the shortest
legal path (with the evidence each move requires), a second case is left
overdue for the escalation sweep, and the month is scored by its formulas.
No model is special-cased.
"""
from __future__ import annotations

import shutil
import tempfile
from collections import deque
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, ContextManager, Optional

from sqlalchemy import func, select

from wangge import dsl, rulesets
from wangge.app.office import Office
from wangge.app.tablet import Tablet
from wangge.core.lifecycle import Lifecycle, closing_requires
from wangge.core.models import Attachment, Household
from wangge.core.report import table
from wangge.core.ruleset import Ruleset
from wangge.sync.attachments import BlobStore
from wangge.sync.transport.client import MasterClient
from wangge.sync.transport.fieldwork import tablet_session

CST = timezone(timedelta(hours=8))
MORNING = datetime(2026, 10, 13, 9, 0, tzinfo=CST)  # a Tuesday
START = datetime(2026, 10, 12, 9, 0, tzinfo=CST)  # the tour's Monday
PASSPHRASE = "演示口令 demo passphrase"
#: A cheaper scrypt than production's half second, so the demo starts quickly.
DEMO_SCRYPT_N = 2**14


# -- the field day ---------------------------------------------------------------------------------

def field_day(workdir: Path, serve: Callable[[object, Path], ContextManager[str]]) -> str:
    """Run the day in ``workdir`` (its databases stay there) and return the report.

    ``serve(service, folder)`` runs the master's HTTP endpoints for ``service``
    (keeping transfers in ``folder``) on loopback and yields their URL: the
    web layer's, handed in by the command line, which stands above this one.
    """
    # A rerun starts a fresh day: the last run's stores, key files, photos and the master's transfers go.
    for old in [*workdir.glob("*.db*"), workdir / "master-files"]:
        if old.is_dir():
            shutil.rmtree(old)
        elif old.exists():
            old.unlink()
    ruleset = rulesets.load("teda")
    report = [f"wangge demo: a field day under {ruleset.label.text()} (ruleset {ruleset.version[:12]})",
              f"databases in {workdir}"]
    with Office.create(master_path(workdir), rules=ruleset) as office:
        ids = _street(office)
        with serve(office.master_service(), workdir / "master-files") as url:
            tablets = {name: _enroll(workdir, name, worker, office, url) for name, worker in DEMO_TABLETS}
            syncs = [[name, "first contact", _sync(t, url)] for name, t in tablets.items()]
            cases = _patrol(tablets, ids)
            _office_edits(office, ids)
            syncs += [[name, "after patrol", _sync(t, url)] for name, t in tablets.items()]
            moves = _office_moves(office, cases, ids, workdir)
            syncs += [[name, "evening", _sync(t, url)] for name, t in tablets.items()]
            moves.append(_confirm_on_site(tablets["zhao-tablet"], cases["zhao-tablet"], ids))
            moves += _taken_twice(office, tablets["li-tablet"], cases["li-tablet"], ids)
            for name in tablets:
                syncs.append([name, "next day", _sync(tablets[name], url)])
            for t in tablets.values():
                t.close()
        report += ["", _devices_table(office)]
        report += ["", table(["tablet", "sync", "what moved"], syncs, title=f"Encrypted syncs over HTTP ({url})")]
        report += ["", _cases_table(office), "", table(["case", "move", "role", "status"], moves,
                                                       title="The office's moves")]
        report += ["", _conflicts_table(office), "", _field_escalation(office), "", _field_scores(office)]
    return "\n".join(report)


#: The office accounts `wangge demo --serve` makes: name, role of the TEDA rule file, and what the account is for.
DEMO_ACCOUNTS = (("张主任", "指挥中心", "the command centre: every case, dispatch, review, tablets"),
                 ("电信维修", "专业部门", "a department: the cases dispatched to it"))
#: The field day's tablets and their workers.
DEMO_TABLETS = (("zhao-tablet", "赵巧珍"), ("li-tablet", "李明"))


def master_path(workdir: Path) -> Path:
    """Where `field_day` leaves the street master's database."""
    return workdir / "street-master.db"


def tablet_path(workdir: Path, name: str) -> Path:
    """Where `field_day` leaves tablet ``name``'s encrypted database."""
    return workdir / f"{name}.db"


def add_demo_accounts(workdir: Path) -> list[tuple[str, str, str, str]]:
    """Office accounts on the demo's master, each with a new random password.

    Returns ``(name, role, password, what for)`` per account. Run after
    `field_day`; an account already there (a rerun on the same folder cannot
    leave one: the day starts afresh) raises `AccountError`.
    """
    import secrets

    from wangge.app import accounts

    made = []
    with Office.open(master_path(workdir)) as office:
        for name, role, what in DEMO_ACCOUNTS:
            password = secrets.token_urlsafe(9)
            accounts.add(office.store, name, role, password, by="demo")
            made.append((name, role, password, what))
    return made


def _street(office: Office) -> dict:
    with office.store.write(actor="office") as rec:
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


def _enroll(workdir: Path, name: str, worker: str, office: Office, url: str) -> Tablet:
    tablet = Tablet.create(tablet_path(workdir, name), PASSPHRASE, scrypt_n=DEMO_SCRYPT_N)
    tablet.enroll(name, url)
    office.approve(tablet.device_id, worker)
    return tablet


def _devices_table(office: Office) -> str:
    rows = [[d["name"], d["worker"], d["status"], d["fingerprint"]] for d in office.devices().rows]
    return table(["tablet", "worker", "status", "fingerprint (read aloud at approval)"], sorted(rows),
                 title="Tablets enrolled at the office (keys made on each tablet, kept in its encrypted database)")


def _sync(tablet: Tablet, url: str) -> str:
    # The exchange itself, not `Tablet.sync`: the demo shows the bytes each way, which the client counts.
    with MasterClient(url) as client:
        summary = tablet_session(tablet.store, client, photos=tablet.photos)
        up, down = client.traffic.bytes_up, client.traffic.bytes_down
    ops, photos = summary.split("; ")[0], summary.split("; ")[-1]
    return f"{ops.split(': ', 1)[1]}; {photos} ({up:,} B up, {down:,} B down)"


def _patrol(tablets: dict[str, Tablet], ids) -> dict:
    """Offline: each worker records a case with a photo and edits a household."""
    plan = (("zhao-tablet", "grid1", "赵巧珍", "0103", "巡查", "电信通讯箱破损,电线裸露"),
            ("li-tablet", "grid2", "李明", "1102", "巡查", "楼道口乱堆物料"))
    cases = {}
    for name, grid, worker, item, channel, text in plan:
        tablet = tablets[name]
        sha = tablet.photos.put(f"{text} photo taken at {MORNING:%H:%M}".encode())  # sealed, like its database
        reported = tablet.report_case(by=ids[worker], item=item, grid=ids[grid], channel=channel,
                                      at=MORNING + timedelta(hours=1), description=text, photos=[sha])
        tablet.move_case(reported.case_id, "上报", role="网格员", by=ids[worker], at=MORNING + timedelta(hours=2),
                         evidence=["photo"])
        with tablet.store.read() as conn:
            home = conn.execute(select(Household.id).where(Household.grid_id == ids[grid])
                                .order_by(Household.address)).scalar()
        tablet.edit_household(home, {"户主": f"{worker}核实后的户主", "人口": 4}, by=ids[worker])
        cases[name] = reported
    return cases


def _office_edits(office: Office, ids) -> None:
    """Meanwhile the office corrects the same household's head (a critical field) from a resident's call."""
    with office.store.write(actor="office") as rec:
        home = rec.conn.execute(select(Household.id).where(Household.grid_id == ids["grid1"]).order_by(Household.address)).scalar()
        rec.update("household", home, {"户主": "来电更正的户主"})


def _office_moves(office: Office, cases, ids, workdir: Path) -> list:
    """The centre dispatches both cases; the department repairs the box and attaches a photo of it."""
    rows = []
    box = cases["zhao-tablet"]
    repaired = b"telecom box repaired, photo by the department"
    sha = BlobStore(workdir / "master-files" / "blobs").put(repaired)
    with office.store.write(actor="系统中心") as rec:
        rec.insert("attachment", {"sha256": sha, "size": len(repaired), "media_type": "image/jpeg",
                                  "case_id": box.case_id, "grid_id": ids["grid1"], "name": "修复后.jpg"})
    for reported in cases.values():
        status = office.move_case(reported.case_id, "派遣", role="指挥中心", by=None, at=MORNING + timedelta(hours=3))
        rows.append([reported.number, "派遣", "指挥中心", status])
    for move, role in (("接单", "专业部门"), ("修复", "专业部门")):
        status = office.move_case(box.case_id, move, role=role, by=None, at=MORNING + timedelta(hours=6))
        rows.append([box.number, move, role, status])
    return rows


def _confirm_on_site(tablet: Tablet, reported, ids) -> list:
    """Next noon the centre calls: repaired, "please confirm on site" — she does, on her tablet."""
    status = tablet.move_case(reported.case_id, "结案", role="网格员", by=ids["赵巧珍"],
                              at=MORNING + timedelta(days=1, hours=3), evidence=["onsite_confirmation"],
                              satisfied=True)
    return [reported.number, "结案 (on site, on the tablet)", "网格员", status]


def _taken_twice(office: Office, tablet: Tablet, reported, ids) -> list:
    """Next morning the centre hands the rubbish pile to a department, which takes it at the office;
    Li, offline, takes it too on his tablet. Replayed in order his move comes second: it is kept,
    marked stale, and listed for the office instead of moving the case twice."""
    at = MORNING + timedelta(days=1, hours=1)
    status = office.move_case(reported.case_id, "接单", role="专业部门", by=None, at=at)
    tablet.move_case(reported.case_id, "接单", role="网格员", by=ids["李明"], at=at + timedelta(minutes=30))
    return [[reported.number, "接单", "专业部门", status],
            [reported.number, "接单 (offline, on the tablet)", "网格员", "stale: listed for the office"]]


def _cases_table(office: Office) -> str:
    with office.store.read() as conn:
        photos = conn.execute(select(func.count()).select_from(Attachment)).scalar()
    rows = [[c.number, c.item, c.status, c.owner, c.description] for c in sorted(office.cases(), key=lambda c: c.number)]
    return table(["case", "item", "status", "owner", "description"], rows,
                 title=f"Cases at the master ({photos} photos, each sent once by content hash)")


def _conflicts_table(office: Office) -> str:
    rows = [[c["kind"], c["entity"], c.get("field") or "-", _short(c.get("kept")), _short(c.get("lost")),
             c.get("note") or ""] for c in office.conflicts()]
    return table(["kind", "entity", "field", "kept", "queued for review", "note"], rows,
                 title="Conflicts for the office (wangge conflicts)")


def _short(value) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= 24 else text[:23] + "…"


def _field_escalation(office: Office) -> str:
    later = MORNING + timedelta(days=10)
    swept = office.escalate(at=later)
    numbers = {c.id: c.number for c in office.cases()}
    rows = [[numbers.get(m.case, m.case[:8]), m.level, m.owner, m.reason] for m in swept.moved]
    return table(["case", "to level", "owner", "why"], rows,
                 title=f"Escalation sweep at {later:%Y-%m-%d %H:%M} ({len(swept.at_ceiling)} at their ceiling)")


def _field_scores(office: Office) -> str:
    results = [r for r in office.scores(MORNING.year, MORNING.month) if r.subject == "worker"]
    rows = [[r.worker, r.role, f"{r.metrics['closed']:g}/{r.metrics['registered']:g}", r.score.total, r.score.tier]
            for r in results]
    return table(["worker", "role", "closed/registered", "score", "tier"], rows, title=f"Monthly scores {MORNING:%Y-%m}")


# -- the tour of a model ---------------------------------------------------------------------------

def tour(name: str, workdir: Optional[Path] = None) -> str:
    """Tour the shipped model ``name``; raises `UsageError` for an unknown name."""
    ruleset = rulesets.load(name)
    folder = workdir or Path(tempfile.mkdtemp(prefix=f"wangge-{name}-"))
    path = folder / f"{name}.db"
    if path.exists():
        path.unlink()
    with Office.create(path, rules=ruleset) as office:
        grids, workers = _district(office, ruleset)
        lines = [f"wangge demo --model {name}: {ruleset.label.text()} ({ruleset.label.en})",
                 f"store {path}; ruleset version {ruleset.version[:12]}", "", dsl.summary(ruleset, "zh")]
        lines += ["", _walk(office, ruleset, grids, workers), "", _escalation(office, ruleset, grids, workers),
                  "", _scores(office)]
    return "\n".join(lines)


def _district(office: Office, ruleset: Ruleset):
    """One grid per level, top to bottom, and one worker per role at its level."""
    with office.store.write(actor="office") as rec:
        return _people(rec, ruleset)


def _people(rec, ruleset: Ruleset):
    grids: dict[str, str] = {}
    upper, code = None, "D"
    for level in sorted(ruleset.levels, key=lambda lv: lv.rank):
        grade = level.classes[0].code if level.classes else None
        upper = grids[level.code] = rec.insert(
            "grid_cell", {"code": code, "level": level.code, "name": f"{level.label.text()}示例", "grade": grade,
                          "upper_id": upper})
        code += ".1"
    workers: dict[str, str] = {}
    for role in ruleset.roles:
        workers[role.code] = rec.insert("worker", {"name": f"{role.label.text()}甲", "role": role.code})
        if role.level in grids:
            rec.insert("assignment", {"worker_id": workers[role.code], "grid_id": grids[role.level]})
    return grids, workers


def _pick_case(ruleset: Ruleset):
    """The model's own first item, new or overriding the baseline's, else the first item."""
    inherited = rulesets.load(ruleset.base).items if ruleset.base in rulesets.names() else {}
    own = [item for code, item in ruleset.items.items() if inherited.get(code) != item]
    return (own or list(ruleset.items.values()))[0]


def _bottom(ruleset: Ruleset) -> str:
    return max(ruleset.levels, key=lambda lv: lv.rank).code


def _reporter(ruleset: Ruleset, workers: dict[str, str]) -> str:
    bottom = _bottom(ruleset)
    return next((workers[r.code] for r in ruleset.roles if r.level == bottom), next(iter(workers.values())))


def _path(lifecycle: Lifecycle) -> list:
    """The shortest sequence of moves from the initial state into a closed state."""
    queue, seen = deque([(lifecycle.initial, [])]), {lifecycle.initial}
    while queue:
        state, moves = queue.popleft()
        if state in lifecycle.closed and moves:
            return moves
        for (source, _move), rule in lifecycle.table.items():
            if source == state and rule.target not in seen:
                seen.add(rule.target)
                queue.append((rule.target, moves + [rule]))
    return []


def _walk(office: Office, ruleset: Ruleset, grids, workers) -> str:
    item = _pick_case(ruleset)
    channel = item.channels[0] if item.channels else (ruleset.channels[0].code if ruleset.channels else "巡查")
    reporter = _reporter(ruleset, workers)
    case = office.report_case(by=reporter, item=item.code, grid=grids[_bottom(ruleset)], channel=channel, at=START,
                              description=item.label.text(), photos=["sha256:demo"] if "photo" in item.evidence else [])
    rows = [["report", "-", "-", Lifecycle.of(ruleset).initial, f"{item.code} {item.label.text()} via {channel}"]]
    on_closing = set(closing_requires(ruleset, channel))
    lifecycle = Lifecycle.of(ruleset)
    at = START
    for rule in _path(lifecycle):
        at += timedelta(hours=2)
        role = rule.roles[0]
        evidence = set(rule.requires) | (on_closing if rule.target in lifecycle.closed else set())
        actor = reporter if rule.from_reporter else workers[role]  # e.g. TEDA: the reporter confirms on site
        status = office.move_case(case.case_id, rule.code, role=role, by=actor, at=at, evidence=evidence,
                                  satisfied=True)
        rows.append([rule.code, role, ", ".join(sorted(evidence)) or "-", status, f"{at:%m-%d %H:%M}"])
    title = f"Case {case.number}: routed to {case.decision.owner}, due {case.decision.deadline:%Y-%m-%d %H:%M}" \
        if case.decision.deadline else f"Case {case.number}: routed to {case.decision.owner}"
    return table(["move", "role", "evidence", "status", "when"], rows, title=title)


def _escalation(office: Office, ruleset: Ruleset, grids, workers) -> str:
    serious = max(ruleset.severities, key=lambda sv: sv.rank).code if ruleset.severities else None
    item = _pick_case(ruleset)
    reporter = _reporter(ruleset, workers)
    channel = item.channels[0] if item.channels else ruleset.channels[0].code
    office.report_case(by=reporter, item=item.code, grid=grids[_bottom(ruleset)], channel=channel, at=START,
                       severity=serious, photos=["sha256:demo"], description="逾期案件")
    swept = office.escalate(at=START + timedelta(days=60))
    moved, stuck = swept.moved, swept.at_ceiling
    rows = [[m.level, m.owner, m.reason] for m in moved]
    note = f" ({len(stuck)} at the ceiling)" if stuck else ""
    return table(["to level", "owner", "why"], rows, title=f"Escalation of an overdue {serious} case after 60 days{note}")


def _scores(office: Office) -> str:
    results = [r for r in office.scores(START.year, START.month) if r.subject == "worker"]
    rows = [[r.worker, r.role, r.score.formula, r.score.total, r.score.tier or "-"] for r in results]
    return table(["worker", "role", "formula", "total", "tier"], rows, title=f"Scores for {START:%Y-%m}")
