"""The `wangge` command: a thin click shell over the library.

Library errors (`WanggeError`) become one line on stderr and the error's exit
code; any other exception is reported as an internal error in one line, so
no Python traceback reaches a user (set WANGGE_DEBUG=1 to see it).
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import click

from wangge.core.errors import UsageError, WanggeError

#: Exit code for an unexpected internal error (sysexits.h EX_SOFTWARE).
INTERNAL_ERROR = 70


class WanggeGroup(click.Group):
    """A click group that turns library errors into clean one-line exits."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except WanggeError as exc:
            error = click.ClickException(str(exc))
            error.exit_code = exc.exit_code
            raise error from None


@click.group(cls=WanggeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="wangge")
def cli() -> None:
    """wangge: offline-first grid management with a rules language.

    \b
    Example:
      wangge demo
      wangge init office.db --role master
    """


@cli.command()
@click.argument("target")
@click.option(
    "--role",
    type=click.Choice(["master", "device"]),
    default="device",
    show_default=True,
    help="A street-office master, or a field worker's tablet.",
)
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False), help="Install this rule file's ruleset.")
def init(target: str, role: str, rules_file: str | None) -> None:
    """Create a store at TARGET: a file path (SQLite) or a postgresql:// URL.

    \b
    Example:
      wangge init office.db --role master --rules rulesets/teda.wg
      wangge init postgresql://127.0.0.1/district --role master
    """
    from wangge.app import Office, stores

    ruleset = _load_rules(rules_file) if rules_file else None
    with Office(stores.create(target, role)) as created:
        if ruleset is not None:
            created.install(ruleset)
        click.echo(f"created a {role} store at {created.store.url} (device {created.device_id})")
        if ruleset is not None:
            click.echo(f"installed ruleset {ruleset.name} version {ruleset.version[:12]}")


@cli.command()
@click.option(
    "--dir",
    "workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the demo's databases (default: a new temporary folder).",
)
@click.option("--model", default=None, help="Tour a shipped model instead: teda, baotaqiao, shushan, jiading, lianchi, national.")
def demo(workdir: Path | None, model: str | None) -> None:
    """Run the end-to-end demo on embedded SQLite and print what happened.

    A street master and two encrypted tablets: enrollment, an offline patrol
    with photos, encrypted syncs over HTTP on loopback, a conflict, the office's
    moves, an escalation and the monthly score.

    \b
    Example:
      wangge demo
      wangge demo --model teda
      wangge demo --dir ./demo-out
    """
    from wangge.app import demo as demos

    if model is not None:
        from wangge import rulesets

        rulesets.path(model)  # an unknown name fails here, listing the shipped ones
        click.echo(demos.tour(model, _workdir(workdir) if workdir else None))
        return
    click.echo(demos.field_day(_workdir(workdir)))


def _workdir(workdir: Path | None) -> Path:
    if workdir is None:
        import tempfile

        return Path(tempfile.mkdtemp(prefix="wangge-demo-"))
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot use {workdir} for the demo: {exc.strerror}") from None
    return workdir


@cli.group()
def rules() -> None:
    """Check, compile and summarise rule files (*.wg).

    \b
    Example:
      wangge rules check district.wg
      wangge rules show district.wg
    """


def _load_rules(path: str):
    """The compiled ruleset, or every problem on stderr and exit 1."""
    from wangge import dsl
    from wangge.core.errors import RuleFileError

    try:
        return dsl.load(path)
    except RuleFileError as exc:
        click.echo(str(exc), err=True)
        sys.exit(exc.exit_code)


@rules.command("check")
@click.argument("files", nargs=-1, required=True)
def rules_check(files: tuple[str, ...]) -> None:
    """Report every problem in FILES; exit 0 if there are none, 1 otherwise.

    \b
    Example:
      wangge rules check rulesets/national.wg district.wg
    """
    from wangge import dsl
    from wangge.dsl.diagnostics import format_all

    found = dsl.check(files)
    if found:
        click.echo(format_all(found), err=True)
        sys.exit(1)
    click.echo(f"ok: {len(files)} file{'s' if len(files) != 1 else ''}, no problems")


@rules.command("compile")
@click.argument("file")
@click.option("--json", "as_json", is_flag=True, help="Print the compiled ruleset as canonical JSON.")
def rules_compile(file: str, as_json: bool) -> None:
    """Compile FILE; print its version, or with --json the canonical JSON.

    \b
    Example:
      wangge rules compile district.wg --json > district.json
    """
    ruleset = _load_rules(file)
    click.echo(ruleset.canonical_json() if as_json else f"{ruleset.name} {ruleset.version}")


@rules.command("show")
@click.argument("file")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
              help="Language of the labels shown.")
def rules_show(file: str, lang: str) -> None:
    """Summarise FILE: levels, catalogue, lifecycle, escalation, scoring.

    \b
    Example:
      wangge rules show district.wg --lang en
    """
    from wangge import dsl

    click.echo(dsl.summary(_load_rules(file), lang))


@cli.command()
@click.argument("names", nargs=-1)
def bench(names: tuple[str, ...]) -> None:
    """Run benchmarks; each prints ratios against a baseline measured in the same run.

    With no NAME, runs them all. Names are the modules in bench/ without the
    `bench_` prefix.

    \b
    Example:
      wangge bench capture
      wangge bench
    """
    import importlib
    import pkgutil

    import wangge.bench

    available = sorted(
        m.name.removeprefix("bench_") for m in pkgutil.iter_modules(wangge.bench.__path__) if m.name.startswith("bench_")
    )
    for name in names:
        if name not in available:
            raise UsageError(f"no benchmark {name!r}: expected one of {', '.join(available)}")
    for name in names or available:
        importlib.import_module(f"wangge.bench.bench_{name}").main()


# -- transport: the master's server, the tablet's sync, device enrollment -----


@cli.command()
@click.argument("master_store")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8470, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port (0 picks a free one and prints it).")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False), help="Rule file to run and hot-reload.")
@click.option("--inbox", type=click.Path(file_okay=False), help="Folder of bundles dropped from USB sticks.")
@click.option("--cert", type=click.Path(exists=True, dir_okay=False), help="TLS certificate file (PEM).")
@click.option("--key", "keyfile", type=click.Path(exists=True, dir_okay=False), help="TLS private key file (PEM).")
def serve(master_store, host, port, rules_file, inbox, cert, keyfile) -> None:
    """Serve the master store at MASTER_STORE to tablets over HTTP.

    \b
    Example:
      wangge serve office.db --rules street.wg --inbox ./usb-inbox
      wangge serve office.db --host 0.0.0.0 --cert office.pem --key office.key
    """
    import logging

    from wangge.app import serving

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    serving.serve(master_store, host=host, port=port, rules_file=rules_file, inbox=inbox,
                  certfile=cert, keyfile=keyfile, echo=click.echo)


@cli.command("sync")
@click.argument("tablet_store")
@click.option("--master", "master_url", required=True, help="The master's URL, e.g. http://10.0.0.2:8470")
@click.option("--passphrase", prompt=True, hide_input=True, envvar="WANGGE_PASSPHRASE",
              help="The worker's passphrase (prompted if not given).")
def sync_command(tablet_store, master_url, passphrase) -> None:
    """Sync the tablet store at TABLET_STORE with a master over HTTP.

    Sends the tablet's changes and photos, receives its grids' news, and
    shows ops and bytes each way; repeats once more if the master asks for a
    repair. On failure exits non-zero with one line, and nothing is lost:
    run it again.

    \b
    Example:
      wangge sync tablet.db --master http://10.0.0.2:8470
    """
    from wangge.app import commands

    click.echo(commands.sync_tablet(tablet_store, master_url, passphrase, progress=True))


@cli.group()
def device() -> None:
    """Enroll, approve, revoke and list tablets.

    \b
    Example:
      wangge device enroll tablet.db --name 王芳的平板 --master http://10.0.0.2:8470
      wangge device approve office.db DEVICE_ID --worker 王芳
    """


@device.command("enroll")
@click.argument("tablet_store")
@click.option("--name", required=True, help="A name the office will recognise, e.g. 王芳的平板.")
@click.option("--master", "master_url", default=None, help="Send the request to this master now.")
@click.option("--passphrase", prompt=True, hide_input=True, envvar="WANGGE_PASSPHRASE",
              help="The worker's passphrase (prompted if not given).")
def device_enroll(tablet_store, name, master_url, passphrase) -> None:
    """Make this tablet's enrollment request (also as text for a QR code).

    \b
    Example:
      wangge device enroll tablet.db --name 王芳的平板
    """
    from wangge.app import commands

    click.echo(commands.enroll_tablet(tablet_store, passphrase, name, master_url))


@device.command("approve")
@click.argument("master_store")
@click.argument("request")
@click.option("--worker", required=True, help="The worker (id or name) the tablet belongs to.")
def device_approve(master_store, request, worker) -> None:
    """Approve a tablet: REQUEST is its device id or its wangge-enroll:1: text.

    \b
    Example:
      wangge device approve office.db wangge-enroll:1:eyJ... --worker 王芳
    """
    from wangge.app import commands

    click.echo(commands.approve_device(master_store, request, worker))


@device.command("trust")
@click.argument("tablet_store")
@click.argument("card")
@click.option("--passphrase", prompt=True, hide_input=True, envvar="WANGGE_PASSPHRASE",
              help="The worker's passphrase (prompted if not given).")
def device_trust(tablet_store, card, passphrase) -> None:
    """On a tablet with no network: learn the master from the card `wangge device approve` printed.

    A tablet that can reach the master learns it by itself at its first sync.

    \b
    Example:
      wangge device trust tablet.db wangge-master:1:eyJ...
    """
    from wangge.app import commands

    click.echo(commands.trust_card(tablet_store, passphrase, card))


@device.command("revoke")
@click.argument("master_store")
@click.argument("device_id")
def device_revoke(master_store, device_id) -> None:
    """Revoke a tablet; its next sync is refused.

    \b
    Example:
      wangge device revoke office.db 01a2030f-d16f-7125-af37-257c82a4bb26
    """
    from wangge.app import commands

    click.echo(commands.revoke_device(master_store, device_id))


@device.command("list")
@click.argument("master_store")
def device_list(master_store) -> None:
    """List the tablets registered at a master.

    \b
    Example:
      wangge device list office.db
    """
    from wangge.app import commands

    click.echo(commands.device_table(master_store))


@device.command("registry")
@click.argument("master_store")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="File to write the snapshot to.")
def device_registry(master_store, out) -> None:
    """Write the device registry as a snapshot signed by the master (also served at GET /registry).

    \b
    Example:
      wangge device registry office.db --out registry.json
    """
    from wangge.app import commands

    click.echo(commands.registry_snapshot(master_store, out))


@cli.group()
def bundle() -> None:
    """Sync bundles as files, for sites with no network (a USB stick).

    \b
    Example:
      wangge bundle export tablet.db --out /media/usb/push.wgb
      wangge bundle import office.db /media/usb/push.wgb
      wangge bundle import tablet.db /media/usb/push.wgb.reply
    """


_PASSPHRASE = click.option("--passphrase", envvar="WANGGE_PASSPHRASE", default=None,
                           help="The worker's passphrase, for an encrypted tablet (or set WANGGE_PASSPHRASE).")


def _sync_parts(store_path: str, keys_path: str | None, passphrase: str | None = None):
    """The store, opened (unlocked if it is an encrypted tablet), and its keys (the store's own
    unless a key file is given)."""
    from wangge.app import exchange, stores

    opened = stores.open_any(store_path, passphrase)
    try:
        return opened, exchange.keys_for(opened, keys_path)
    except WanggeError:
        opened.close()
        raise


@bundle.command("export")
@click.argument("store_path", metavar="TABLET_STORE")
@click.option("--keys", "keys_path", default=None, help="A private key file (default: the store's own keys).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Bundle file to write.")
@_PASSPHRASE
def bundle_export(store_path: str, keys_path: str | None, out: str, passphrase: str | None) -> None:
    """Write the tablet's unsent changes to a bundle file (atomically).

    \b
    Example:
      wangge bundle export tablet.db --out /media/usb/push.wgb
    """
    from wangge.app import exchange

    opened, keys = _sync_parts(store_path, keys_path, passphrase)
    with opened:
        if opened.role == "master":
            raise UsageError(f"{store_path} is a master store: a tablet exports its push; the master answers it "
                             f"with `wangge bundle import {store_path} PUSH_FILE`")
        size = exchange.export_push(opened, out, keys)
    click.echo(f"wrote {size:,} bytes to {out}")


@bundle.command("import")
@click.argument("store_path", metavar="STORE")
@click.argument("bundle_file")
@click.option("--keys", "keys_path", default=None, help="A private key file (default: the store's own keys).")
@click.option("--reply", "reply_out", type=click.Path(dir_okay=False),
              help="Where the master writes its reply (default: BUNDLE_FILE.reply).")
@_PASSPHRASE
def bundle_import(store_path: str, bundle_file: str, keys_path: str | None, reply_out: str | None,
                  passphrase: str | None) -> None:
    """Import a bundle: on a master a tablet's push (writing the reply), on a tablet the master's reply.

    \b
    Example:
      wangge bundle import office.db /media/usb/push.wgb
    """
    from wangge.app import Office, exchange
    from wangge.sync.transport import files

    files.read_bundle(bundle_file)  # an unreadable file is said before any store is opened
    opened, keys = _sync_parts(store_path, keys_path, passphrase)
    with opened:
        with _naming(bundle_file):
            if opened.role == "master":
                done = exchange.import_push(opened, bundle_file, Office(opened).installed_ruleset,
                                            reply_to=reply_out, keys=keys)
                click.echo(f"{done.summary}; reply written to {done.reply}")
            else:
                click.echo(exchange.import_reply(opened, bundle_file, keys).summary())


@contextmanager
def _naming(bundle_file: str):
    """Say which file a refused bundle came from: an inbox holds dozens."""
    from wangge.core.errors import SyncError

    try:
        yield
    except SyncError as exc:
        error = click.ClickException(f"{bundle_file}: {exc}")
        error.exit_code = exc.exit_code
        raise error from None


@cli.command("conflicts")
@click.argument("store_path", metavar="MASTER_STORE")
def conflicts_command(store_path: str) -> None:
    """List conflicts for the office to review: critical fields, stale moves, proposals, quarantined ops.

    \b
    Example:
      wangge conflicts office.db
    """
    with _office(store_path) as office:
        rows = office.conflicts()
    if not rows:
        click.echo("no conflicts")
    for r in rows:
        number = f"#{r['id']}"
        what = (f"held {r['lost']!r}" if r["kind"] == "quarantine" else f"kept {r['kept']!r}, other {r['lost']!r}")
        click.echo(f"{number:<5} {r['kind']:<10} {r['entity']} {r['entity_id']} {r['field']} from {r['device']}: "
                   f"{what} — {r['note']}")
    if rows:
        click.echo("answer one with: wangge resolve MASTER_STORE NUMBER accept|reject|keep|take|ack|release|discard")


@cli.command("resolve")
@click.argument("store_path", metavar="MASTER_STORE")
@click.argument("number", type=int)
@click.argument("how", type=click.Choice(["accept", "reject", "keep", "take", "ack", "release", "discard"]))
@click.option("--by", "by", default="office", show_default=True, help="Who answers, for the record.")
@click.option("--note", default="", help="Why, for the record.")
def resolve_command(store_path: str, number: int, how: str, by: str, note: str) -> None:
    """Answer a conflict `wangge conflicts` listed, by its number.

    A proposal (an office move made on a tablet): accept (the office makes the
    move, which then syncs) or reject. A critical field: keep the value held,
    or take the one queued (a new edit that syncs). A stale move: ack. A
    quarantined op (a tablet's clock ran ahead, say): release (checked as the
    tablet's, then made at the office, stamped now) or discard (kept on record).

    \b
    Example:
      wangge resolve office.db 3 accept --by 系统中心
      wangge resolve office.db 4 take --note "confirmed by phone"
      wangge resolve office.db 7 release --note "tablet clock set right"
    """
    with _office(store_path) as office:
        click.echo(office.resolve(number, how, by=by, note=note))


@cli.group("tombstones")
def tombstones_group() -> None:
    """Deleted rows kept as tombstones until every tablet has seen the deletion.

    \b
    Example:
      wangge tombstones collect office.db
    """


@tombstones_group.command("collect")
@click.argument("store_path", metavar="MASTER_STORE")
@click.option("--absent-days", type=click.FloatRange(min=1), default=30, show_default=True,
              help="A tablet not seen for this long no longer holds deletions back; on return it downloads afresh.")
def tombstones_collect_command(store_path: str, absent_days: float) -> None:
    """Remove deleted rows (and their ops) that every active tablet has acknowledged.

    \b
    Example:
      wangge tombstones collect office.db --absent-days 30
    """
    with _office(store_path) as office:
        done = office.collect_tombstones(absent_days)
    click.echo(f"collected {done.removed} deleted rows below log position {done.horizon}; "
               f"{done.kept} tombstones kept (not yet seen by every tablet, or still referred to)")
    if done.absent:
        click.echo(f"absent longer than {absent_days:g} days, will download afresh on return: {', '.join(done.absent)}")


@cli.command("escalate")
@click.argument("store_path", metavar="STORE")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False), help="Rule file (default: the store's own).")
@click.option("--now", type=click.DateTime(["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]), default=None,
              help="Sweep as of this local time (default: now).")
def escalate_command(store_path: str, rules_file: str | None, now: datetime | None) -> None:
    """Move overdue open cases up their escalation chain, never past the ceiling.

    Running it twice at the same time changes nothing the second time.

    \b
    Example:
      wangge escalate office.db
      wangge escalate office.db --rules rulesets/shushan.wg --now "2026-10-20 09:00"
    """
    from wangge.core.report import table

    with _office(store_path) as office:
        swept = office.escalate(_moment(now), _rules_or_none(rules_file))
    moved, stuck = swept.moved, swept.at_ceiling
    rows = [[m.case[:8], f"{m.from_step}→{m.to_step}", m.level, m.owner, m.reason] for m in moved]
    click.echo(table(["case", "step", "level", "owner", "why"], rows, title=f"Escalated: {len(moved)}"))
    if stuck:
        click.echo(f"{len(stuck)} overdue case(s) already at their ceiling")


@cli.command("explain")
@click.argument("store_path", metavar="STORE")
@click.argument("case")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False), help="Rule file (default: the store's own).")
def explain_command(store_path: str, case: str, rules_file: str | None) -> None:
    """Explain a case: which rule routed it, its deadline, escalation and events.

    \b
    Example:
      wangge explain office.db C20261012001
    """
    with _office(store_path) as office:
        click.echo(office.explain(case, _rules_or_none(rules_file)))


@cli.command("score")
@click.argument("store_path", metavar="STORE")
@click.option("--month", required=True, type=click.DateTime(["%Y-%m"]), help="The month to score, e.g. 2026-10.")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False), help="Rule file (default: the store's own).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, writable=True), help="Also write the scores as CSV.")
def score_command(store_path: str, month: datetime, rules_file: str | None, csv_path: str | None) -> None:
    """Score every worker and grid for a month by the ruleset's formulas.

    \b
    Example:
      wangge score office.db --month 2026-10
      wangge score office.db --month 2026-10 --csv scores-2026-10.csv
    """
    from wangge.app import scores
    from wangge.core.report import table

    with _office(store_path) as office:
        results = office.scores(month.year, month.month, _rules_or_none(rules_file))
    click.echo(table(list(scores.HEADER), [scores.row(r) for r in results], title=f"Scores for {month:%Y-%m}"))
    if csv_path:
        scores.write_csv(results, csv_path)
        click.echo(f"wrote {csv_path}")


@cli.group()
def grid() -> None:
    """The street's grid cells.

    \b
    Example:
      wangge grid add office.db TF.03 --level 网格 --name 泰丰3网格 --upper TF
    """


@grid.command("add")
@click.argument("store_path", metavar="STORE")
@click.argument("code")
@click.option("--level", required=True, help="A grid level of the ruleset, e.g. 网格.")
@click.option("--name", required=True, help="The cell's name.")
@click.option("--upper", default=None, help="Code of the cell above it.")
@click.option("--grade", default=None, help="Its class or grade at that level (甲/乙/丙, A/B/C).")
def grid_add(store_path: str, code: str, level: str, name: str, upper: str | None, grade: str | None) -> None:
    """Add a grid cell with hierarchical CODE (e.g. TF.03 under TF).

    \b
    Example:
      wangge grid add office.db TF --level 社区 --name 泰丰社区
      wangge grid add office.db TF.03 --level 网格 --name 泰丰3网格 --upper TF --grade A
    """
    with _office(store_path) as office:
        office.add_grid(code, level=level, name=name, upper=upper, grade=grade)
    click.echo(f"added grid {code} ({level} {name})")


@cli.group()
def worker() -> None:
    """The street's workers and their grids.

    \b
    Example:
      wangge worker add office.db 王芳 --role 网格员 --grid TF.03
    """


@worker.command("add")
@click.argument("store_path", metavar="STORE")
@click.argument("name")
@click.option("--role", required=True, help="A role of the ruleset, e.g. 网格员.")
@click.option("--grid", "grids", multiple=True, help="Code of a grid cell the worker is responsible for (repeatable).")
@click.option("--phone", default="", help="Contact phone.")
def worker_add(store_path: str, name: str, role: str, grids: tuple[str, ...], phone: str) -> None:
    """Add a worker with a role, responsible for some grid cells.

    \b
    Example:
      wangge worker add office.db 王芳 --role 网格员 --grid TF.03
    """
    with _office(store_path) as office:
        worker_id = office.add_worker(name, role=role, grids=grids, phone=phone)
    click.echo(f"added worker {name} ({role}) as {worker_id}")


def _office(path: str):
    """The office's use cases over the plain store at ``path`` (a master, or a bare store made by `init`)."""
    from wangge.app import Office, stores

    return Office(stores.open_plain(path))


def _rules_or_none(rules_file: str | None):
    return _load_rules(rules_file) if rules_file else None


def _moment(now: datetime | None) -> datetime:
    return (now or datetime.now()).astimezone()


def main() -> None:
    """Entry point of the console script and of `python -m wangge`."""
    try:
        cli.main(prog_name="wangge")
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - the last line of defence for users
        if os.environ.get("WANGGE_DEBUG"):
            raise
        click.echo(
            f"wangge: internal error: {type(exc).__name__}: {exc} "
            "(run again with WANGGE_DEBUG=1 for details and report it)",
            err=True,
        )
        sys.exit(INTERNAL_ERROR)


if __name__ == "__main__":
    main()
