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
    from wangge.core import casework, store

    ruleset = _load_rules(rules_file) if rules_file else None
    with store.init(target, role) as created:
        if ruleset is not None:
            with created.write() as rec:
                casework.install_ruleset(rec.conn, ruleset)
        click.echo(f"created a {role} store at {created.url} (device {created.device_id})")
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
    if model is not None:
        from wangge import rulesets
        from wangge.rulesets import tour

        rulesets.path(model)  # an unknown name fails here, listing the shipped ones
        click.echo(tour.run(model, _workdir(workdir) if workdir else None))
        return
    from wangge.sync.fieldday import run_field_day

    click.echo(run_field_day(_workdir(workdir)))


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
@click.option("--on", "on", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Check the calendar as of this date (default: today): years deadlines set then can reach "
                   "must have an official holiday schedule.")
def rules_check(files: tuple[str, ...], on: datetime | None) -> None:
    """Report every problem in FILES; exit 0 if there are no errors (warnings are shown), 1 otherwise.

    \b
    Example:
      wangge rules check rulesets/national.wg district.wg
      wangge rules check district.wg --on 2027-11-20
    """
    from wangge import dsl
    from wangge.dsl.diagnostics import format_all

    found = dsl.check(files, today=(on or datetime.now()).date())
    if found:
        click.echo(format_all(found), err=True)
    if any(d.is_error for d in found):
        sys.exit(1)
    count = f"{len(files)} file{'s' if len(files) != 1 else ''}"
    click.echo(f"ok: {count}, no errors, {len(found)} warning{'s' if len(found) != 1 else ''}" if found
               else f"ok: {count}, no problems")


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
    from wangge.sync import fieldwork

    fieldwork.serve_master(master_store, host=host, port=port, rules_file=rules_file, inbox=inbox,
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
    from wangge.sync import fieldwork

    click.echo(fieldwork.sync_tablet(tablet_store, master_url, passphrase, progress=True))


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
    from wangge.sync import fieldwork

    click.echo(fieldwork.enroll_tablet(tablet_store, passphrase, name, master_url))


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
    from wangge.sync import fieldwork

    click.echo(fieldwork.approve_device(master_store, request, worker))


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
    from wangge.sync import fieldwork

    click.echo(fieldwork.trust_card(tablet_store, passphrase, card))


@device.command("revoke")
@click.argument("master_store")
@click.argument("device_id")
def device_revoke(master_store, device_id) -> None:
    """Revoke a tablet; its next sync is refused.

    \b
    Example:
      wangge device revoke office.db 01a2030f-d16f-7125-af37-257c82a4bb26
    """
    from wangge.sync import fieldwork

    click.echo(fieldwork.revoke_device(master_store, device_id))


@device.command("list")
@click.argument("master_store")
def device_list(master_store) -> None:
    """List the tablets registered at a master.

    \b
    Example:
      wangge device list office.db
    """
    from wangge.sync import fieldwork

    click.echo(fieldwork.device_table(master_store))


@device.command("registry")
@click.argument("master_store")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="File to write the snapshot to.")
def device_registry(master_store, out) -> None:
    """Write the device registry as a snapshot signed by the master (also served at GET /registry).

    \b
    Example:
      wangge device registry office.db --out registry.json
    """
    from wangge.sync import fieldwork

    click.echo(fieldwork.registry_snapshot(master_store, out))


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
    """The store, opened (unlocked if it is an encrypted tablet), and its keys.

    Keys come from the store itself unless a key file is given.
    """
    from wangge.core import store
    from wangge.sync import atrest, tables
    from wangge.sync.identity import adopt_keys, store_keys
    from wangge.sync.keys import DeviceKeys

    if atrest.keyfile_path(store_path).exists():
        if passphrase is None:
            raise UsageError(f"{store_path} is an encrypted tablet: give --passphrase or set WANGGE_PASSPHRASE")
        opened = atrest.open_tablet(store_path, passphrase, for_sync=True, extra_migrations=tables.MIGRATIONS)
    else:
        opened = store.open(store_path, extra_migrations=tables.MIGRATIONS)
    if keys_path is None:
        return opened, store_keys(opened)
    try:
        return opened, adopt_keys(opened, DeviceKeys.from_bytes(Path(keys_path).read_bytes()))
    except OSError as exc:
        opened.close()
        raise UsageError(f"cannot read key file {keys_path}: {exc.strerror}") from None
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
    from wangge.sync import files, protocol
    from wangge.sync.fieldwork import known_master

    opened, keys = _sync_parts(store_path, keys_path, passphrase)
    with opened:
        if opened.role == "master":
            raise UsageError(f"{store_path} is a master store: a tablet exports its push; the master answers it "
                             f"with `wangge bundle import {store_path} PUSH_FILE`")
        # Written inside the push's transaction: a failed write leaves the tablet as it was.
        data = protocol.DeviceSync(opened, keys, known_master(opened)).make_push(
            deliver=lambda made: files.write_atomic(out, made))
    click.echo(f"wrote {len(data):,} bytes to {out}")


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
    from wangge.sync import files, protocol
    from wangge.sync.fieldwork import installed_rules

    data = files.read_bundle(bundle_file)
    opened, keys = _sync_parts(store_path, keys_path, passphrase)
    with opened:
        if opened.role == "master":
            # Checked first: an error line after the bundle was applied would leave the office unsure.
            target = files.check_target(reply_out or bundle_file + ".reply")
            with _naming(bundle_file):
                reply, summary = protocol.MasterSync(opened, keys, ruleset=installed_rules(opened)()).exchange(data)
            try:
                files.write_atomic(target, reply)
            except UsageError as exc:
                raise UsageError(f"{summary}, but {exc}: import the same bundle again to write its reply") from None
            click.echo(f"{summary}; reply written to {target}")
        else:
            with _naming(bundle_file):
                result = protocol.DeviceSync(opened, keys, protocol.trusted_master(opened)).accept_reply(data)
            click.echo(result.summary())


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
    from wangge.core import store
    from wangge.sync import protocol, tables

    with store.open(store_path, extra_migrations=tables.MIGRATIONS) as opened:
        rows = protocol.conflicts(opened)
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
    from wangge.core import store
    from wangge.sync import review, tables

    with store.open(store_path, extra_migrations=tables.MIGRATIONS) as opened:
        click.echo(review.answer(opened, number, how, by=by, note=note))


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
    from wangge.core import store
    from wangge.sync import tables, tombstones

    with store.open(store_path, extra_migrations=tables.MIGRATIONS) as opened:
        done = tombstones.collect(opened, absent_after_days=absent_days)
    click.echo(f"collected {done.removed} deleted rows below log position {done.horizon}; "
               f"{done.kept} tombstones kept (not yet seen by every tablet, or still referred to)")
    if done.absent:
        click.echo(f"absent longer than {absent_days:g} days, will download afresh on return: {', '.join(done.absent)}")


@cli.command("escalate")
@click.argument("store_path", metavar="STORE")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False), help="Rule file (default: the store's own).")
@click.option("--now", type=click.DateTime(["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M%z",
                                            "%Y-%m-%d %H:%M%z"]), default=None,
              help="Sweep as of this time in the ruleset's zone, or with an offset such as +08:00 (default: now).")
def escalate_command(store_path: str, rules_file: str | None, now: datetime | None) -> None:
    """Move overdue open cases up their escalation chain, never past the ceiling.

    Running it twice at the same time changes nothing the second time.

    \b
    Example:
      wangge escalate office.db
      wangge escalate office.db --rules rulesets/shushan.wg --now "2026-10-20 09:00"
    """
    from wangge.core import casework
    from wangge.core.report import table

    from wangge.core.trace import stamp

    with _casework_store(store_path) as s, s.write(actor="escalation") as rec:
        ruleset = _ruleset_for(rec.conn, rules_file)
        moment = _moment(now, ruleset.settings.timezone)
        moved, stuck = casework.sweep(rec, ruleset, moment)
    rows = [[m.case[:8], f"{m.from_step}→{m.to_step}", m.level, m.owner, m.reason] for m in moved]
    title = f"Escalated: {len(moved)} as of {stamp(moment)} ({ruleset.settings.timezone})"
    click.echo(table(["case", "step", "level", "owner", "why"], rows, title=title))
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
    from wangge.core import casework

    with _casework_store(store_path) as s, s.read() as conn:
        click.echo(casework.explain(conn, _ruleset_for(conn, rules_file), case))


@cli.command("score")
@click.argument("store_path", metavar="STORE")
@click.option("--day", help="Score the day formulas for this day, e.g. 2026-10-12.")
@click.option("--week", help="Score the week formulas for this ISO week, e.g. 2026-W42.")
@click.option("--month", help="Score the month formulas for this month, e.g. 2026-10 or 2026/10.")
@click.option("--quarter", help="Score the quarter formulas for this quarter, e.g. 2026-Q4.")
@click.option("--half-year", "half_year", help="Score the half-year formulas, e.g. 2026-H2.")
@click.option("--year", help="Score the year formulas for this year, e.g. 2026.")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False), help="Rule file (default: the store's own).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, writable=True), help="Also write the scores as CSV.")
def score_command(store_path: str, day, week, month, quarter, half_year, year, rules_file: str | None,
                  csv_path: str | None) -> None:
    """Score every worker and grid for one period by the ruleset's formulas of that period.

    Give exactly one of --day, --week, --month, --quarter, --half-year, --year;
    formulas say which period they score (`period quarter`, month by default).

    \b
    Example:
      wangge score office.db --month 2026-10
      wangge score office.db --quarter 2026-Q4 --csv scores-2026-Q4.csv
      wangge score office.db --year 2026
    """
    import csv

    from wangge.core import casework, periods
    from wangge.core.report import table

    given = {kind: text for kind, text in zip(periods.KINDS, (day, week, month, quarter, half_year, year)) if text}
    if len(given) != 1:
        raise UsageError("give exactly one of --day, --week, --month, --quarter, --half-year, --year "
                         f"(got {len(given) or 'none'}), e.g. --month 2026-10")
    ((kind, text),) = given.items()
    try:
        period = periods.parse(kind, text)
    except UsageError as exc:
        raise UsageError(f"--{kind.replace('_', '-')}: {exc}") from None
    with _casework_store(store_path) as s, s.read() as conn:
        ruleset = _ruleset_for(conn, rules_file)
        results = casework.period_scores(conn, ruleset, period)
    if not any(f.period == kind for f in ruleset.formulas):
        kinds = sorted({f.period for f in ruleset.formulas}, key=periods.KINDS.index)
        click.echo(f"no formula scores by {kind.replace('_', ' ')}: this ruleset's formulas score by "
                   f"{', '.join(kinds) or 'nothing'}")
        return
    header = ["subject", "worker / grid", "role / level", "grids", "closed/registered", "total", "rank", "tier",
              "empty this period", "targets"]
    rows = [[r.subject, r.worker, r.role, r.grids, f"{r.metrics['closed']:g}/{r.metrics['registered']:g}",
             r.score.total if r.score.scored else "-", f"{r.score.rank}/{r.score.peers}" if r.score.rank else "-",
             r.score.tier or "-", r.score.empty_note or "-", "; ".join(str(t) for t in r.targets) or "-"]
            for r in results]
    click.echo(table(header, rows, title=f"Scores for {period.label} ({kind.replace('_', ' ')})"))
    if csv_path:
        # Formulas differ by role, level and grade: one column per indicator any of them has.
        indicators = list(dict.fromkeys(p.indicator for r in results for p in r.score.parts))
        try:
            with open(csv_path, "w", newline="", encoding="utf-8") as out:
                writer = csv.writer(out)
                writer.writerow(header + ["formula"] + indicators)
                for row, r in zip(rows, results):
                    points = {p.indicator: p.points for p in r.score.parts}
                    writer.writerow(row + [r.score.formula] + [points.get(code, "") for code in indicators])
        except OSError as exc:
            raise UsageError(f"cannot write {csv_path}: {exc.strerror}") from None
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
    from wangge.core import roster

    with _casework_store(store_path) as s, s.write(actor="office") as rec:
        roster.add_grid(rec, code, level, name, upper, grade)
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
    from wangge.core import roster

    with _casework_store(store_path) as s, s.write(actor="office") as rec:
        worker_id = roster.add_worker(rec, name, role, grids, phone)
    click.echo(f"added worker {name} ({role}) as {worker_id}")


# -- roster: staffing against headcounts, stipends -------------------------------

@cli.group("roster")
def roster_group() -> None:
    """Check the roster against the ruleset: staff per grid, stipends owed.

    \b
    Example:
      wangge roster check office.db
      wangge roster stipends office.db --month 2026-10
    """


@roster_group.command("check")
@click.argument("store_path", metavar="STORE")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False), help="Rule file (default: the store's own).")
def roster_check(store_path: str, rules_file: str | None) -> None:
    """List the grid cells short of the staff their roles' `headcount` asks for; exit 1 if any is short.

    \b
    Example:
      wangge roster check office.db
    """
    from wangge.core import roster
    from wangge.core.report import table

    with _casework_store(store_path) as s, s.read() as conn:
        ruleset = _ruleset_for(conn, rules_file)
        found = roster.staffing(conn, ruleset)
    if not found:
        click.echo("no role has a headcount: nothing to check")
        return
    short = [f for f in found if f.short]
    if not short:
        click.echo(f"ok: {len(found)} grid cell posts staffed as the headcounts ask")
        return
    rows = [[f.grid, f.name, f.level, f.role, f.needed, f.have, f.short] for f in short]
    click.echo(table(["grid", "name", "level", "role", "needed", "have", "short"], rows,
                     title=f"Short of staff: {len(short)} of {len(found)}"))
    sys.exit(1)


@roster_group.command("stipends")
@click.argument("store_path", metavar="STORE")
@click.option("--month", help="The month, e.g. 2026-10 or 2026/10.")
@click.option("--quarter", help="The quarter, e.g. 2026-Q4.")
@click.option("--year", help="The year, e.g. 2026.")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False), help="Rule file (default: the store's own).")
def roster_stipends(store_path: str, month, quarter, year, rules_file: str | None) -> None:
    """The stipend each worker is owed for a month, quarter or year, by their role's `stipend`.

    \b
    Example:
      wangge roster stipends office.db --month 2026-10
    """
    from wangge.core import periods, roster
    from wangge.core.report import table

    given = {k: v for k, v in (("month", month), ("quarter", quarter), ("year", year)) if v}
    if len(given) != 1:
        raise UsageError("give exactly one of --month, --quarter, --year, e.g. --month 2026-10")
    ((kind, text),) = given.items()
    try:
        period = periods.parse(kind, text)
    except UsageError as exc:
        raise UsageError(f"--{kind}: {exc}") from None
    with _casework_store(store_path) as s, s.read() as conn:
        owed = roster.stipends(conn, _ruleset_for(conn, rules_file), period)
    rows = [[o.worker, o.role, f"{o.amount:.2f}", o.why] for o in owed]
    rows.append(["total", "", f"{sum(o.amount for o in owed):.2f}", f"{len(owed)} workers"])
    click.echo(table(["worker", "role", "CNY", "why"], rows, title=f"Stipends for {period.label}"))


# -- meetings and project delivery logs: office records ----------------------------

@cli.group("meeting")
def meeting_group() -> None:
    """Meetings the rule file's cadences ask for: which are due, and each one held with its attendance.

    \b
    Example:
      wangge meeting due office.db
      wangge meeting record office.db 旬会 --at "2026-10-12 09:00" --attendee 王芳 --attendee 李明
    """


@meeting_group.command("due")
@click.argument("store_path", metavar="STORE")
@click.option("--now", type=click.DateTime(["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"]), default=None,
              help="As of this time in the ruleset's zone (default: now).")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False), help="Rule file (default: the store's own).")
def meeting_due(store_path: str, now: datetime | None, rules_file: str | None) -> None:
    """List each meeting of the rule file with its last sitting and when the next is due.

    \b
    Example:
      wangge meeting due office.db --now 2026-10-20
    """
    from wangge.core import meetings
    from wangge.core.report import table
    from wangge.core.trace import stamp

    with _casework_store(store_path) as s, s.read() as conn:
        ruleset = _ruleset_for(conn, rules_file)
        moment = _moment(now, ruleset.settings.timezone)
        found = meetings.due(ruleset, meetings.held(conn), moment)
    zone = ruleset.settings.timezone
    rows = [[d.meeting, stamp(d.last, zone) if d.last else "never", stamp(d.due, zone) if d.due else "now",
             "DUE" if d.overdue else ""] for d in found]
    click.echo(table(["meeting", "last held", "next due", ""], rows, title=f"Meetings as of {stamp(moment)}"))


@meeting_group.command("record")
@click.argument("store_path", metavar="STORE")
@click.argument("meeting")
@click.option("--at", "at", required=True, type=click.DateTime(["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]),
              help="When it was held, in the ruleset's zone.")
@click.option("--attendee", "attendees", multiple=True, help="A worker who attended, by name or id (repeatable).")
@click.option("--note", default="", help="Minutes or a note.")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False), help="Rule file (default: the store's own).")
def meeting_record(store_path: str, meeting: str, at: datetime, attendees: tuple[str, ...], note: str,
                   rules_file: str | None) -> None:
    """Record a meeting held and who attended.

    \b
    Example:
      wangge meeting record office.db 旬会 --at "2026-10-12 09:00" --attendee 王芳
    """
    from wangge.core import meetings

    with _casework_store(store_path) as s, s.write(actor="office") as rec:
        ruleset = _ruleset_for(rec.conn, rules_file)
        meetings.record(rec.conn, ruleset, meeting, _moment(at, ruleset.settings.timezone), attendees, note=note)
    click.echo(f"recorded {meeting} with {len(attendees)} attendee(s)")


@cli.group("project")
def project_group() -> None:
    """A service project's delivery: hours worked and activities held, logged and counted.

    \b
    Example:
      wangge project log office.db 三社 --hours 6 --at "2026-10-12 09:00"
      wangge project progress office.db 三社
    """


@project_group.command("log")
@click.argument("store_path", metavar="STORE")
@click.argument("project")
@click.option("--hours", type=float, default=None, help="Work hours to log.")
@click.option("--activity", is_flag=True, help="Log one activity held.")
@click.option("--at", "at", required=True, type=click.DateTime(["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"]),
              help="When, in the ruleset's zone.")
@click.option("--note", default="", help="What was done.")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False), help="Rule file (default: the store's own).")
def project_log(store_path: str, project: str, hours: float | None, activity: bool, at: datetime, note: str,
                rules_file: str | None) -> None:
    """Log work hours or an activity on PROJECT.

    \b
    Example:
      wangge project log office.db 三社 --activity --at 2026-10-12 --note 重阳节活动
    """
    from wangge.core import projects

    if (hours is None) == (not activity):
        raise UsageError("give either --hours N or --activity")
    with _casework_store(store_path) as s, s.write(actor="office") as rec:
        ruleset = _ruleset_for(rec.conn, rules_file)
        projects.log(rec.conn, ruleset, project, "activity" if activity else "hours",
                     _moment(at, ruleset.settings.timezone), hours or 0.0, note=note)
    click.echo(f"logged {'an activity' if activity else f'{hours:g} hours'} on {project}")


@project_group.command("progress")
@click.argument("store_path", metavar="STORE")
@click.argument("project")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False), help="Rule file (default: the store's own).")
def project_progress(store_path: str, project: str, rules_file: str | None) -> None:
    """Hours and activities delivered on PROJECT, counted from its log, against the rule file.

    \b
    Example:
      wangge project progress office.db 三社
    """
    from wangge.core import projects

    with _casework_store(store_path) as s, s.read() as conn:
        done = projects.progress(conn, _ruleset_for(conn, rules_file), project)
    click.echo("\n".join([f"project {project}", *(f"  {line}" for line in done.lines())]))


def _casework_store(path: str):
    from wangge.core import store

    return store.open(path)


def _ruleset_for(conn, rules_file: str | None):
    from wangge.core import casework

    if rules_file:
        return _load_rules(rules_file)
    return casework.installed_ruleset(conn)


def _moment(now: datetime | None, zone: str) -> datetime:
    """``--now`` as an aware time: typed without an offset it is the ruleset's local time, never the machine's."""
    from datetime import timezone

    from wangge.core.calendar import in_zone

    return in_zone(now or datetime.now(timezone.utc), zone)


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
