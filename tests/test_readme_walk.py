"""The README's "Using it" walk, command by command, as a newcomer types it.

In a fresh folder on SQLite: each step's exit code and a phrase of what it
prints. The master runs as a real `wangge serve` subprocess on a free port
(the README's 8470 would clash); the USB stick is a folder; what the worker
does in the field app's forms (a household, a case with a photo, an edit)
is done through the same `Tablet` handle the app uses. The order is the
README's.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from support.running import Running
from wangge import rulesets
from wangge.app import households
from wangge.app.office import Office
from wangge.app.tablet import Tablet
from wangge.cli import cli

PASSPHRASE = "泰丰三网格 walk"
PG_SERVER = os.environ.get("WANGGE_TEST_PG", "postgresql+psycopg://127.0.0.1:5432/test")
README = Path(__file__).resolve().parents[1] / "README.md"


def Served(*args: str, cwd: Path) -> Running:
    """A `wangge` subprocess (serve, field) with the walk's passphrase."""
    return Running(*args, cwd=cwd, env={"WANGGE_PASSPHRASE": PASSPHRASE})


class Walk:
    """Runs `wangge ARGS` in the walk's folder; checks the exit code and a phrase of the output."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.runner = CliRunner()

    def __call__(self, *args: str, code: int = 0, says: str = "") -> str:
        result = self.runner.invoke(cli, list(args), env={"WANGGE_PASSPHRASE": PASSPHRASE}, catch_exceptions=False)
        said = result.output + (result.stderr if result.stderr_bytes is not None else "")
        assert result.exit_code == code, f"wangge {' '.join(args)} exited {result.exit_code}:\n{said}"
        assert says in said, f"wangge {' '.join(args)} did not say {says!r}:\n{said}"
        return said


def _using_it() -> list[str]:
    """The commands of the README's "Using it" section, in order, without their comments."""
    section = README.read_text(encoding="utf-8").split("## Using it", 1)[1].split("\n## ", 1)[0]
    return [line.split("#", 1)[0].strip().removeprefix(".venv/bin/wangge ")
            for line in section.splitlines() if line.startswith("    .venv/bin/wangge ")]


def test_the_walk_is_the_readme_s():
    """What the walk below runs is what the README says, in its order (a README edit fails here first)."""
    verbs = [" ".join(c.split()[:2]) if c.split()[0] in {"rules", "grid", "worker", "device", "bundle",
                                                         "tombstones"} else c.split()[0] for c in _using_it()]
    assert verbs == ["rules check", "rules show", "init", "init", "grid add", "grid add", "worker add", "serve",
                     "device enroll", "device list", "device approve", "sync", "field", "sync", "device trust",
                     "bundle export", "bundle import", "bundle import", "escalate", "explain", "score",
                     "conflicts", "resolve", "tombstones collect"]
    assert "C20261013001-923F" in " ".join(_using_it())


@pytest.fixture
def walk(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rulesets").mkdir()
    for name in ("teda", "baotaqiao", "shushan", "jiading", "lianchi", "national"):
        (tmp_path / "rulesets" / f"{name}.wg").write_bytes(rulesets.path(name).read_bytes())
    return Walk(tmp_path)


def _postgres_walk(walk: Walk) -> None:
    """`wangge init postgresql://…/district`: the database does not exist yet; init creates it."""
    admin = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect():
            pass
    except Exception:  # noqa: BLE001 - no server here: this one step is left out
        admin.dispose()
        return
    name = f"walk_{uuid4().hex[:10]}"
    url = PG_SERVER.rsplit("/", 1)[0].replace("postgresql+psycopg", "postgresql") + "/" + name
    try:
        said = walk("init", url, "--role", "master", says=f"created the PostgreSQL database {name}")
        assert "created a master store" in said
        walk("init", url, "--role", "master", code=2, says="a store already exists")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_a_newcomer_walks_using_it_in_order(walk, tmp_path):
    wg = walk
    wg("--help", says="Commands:")
    wg("rules", "check", *sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "rulesets").glob("*.wg")),
       says="ok: 6 files, no errors")
    wg("rules", "show", "rulesets/teda.wg", says="网格员")
    wg("init", "office.db", "--role", "master", "--rules", "rulesets/teda.wg", says="installed ruleset")
    _postgres_walk(wg)

    # Grids and workers before tablets; approving for a worker not added yet says how to add one.
    wg("grid", "add", "office.db", "TF", "--level", "社区", "--name", "泰丰社区", says="added grid TF")
    wg("grid", "add", "office.db", "TF.03", "--level", "网格", "--name", "泰丰3网格", "--upper", "TF",
       says="added grid TF.03")
    worker = re.search(r"as (\S+)", wg("worker", "add", "office.db", "王芳", "--role", "网格员", "--grid", "TF.03",
                                       says="added worker 王芳")).group(1)

    # A mistyped store: the suggestion makes a master, as serve needs.
    wg("serve", "offices.db", code=2, says=f"create one with `wangge init {tmp_path / 'offices.db'} --role master`")
    (tmp_path / "usb-inbox").mkdir()
    master = Served("serve", "office.db", "--rules", "rulesets/teda.wg", "--inbox", "./usb-inbox", "--port", "0",
                    cwd=tmp_path)
    try:
        url = master.find(r"serving office\.db on (http://127\.0\.0\.1:\d+)").group(1)

        enrolled = wg("device", "enroll", "tablet.db", "--name", "王芳的平板", "--master", url, says="pending")
        assert f"key file: {tmp_path / 'tablet.db.key'}" in enrolled and (tmp_path / "tablet.db.key").exists()
        device = re.search(r"device (\S+) \(王芳的平板\)", enrolled).group(1)
        master.find(f"enrollment request from 127.0.0.1: device {device}")
        wg("device", "list", "office.db", says=device)
        wg("device", "approve", "office.db", device, "--worker", "王五", code=2,
           says="wangge worker add")  # a worker not added yet: the error names the command
        card = wg("device", "approve", "office.db", device, "--worker", "王芳",
                  says=f"device {device} approved for 王芳").strip().splitlines()[-1]
        assert card.startswith("wangge-master:1:")
        wg("sync", "tablet.db", "--master", url, says="applied")
        master.find(f"sync: .* from {device}")
        # https:// typed for a plain-HTTP master: said at once, not after six retries blamed on the network.
        wg("sync", "tablet.db", "--master", url.replace("http://", "https://"), code=1,
           says=f"the master at {url.replace('http://', 'https://')} does not speak HTTPS: use {url}")

        field = Served("field", "tablet.db", "--master", url, "--port", "0", cwd=tmp_path)
        try:
            link = field.find(r"open (http://127\.0\.0\.1:\d+/login\?token=\S+)").group(1)
            home = httpx.get(link, follow_redirects=True, timeout=20)
            assert home.status_code == 200 and "租期" in home.text  # unlocked: the home page with the lease
        finally:
            field.stop()
        # What the worker then does in the field app's forms: a household, a case with a photo.
        with Tablet.open(tmp_path / "tablet.db", PASSPHRASE) as tablet:
            home_id = tablet.record_household(by=worker, grid="TF.03", address="3-201",
                                              fields={"户主": "王建国", "人口": 3})
            photo = tablet.photos.put(b"a broken telecom box, photographed on patrol" * 200)
            number = tablet.report_case(by=worker, item="0103", grid="TF.03", channel="巡查",
                                        description="电信通讯箱破损", photos=[photo]).number
        assert re.fullmatch(r"C\d{11}-[0-9A-F]{4}", number)  # the tablet's tag, as the README shows
        said = wg("sync", "tablet.db", "--master", url, says="photos: 1 sent")
        assert re.search(r"photos: 1 sent, 0 received \([\d,]+ bytes up", said)

        # The office corrects the household's head while the worker, offline, does too.
        with Office.open(tmp_path / "office.db") as office:
            households.edit_household(office.store, office.ruleset, home_id, {"户主": "来电更正的户主"}, by="office")
        with Tablet.open(tmp_path / "tablet.db", PASSPHRASE) as tablet:
            tablet.edit_household(home_id, {"户主": "王芳核实后的户主"}, by=worker)

        wg("device", "trust", "tablet.db", card, says="this tablet now syncs with master")
        stick = tmp_path / "usb"
        stick.mkdir()
        wg("bundle", "export", "tablet.db", "--out", str(stick / "push.wgb"), says="wrote")
        wg("bundle", "import", "office.db", str(stick / "push.wgb"), says="push.wgb.reply")
        wg("bundle", "import", "tablet.db", str(stick / "push.wgb.reply"))
    finally:
        master.stop()

    wg("escalate", "office.db", says="Escalated")
    wg("explain", "office.db", number, says=number)
    wg("score", "office.db", "--month", "2026/10", "--csv", "scores.csv", says="Scores for 2026-10")
    assert "王芳" in (tmp_path / "scores.csv").read_text(encoding="utf-8-sig")
    listed = wg("conflicts", "office.db", says="户主")
    assert "王芳核实后的户主" in listed and "来电更正的户主" in listed
    assert "household 3-201" in listed and "王芳的平板" in listed  # words, not raw ids
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-", listed)
    conflict = re.search(r"#(\d+)\s+critical", listed).group(1)
    wg("resolve", "office.db", conflict, "take", "--by", "张主任")
    wg("conflicts", "office.db", says="no conflicts")
    wg("tombstones", "collect", "office.db", says="collected")


@pytest.mark.postgres
def test_init_names_the_createdb_command_when_the_server_will_not_create_the_database(walk):
    admin = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001
        admin.dispose()
        pytest.skip(f"PostgreSQL is not reachable at {PG_SERVER}")
    role = f"walk_{uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE ROLE {role} LOGIN NOCREATEDB"))
        host = PG_SERVER.split("://", 1)[1].split("/", 1)[0]
        walk("init", f"postgresql://{role}@{host}/{role}_district", "--role", "master", code=2,
             says=f"create it with `createdb -h {host.split(':')[0]} -p {host.split(':')[1]} -U {role} {role}_district`")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP ROLE IF EXISTS {role}"))
        admin.dispose()
