"""The `wangge` command: a thin click shell over the library.

Library errors (`WanggeError`) become one line on stderr and the error's exit
code; any other exception is reported as an internal error in one line, so
no Python traceback reaches a user (set WANGGE_DEBUG=1 to see it).

It speaks Chinese or English (`wangge.cli_i18n`): its own messages are written
in English inside ``_()``, its help texts in English, and the catalog
locale/zh/LC_MESSAGES/cli.po gives them in Chinese.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import click

from wangge import cli_i18n
from wangge.cli_i18n import N_, _
from wangge.core.errors import UsageError, WanggeError

#: Exit code for an unexpected internal error (sysexits.h EX_SOFTWARE).
INTERNAL_ERROR = 70


class WanggeGroup(click.Group):
    """A click group that turns library errors into clean one-line exits, in the run's language."""

    def main(self, args=None, *extra, **options):
        # The language is known before click parses a word, so its usage errors and help speak it too.
        args = list(sys.argv[1:] if args is None else args)
        cli_i18n.use(cli_i18n.choose(args, os.environ), self)
        return super().main(args, *extra, **options)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except WanggeError as exc:
            error = click.ClickException(cli_i18n.explain(exc))
            error.exit_code = exc.exit_code
            raise error from None


@click.group(cls=WanggeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="wangge")
@click.option("--lang", type=click.Choice(cli_i18n.LANGUAGES), envvar=cli_i18n.ENVIRONMENT, expose_value=False,
              help="Language of the messages: zh or en (default: WANGGE_LANG, else zh where the locale is "
                   "Chinese, else en).")
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
    made = stores.create_database(target)
    if made is not None:
        click.echo(_("created the PostgreSQL database %(database)s (it did not exist)", database=made))
    with Office(stores.create(target, role)) as created:
        if ruleset is not None:
            created.install(ruleset)
        click.echo(_("created a %(role)s store at %(url)s (device %(device)s)", role=role, url=created.store.url,
                       device=created.device_id))
        if ruleset is not None:
            click.echo(_("installed ruleset %(name)s version %(version)s", name=ruleset.name, version=ruleset.version[:12]))


@cli.command()
@click.option(
    "--dir",
    "workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the demo's databases (default: a new temporary folder).",
)
@click.option("--model", default=None, help="Tour a shipped model instead: teda, baotaqiao, shushan, jiading, lianchi, national.")
@click.option("--serve", "keep_serving", is_flag=True,
              help="Then leave the street office's console and the tablets' field apps running on 127.0.0.1 "
                   "(accounts and passphrases printed) until Ctrl-C.")
@click.option("--port", default=8470, show_default=True, type=click.IntRange(0, 65535),
              help="With --serve: the master's port (0 picks a free one).")
def demo(workdir: Path | None, model: str | None, keep_serving: bool, port: int) -> None:
    """Run the end-to-end demo on embedded SQLite and print what happened.

    A street master and two encrypted tablets: enrollment, an offline patrol
    with photos, encrypted syncs over HTTP on loopback, a conflict, the office's
    moves, an escalation and the monthly score.

    \b
    Example:
      wangge demo
      wangge demo --model teda
      wangge demo --dir ./demo-out
      wangge demo --serve
    """
    from wangge.app import demo as demos

    if model is not None:
        if keep_serving:
            raise UsageError(_("--serve runs with the field day, not with --model: drop one of them"))
        from wangge import rulesets

        rulesets.path(model)  # an unknown name fails here, listing the shipped ones
        click.echo(demos.tour(model, _workdir(workdir) if workdir else None))
        return
    from wangge.web.server import master_app, running

    folder = _workdir(workdir)
    click.echo(demos.field_day(folder, lambda service, files: running(master_app(service, files))))
    if keep_serving:
        from wangge.web import server
        from wangge.web.demo import serve_demo

        server.configure_logging()
        try:
            serve_demo(folder, port=port, echo=click.echo)
        except KeyboardInterrupt:  # Ctrl-C is how the demo ends, not an abort
            click.echo(_("demo stopped; its databases stay in %(folder)s", folder=folder))


def _workdir(workdir: Path | None) -> Path:
    if workdir is None:
        import tempfile

        return Path(tempfile.mkdtemp(prefix="wangge-demo-"))
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(_("cannot use %(folder)s for the demo: %(why)s", folder=workdir, why=exc.strerror)) from None
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
    count = _("%(count)s file", count=1) if len(files) == 1 else _("%(count)s files", count=len(files))
    if not found:
        click.echo(_("ok: %(files)s, no problems", files=count))
    else:
        warnings = _("%(count)s warning", count=1) if len(found) == 1 else _("%(count)s warnings", count=len(found))
        click.echo(_("ok: %(files)s, no errors, %(warnings)s", files=count, warnings=warnings))


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
@click.option("--json", "as_json", is_flag=True, help="After each table, one line of JSON figures.")
def bench(names: tuple[str, ...], as_json: bool) -> None:
    """Run benchmarks; each prints ratios against a baseline measured in the same run.

    With no NAME, runs them all. Names are the modules in bench/ without the
    `bench_` prefix.

    \b
    Example:
      wangge bench capture
      wangge bench field --json
      wangge bench
    """
    import importlib
    import inspect
    import pkgutil

    import wangge.bench

    available = sorted(
        m.name.removeprefix("bench_") for m in pkgutil.iter_modules(wangge.bench.__path__) if m.name.startswith("bench_")
    )
    for name in names:
        if name not in available:
            raise UsageError(_("no benchmark '%(name)s': expected one of %(expected)s", name=name,
                                 expected=", ".join(available)))
    mains = {name: importlib.import_module(f"wangge.bench.bench_{name}").main for name in names or available}
    if as_json:
        # Benchmarks whose main takes argv print a JSON line for --json; the older ones print tables only.
        plain = [name for name, main in mains.items() if "argv" not in inspect.signature(main).parameters]
        if plain:
            leave = _("leave it out or drop --json") if len(plain) == 1 else _("leave them out or drop --json")
            raise UsageError(_("--json: %(names)s print(s) tables only, no JSON line yet; %(leave)s",
                               names=", ".join(plain), leave=leave))
    for name, main in mains.items():
        main(["--json"] if as_json else []) if "argv" in inspect.signature(main).parameters else main()


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
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Processes serving the port; above 1 for a PostgreSQL master only (SQLite has one writer).")
def serve(master_store, host, port, rules_file, inbox, cert, keyfile, workers) -> None:
    """Serve the master store at MASTER_STORE to tablets over HTTP.

    \b
    Example:
      wangge serve office.db --rules street.wg --inbox ./usb-inbox
      wangge serve office.db --host 0.0.0.0 --cert office.pem --key office.key
      wangge serve postgresql://127.0.0.1/district --rules district.wg --workers 4
    """
    from wangge.web import server

    server.configure_logging()  # the command line sets up logging; the library only logs
    server.serve_master(master_store, host=host, port=port, rules_file=rules_file, inbox=inbox,
                        certfile=cert, keyfile=keyfile, echo=click.echo, workers=workers)


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
@click.option("--passphrase", prompt=True, hide_input=True, confirmation_prompt=True, envvar="WANGGE_PASSPHRASE",
              help="The worker's passphrase (asked twice if not given): at least 8 characters.")
def device_enroll(tablet_store, name, master_url, passphrase) -> None:
    """Make this tablet's enrollment request (also as text for a QR code).

    A new tablet store is encrypted under a random key, kept in
    TABLET_STORE.key and locked by the passphrase (at least 8 characters,
    not one repeated).

    \b
    Example:
      wangge device enroll tablet.db --name 王芳的平板
    """
    from wangge.app import commands

    click.echo(commands.enroll_tablet(tablet_store, passphrase, name, master_url))


@device.command("passphrase")
@click.argument("tablet_store")
@click.option("--passphrase", prompt="Current passphrase", hide_input=True, envvar="WANGGE_PASSPHRASE",
              help="The passphrase now (prompted if not given).")
@click.option("--new-passphrase", prompt="New passphrase", hide_input=True, confirmation_prompt=True,
              envvar="WANGGE_NEW_PASSPHRASE",
              help="The new passphrase (asked twice if not given): at least 8 characters.")
def device_passphrase(tablet_store, passphrase, new_passphrase) -> None:
    """Change the passphrase of the tablet store at TABLET_STORE.

    Re-locks the database key in TABLET_STORE.key under the new passphrase;
    the database itself is not re-encrypted, so this takes a second.

    \b
    Example:
      wangge device passphrase tablet.db
    """
    from wangge.sync.device import atrest

    path = atrest.change_passphrase(tablet_store, passphrase, new_passphrase)
    click.echo(_("passphrase changed: %(path)s re-locked under the new one (the database was not re-encrypted)",
                 path=path))


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


@cli.group("master")
def master_group() -> None:
    """Look after a master's own identity.

    \b
    Example:
      wangge master rotate-keys office.db
    """


@master_group.command("rotate-keys")
@click.argument("master_store")
def master_rotate_keys(master_store) -> None:
    """Give the master at MASTER_STORE new signing and encryption keys.

    Keeps the old key file aside and prints, for each active tablet, the
    card it must scan (wangge device trust) before it syncs again; see
    docs/deploy.md.

    \b
    Example:
      wangge master rotate-keys office.db
    """
    from datetime import datetime, timezone

    from wangge.app import commands

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    click.echo(commands.rotate_master_keys(master_store, stamp=stamp))


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
            raise UsageError(_("%(store)s is a master store: a tablet exports its push; the master answers it "
                               "with `wangge bundle import %(store)s PUSH_FILE`", store=store_path))
        size = exchange.export_push(opened, out, keys)
    click.echo(_("wrote %(size)s bytes to %(file)s", size=format(size, ","), file=out))


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
                click.echo(_("%(summary)s; reply written to %(file)s", summary=done.summary, file=done.reply))
            else:
                click.echo(exchange.import_reply(opened, bundle_file, keys).summary())


@contextmanager
def _naming(bundle_file: str):
    """Say which file a refused bundle came from: an inbox holds dozens."""
    from wangge.core.errors import SyncError

    try:
        yield
    except SyncError as exc:
        error = click.ClickException(f"{bundle_file}: {cli_i18n.explain(exc)}")
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
    from wangge.app import boards

    with _office(store_path) as office:
        ruleset = office.installed_ruleset()  # without one, times read in UTC
        with office.store.read() as conn:
            rows = boards.conflicts(conn, ruleset)
    if not rows:
        click.echo(_("no conflicts"))
    for row in rows:
        click.echo(boards.conflict_line(row))
    if rows:
        click.echo(_("answer one with: wangge resolve MASTER_STORE NUMBER accept|reject|keep|take|ack|release|discard"))


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
    click.echo(_("collected %(removed)s deleted rows below log position %(horizon)s; %(kept)s tombstones kept "
                 "(not yet seen by every tablet, or still referred to)",
                 removed=done.removed, horizon=done.horizon, kept=done.kept))
    if done.absent:
        click.echo(_("absent longer than %(days)s days, will download afresh on return: %(devices)s",
                     days=format(absent_days, "g"), devices=", ".join(done.absent)))


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
    from wangge.core.report import table

    from wangge.core.trace import stamp

    with _office(store_path) as office:
        ruleset = _rules_or_none(rules_file) or office.ruleset
        moment = _moment(now, ruleset.settings.timezone)
        swept = office.escalate(moment, ruleset)
    moved, stuck = swept.moved, swept.at_ceiling
    rows = [[m.case[:8], f"{m.from_step}→{m.to_step}", m.level, m.owner, m.reason] for m in moved]
    title = _("Escalated: %(count)s as of %(moment)s (%(zone)s)", count=len(moved), moment=stamp(moment),
              zone=ruleset.settings.timezone)
    click.echo(table([_("case"), _("step"), _("level"), _("owner"), _("why")], rows, title=title))
    if stuck:
        click.echo(_("%(count)s overdue case(s) already at their ceiling", count=len(stuck)))


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
    from wangge.app import scores
    from wangge.core import periods
    from wangge.core.report import table

    given = {kind: text for kind, text in zip(periods.KINDS, (day, week, month, quarter, half_year, year)) if text}
    if len(given) != 1:
        raise UsageError(_("give exactly one of --day, --week, --month, --quarter, --half-year, --year "
                           "(got %(count)s), e.g. --month 2026-10", count=len(given) or _("none")))
    ((kind, text),) = given.items()
    try:
        period = periods.parse(kind, text)
    except UsageError as exc:
        raise UsageError(f"--{kind.replace('_', '-')}: {cli_i18n.explain(exc)}") from None
    with _office(store_path) as office:
        ruleset = _rules_or_none(rules_file) or office.ruleset
        results = office.period_scores(period, ruleset)
    if not any(f.period == kind for f in ruleset.formulas):
        kinds = sorted({f.period for f in ruleset.formulas}, key=periods.KINDS.index)
        click.echo(_("no formula scores by %(period)s: this ruleset's formulas score by %(periods)s",
                     period=kind.replace("_", " "), periods=", ".join(kinds) or _("nothing")))
        return
    click.echo(table(list(scores.HEADER), [scores.row(r) for r in results],
                     title=_("Scores for %(period)s (%(kind)s)", period=period.label, kind=kind.replace("_", " "))))
    if csv_path:
        scores.write_csv(results, csv_path)
        click.echo(_("wrote %(file)s", file=csv_path))


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
      wangge grid add office.db TF.03 --level 网格 --name 泰丰3网格 --upper TF
    """
    with _office(store_path) as office:
        office.add_grid(code, level=level, name=name, upper=upper, grade=grade)
    click.echo(_("added grid %(code)s (%(level)s %(name)s)", code=code, level=level, name=name))


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
    click.echo(_("added worker %(name)s (%(role)s) as %(id)s", name=name, role=role, id=worker_id))


# -- the office console and its accounts: `wangge user`, `wangge case` -------------


_PASSWORD = click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
                         envvar="WANGGE_ACCOUNT_PASSWORD",
                         help="The account's password, at least 8 characters (prompted if not given).")


@cli.group("user")
def user_group() -> None:
    """Office accounts that log in to the console (`wangge serve`, then open / in a browser).

    \b
    Example:
      wangge user add office.db 张主任 --role 指挥中心
      wangge user add office.db 李站长 --role 社工站站长 --grid TF
    """


def _master(path: str):
    from wangge.app import stores

    return stores.open_master(path)


@user_group.command("add")
@click.argument("store_path", metavar="MASTER_STORE")
@click.argument("name")
@click.option("--role", required=True, help="A role of the installed ruleset; the lifecycle's guards use it.")
@click.option("--grid", default=None, help="Grid code: the account sees this grid and those below (default: all).")
@click.option("--department", default=None,
              help="A department of the ruleset: the account sees only the cases routed to it (and those it moved).")
@_PASSWORD
def user_add(store_path: str, name: str, role: str, grid: str | None, department: str | None, password: str) -> None:
    """Add an office account NAME with a ROLE of the ruleset (and the worker it acts as).

    \b
    Example:
      wangge user add office.db 张主任 --role 指挥中心
      WANGGE_ACCOUNT_PASSWORD=... wangge user add office.db 电信维修 --role 专业部门 --department 电信
    """
    from wangge.app import accounts

    with _master(store_path) as opened:
        made = accounts.add(opened, name, role, password, grid=grid, department=department, by="command line")
    acting = _("%(role)s, grid %(grid)s", role=made.role, grid=made.grid_code) if made.grid_code else made.role
    if made.department:
        acting = _("%(acting)s, department %(department)s", acting=acting, department=made.department)
    click.echo(_("added account %(name)s (%(role)s): log in at the console that `wangge serve` serves",
                 name=made.name, role=acting))


@user_group.command("list")
@click.argument("store_path", metavar="MASTER_STORE")
def user_list(store_path: str) -> None:
    """List the office accounts.

    \b
    Example:
      wangge user list office.db
    """
    from wangge.app import accounts
    from wangge.core.report import table

    with _master(store_path) as opened:
        found = accounts.listed(opened)
    rows = [[a.name, a.role, a.grid_code or _("(all)"), a.department or "", _("disabled") if a.disabled else
             (_("locked until %(time)s UTC", time=format(a.locked_until, "%H:%M")) if a.locked_until else _("active"))]
            for a in found]
    click.echo(table([_("account"), _("role"), _("grid"), _("department"), _("state")], rows,
                     title=_("Accounts: %(count)s", count=len(found))))


@user_group.command("disable")
@click.argument("store_path", metavar="MASTER_STORE")
@click.argument("name")
def user_disable(store_path: str, name: str) -> None:
    """Disable an account; its open sessions end at their next request.

    \b
    Example:
      wangge user disable office.db 张主任
    """
    from wangge.app import accounts

    with _master(store_path) as opened:
        click.echo(accounts.disable(opened, name, by="command line"))


@user_group.command("password")
@click.argument("store_path", metavar="MASTER_STORE")
@click.argument("name")
@_PASSWORD
def user_password(store_path: str, name: str, password: str) -> None:
    """Set an account's password; this also unlocks and re-enables it.

    \b
    Example:
      wangge user password office.db 张主任
    """
    from wangge.app import accounts

    with _master(store_path) as opened:
        click.echo(accounts.set_password(opened, name, password, by="command line"))


@cli.group("case")
def case_group() -> None:
    """Cases as an office account sees and moves them in the console, for scripts.

    \b
    Example:
      wangge case list office.db --as 张主任 --status 立案
      wangge case move office.db C20261013001 派遣 --as 张主任
    """


_AS = click.option("--as", "account_name", required=True, help="The office account to act as (`wangge user list`).")


def _acting(opened, name: str):
    from wangge.app import accounts

    found = next((a for a in accounts.listed(opened) if a.name == name), None)
    if found is None or found.disabled:
        raise UsageError(_("no usable account '%(name)s': see `wangge user list`", name=name))
    return found


@case_group.command("list")
@click.argument("store_path", metavar="MASTER_STORE")
@_AS
@click.option("--status", default="", help="A lifecycle state, e.g. 立案.")
@click.option("--grid", default="", help="A grid code: that grid and those below.")
@click.option("--class", "case_class", default="", help="A catalogue class code, e.g. 01.")
@click.option("--item", default="", help="A catalogue item code, e.g. 0103.")
@click.option("--channel", default="", help="A channel, e.g. 巡查.")
@click.option("--owner", default="", help="Part of the owner, e.g. 电信.")
@click.option("--overdue", is_flag=True, help="Only open cases past their deadline.")
@click.option("--due-soon", is_flag=True, help="Only open cases due within 24 hours.")
@click.option("--page", default=1, type=click.IntRange(min=1), help="Page of 50.")
def case_list(store_path, account_name, status, grid, case_class, item, channel, owner, overdue, due_soon, page) -> None:
    """List the cases an account sees, soonest deadline first, with counts per status.

    \b
    Example:
      wangge case list office.db --as 张主任 --overdue
    """
    from datetime import timezone

    from wangge.app import queries
    from wangge.core.report import table

    params = {"status": status, "grid": grid, "class": case_class, "item": item, "channel": channel, "owner": owner,
              "overdue": "1" if overdue else "", "due_soon": "1" if due_soon else "", "page": str(page)}
    with _master(store_path) as opened:
        account = _acting(opened, account_name)
        with opened.read() as conn:
            ruleset = queries.current_ruleset(conn)
            chosen, problems = queries.parse_filter(params, ruleset)
            if problems:
                raise UsageError("; ".join(problems))
            found = queries.queue(conn, ruleset, account, chosen, datetime.now(timezone.utc), "zh")
    counts = ", ".join(f"{k} {v}" for k, v in found.counts.items()) or _("none")
    rows = [[r.number, f"{r.item} {r.item_label}", r.grid_code, r.channel, r.status, r.owner,
             f"{r.deadline:%Y-%m-%d %H:%M}" if r.deadline else "-",
             _("overdue") if r.overdue else (_("soon") if r.due_soon else "")]
            for r in found.rows]
    headers = [_("number"), _("item"), _("grid"), _("channel"), _("status"), _("owner"), _("deadline"), ""]
    click.echo(table(headers, rows, title=_("Cases: %(total)s (page %(page)s of %(pages)s; %(counts)s)",
                                            total=found.total, page=found.page, pages=found.pages, counts=counts)))


@case_group.command("show")
@click.argument("store_path", metavar="MASTER_STORE")
@click.argument("case")
@_AS
def case_show(store_path: str, case: str, account_name: str) -> None:
    """Show a case as its console page does: facts, history, routing and the moves allowed.

    \b
    Example:
      wangge case show office.db C20261013001 --as 张主任
    """
    from datetime import timezone

    from wangge.app import queries

    with _master(store_path) as opened:
        account = _acting(opened, account_name)
        with opened.read() as conn:
            ruleset = queries.current_ruleset(conn)
            c = queries.case_detail(conn, ruleset, account, case, datetime.now(timezone.utc), "zh")
    when = (lambda t: f"{t:%Y-%m-%d %H:%M}" if t else "-")
    lines = [_("case %(number)s (%(id)s): %(description)s", number=c.number, id=c.id, description=c.description),
             _("status %(status)s; item %(item)s; grid %(grid)s; channel %(channel)s", status=c.status,
               item="%s %s" % (c.item, c.item_label), grid=" › ".join(code for _name, code, _level in c.grid_path),
               channel=c.channel),
             _("reported %(at)s by %(reporter)s; owner %(owner)s; deadline %(deadline)s (%(zone)s)",
               at=when(c.reported_at), reporter=c.reporter, owner=c.owner, deadline=when(c.deadline), zone=c.zone),
             _("history:")]
    lines += ["  - " + _("%(at)s %(move)s: %(before)s → %(after)s by %(actor)s (%(role)s) %(where)s", at=when(e.at),
                         move=e.move, before=e.from_status, after=e.to_status, actor=e.actor, role=e.role,
                         where=_("at the office") if e.via == "office" else _("on tablet %(device)s", device=e.via))
              + (_(" with %(evidence)s", evidence=", ".join(e.evidence)) if e.evidence else "")
              + (f" — {e.note}" if e.note else "")
              for e in c.timeline] or ["  " + _("(none)")]
    lines += [_("routing:")] + [f"  - {line}" for line in c.routing]
    lines += [_("photos: %(count)s", count=len(c.photos)),
              _("moves for %(name)s (%(role)s):", name=account.name, role=account.role)]
    lines += [f"  - {m.code} → {m.target}" + (_(" (needs %(needs)s)", needs=", ".join(m.needs)) if m.needs else "")
              for m in c.moves] or ["  " + _("(none from this state)")]
    click.echo("\n".join(lines))


@case_group.command("move")
@click.argument("store_path", metavar="MASTER_STORE")
@click.argument("case")
@click.argument("move")
@_AS
@click.option("--evidence", multiple=True, help="Evidence given: onsite_confirmation, callback, signature (repeatable).")
@click.option("--photo", type=click.Path(exists=True, dir_okay=False), help="A photo to attach as evidence.")
@click.option("--satisfied", type=click.Choice(["yes", "no"]), default=None, help="The resident's verdict at the callback.")
@click.option("--note", default="", help="Why, for the record.")
def case_move(store_path, case, move, account_name, evidence, photo, satisfied, note) -> None:
    """Make a lifecycle MOVE on CASE as an account, under the same rules as the console.

    \b
    Example:
      wangge case move office.db C20261013001 派遣 --as 张主任
      wangge case move office.db C20261013001 结案 --as 网格员1 --evidence onsite_confirmation
    """
    from datetime import timezone

    from wangge.app import actions
    from wangge.sync.attachments import BlobStore
    from wangge.sync.transport.fieldwork import files_folder

    upload = actions.PhotoUpload(Path(photo).read_bytes(), Path(photo).name) if photo else None
    with _master(store_path) as opened:
        account = _acting(opened, account_name)
        blobs = BlobStore(files_folder(store_path) / "blobs") if photo else None  # where `wangge serve` keeps photos
        status = actions.move(opened, account, case, move, now=datetime.now(timezone.utc), evidence=evidence,
                              note=note, satisfied={"yes": True, "no": False}.get(satisfied or ""), photo=upload,
                              blobs=blobs)
    click.echo(_("case %(case)s: %(move)s done, now %(status)s", case=case, move=move, status=status))


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
        click.echo(_("no role has a headcount: nothing to check"))
        return
    short = [f for f in found if f.short]
    if not short:
        click.echo(_("ok: %(count)s grid cell posts staffed as the headcounts ask", count=len(found)))
        return
    rows = [[f.grid, f.name, f.level, f.role, f.needed, f.have, f.short] for f in short]
    click.echo(table([_("grid"), _("name"), _("level"), _("role"), _("needed"), _("have"), _("short")], rows,
                     title=_("Short of staff: %(short)s of %(all)s", short=len(short), all=len(found))))
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
        raise UsageError(_("give exactly one of --month, --quarter, --year, e.g. --month 2026-10"))
    ((kind, text),) = given.items()
    try:
        period = periods.parse(kind, text)
    except UsageError as exc:
        raise UsageError(f"--{kind}: {cli_i18n.explain(exc)}") from None
    with _casework_store(store_path) as s, s.read() as conn:
        owed = roster.stipends(conn, _ruleset_for(conn, rules_file), period)
    rows = [[o.worker, o.role, f"{o.amount:.2f}", o.why] for o in owed]
    rows.append([_("total"), "", f"{sum(o.amount for o in owed):.2f}", _("%(count)s workers", count=len(owed))])
    click.echo(table([_("worker"), _("role"), _("CNY"), _("why")], rows,
                     title=_("Stipends for %(period)s", period=period.label)))


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
    rows = [[d.meeting, stamp(d.last, zone) if d.last else _("never"), stamp(d.due, zone) if d.due else _("now"),
             _("DUE") if d.overdue else ""] for d in found]
    click.echo(table([_("meeting"), _("last held"), _("next due"), ""], rows,
                     title=_("Meetings as of %(moment)s", moment=stamp(moment))))


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
    click.echo(_("recorded %(meeting)s with %(count)s attendee(s)", meeting=meeting, count=len(attendees)))


@cli.group("spotcheck")
def spotcheck_group() -> None:
    """Third-party spot checks of the workers (第三方考核抽查), recorded with their scores.

    A worker's metric ``spot_check`` is the mean of these scores and of the
    third party's evaluations of the cases in the worker's grids.

    \b
    Example:
      wangge spotcheck record office.db 网格员1 --by 王评估 --score 88 --at "2026-10-20 10:00"
      wangge spotcheck list office.db
    """


@spotcheck_group.command("record")
@click.argument("store_path", metavar="STORE")
@click.argument("worker")
@click.option("--by", "assessor", required=True, help="The assessor, a worker of an office role (by name or id).")
@click.option("--score", type=click.FloatRange(0, 100), required=True, help="The score, 0 to 100.")
@click.option("--at", "at", required=True, type=click.DateTime(["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"]),
              help="When the check was made, in the ruleset's zone.")
@click.option("--note", default="", help="What was checked, what was found.")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False), help="Rule file (default: the store's own).")
def spotcheck_record(store_path: str, worker: str, assessor: str, score: float, at: datetime, note: str,
                     rules_file: str | None) -> None:
    """Record a spot check of WORKER by an assessor, with its score.

    \b
    Example:
      wangge spotcheck record office.db 网格员1 --by 王评估 --score 88 --at 2026-10-20 --note 入户核对住户卡
    """
    from wangge.core import spotchecks

    with _casework_store(store_path) as s, s.write(actor="office") as rec:
        ruleset = _ruleset_for(rec.conn, rules_file)
        spotchecks.record(rec.conn, ruleset, worker, assessor, _moment(at, ruleset.settings.timezone), score, note)
    shown = f"{score:g}"
    click.echo(_("recorded a spot check of %(worker)s by %(assessor)s: %(score)s", worker=worker,
                 assessor=assessor, score=shown))


@spotcheck_group.command("list")
@click.argument("store_path", metavar="STORE")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False), help="Rule file (default: the store's own).")
def spotcheck_list(store_path: str, rules_file: str | None) -> None:
    """List the spot checks recorded, newest first.

    \b
    Example:
      wangge spotcheck list office.db
    """
    from wangge.core import spotchecks
    from wangge.core.report import table
    from wangge.core.trace import stamp

    with _casework_store(store_path) as s, s.read() as conn:
        zone = _ruleset_for(conn, rules_file).settings.timezone
        found = spotchecks.listed(conn)
    rows = [[stamp(c["at"], zone), c["worker"], c["assessor"], f"{c['score']:g}", c["note"]] for c in found]
    click.echo(table([_("checked at"), _("worker"), _("by"), _("score"), _("note")], rows,
                     title=_("Spot checks: %(count)s", count=len(found))))


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
        raise UsageError(_("give either --hours N or --activity"))
    with _casework_store(store_path) as s, s.write(actor="office") as rec:
        ruleset = _ruleset_for(rec.conn, rules_file)
        projects.log(rec.conn, ruleset, project, "activity" if activity else "hours",
                     _moment(at, ruleset.settings.timezone), hours or 0.0, note=note)
    what = _("an activity") if activity else _("%(hours)s hours", hours=format(hours, "g"))
    click.echo(_("logged %(what)s on %(project)s", what=what, project=project))


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
    click.echo("\n".join([_("project %(project)s", project=project), *(f"  {line}" for line in done.lines())]))


@project_group.command("pay")
@click.argument("store_path", metavar="STORE")
@click.argument("project")
@click.option("--score", "scores", multiple=True, metavar="STAGE=SCORE",
              help="An evaluator's score of a stage, e.g. 中期=82; repeat for each stage evaluated.")
@click.option("--contract", type=click.FloatRange(min=0, min_open=True), default=None,
              help="The contract amount (default: the rule file's budget).")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False), help="Rule file (default: the store's own).")
def project_pay(store_path: str, project: str, scores: tuple[str, ...], contract: float | None,
                rules_file: str | None) -> None:
    """What each stage of PROJECT pays, from the evaluators' scores and the activities logged.

    \b
    Example:
      wangge project pay office.db 基础服务项目 --score 中期=82 --score 终期=75
    """
    from wangge.core import projects

    given: dict[str, float] = {}
    for text in scores:
        stage, _equals, value = text.partition("=")
        try:
            given[stage.strip()] = float(value)
        except ValueError:
            raise UsageError(_("bad --score %(text)s: expected STAGE=SCORE, e.g. 中期=82", text=repr(text))) from None
    with _casework_store(store_path) as s, s.read() as conn:
        ruleset = _ruleset_for(conn, rules_file)
        template = next((p for p in ruleset.projects if p.code == project), None)
        done = projects.progress(conn, ruleset, project)  # refuses an unknown project
        paid = projects.payments(template, given, contract, delivered=done)
    for payment in paid:
        said = _("paid") if payment.paid else _("held")
        click.echo(f"{said}  {payment.why}")
    total = f"{sum(p.amount for p in paid):,.2f}"
    click.echo(_("total paid: %(total)s", total=total))


def _casework_store(path: str):
    """The plain store at ``path`` (a master, or a bare store made by `init`), open."""
    from wangge.app import stores

    return stores.open_plain(path)


def _ruleset_for(conn, rules_file: str | None):
    """The rule file's ruleset if one is given, else the store's own. Raises `UsageError` if it has none."""
    from wangge.core import casework

    if rules_file:
        return _load_rules(rules_file)
    return casework.installed_ruleset(conn)


# -- the field app: a worker's day on the tablet, in the browser ---------------


@cli.command("field")
@click.argument("tablet_store")
@click.option("--port", default=8471, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port on loopback (0 picks a free one and prints it).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Loopback address to listen on; any other is refused.")
@click.option("--master", "master_url", default=None, help="The office's URL for the sync button, e.g. http://10.0.0.2:8470")
@click.option("--ask", is_flag=True, help="Ask for the passphrase here instead of on the unlock page.")
def field_command(tablet_store, port, host, master_url, ask) -> None:
    """Serve the field app for the tablet at TABLET_STORE on loopback, for the tablet's browser.

    The worker unlocks it with their passphrase on the unlock page, or here
    (--ask, or WANGGE_PASSPHRASE), then reports cases with photos, fills in
    households, logs visits, confirms repairs on site and syncs: all offline.

    \b
    Example:
      wangge field tablet.db --master http://10.0.0.2:8470
      WANGGE_PASSPHRASE=... wangge field tablet.db --port 8471
    """
    from wangge.web.field.serving import serve_field

    passphrase = os.environ.get("WANGGE_PASSPHRASE") or None
    if ask and passphrase is None:
        passphrase = click.prompt(_("Passphrase"), hide_input=True)
    serve_field(tablet_store, port=port, host=host, master_url=master_url, passphrase=passphrase, echo=click.echo)


def _office(path: str):
    """The office's use cases over the plain store at ``path`` (a master, or a bare store made by `init`)."""
    from wangge.app import Office, stores

    return Office(stores.open_plain(path))


def _rules_or_none(rules_file: str | None):
    return _load_rules(rules_file) if rules_file else None


def _moment(now: datetime | None, zone: str) -> datetime:
    """``--now`` as an aware time: typed without an offset it is the ruleset's local time, never the machine's."""
    from datetime import timezone

    from wangge.core.calendar import in_zone

    return in_zone(now or datetime.now(timezone.utc), zone)


# -- interop: rosters in spreadsheets, grid maps, Open311 keys ---------------------------------


_ROSTERS = click.Choice(["households", "residents", "workers", "buildings"])
_ROSTER_NAMES = {"households": N_("households"), "residents": N_("residents"), "workers": N_("workers"),
                 "buildings": N_("buildings")}


@cli.command("import")
@click.argument("kind", type=_ROSTERS)
@click.argument("store_path", metavar="STORE")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--sheet", default=None, help="The workbook's sheet to read (default: the first).")
@click.option("--skip-bad", is_flag=True, help="Write the good rows and report the bad ones (default: write nothing "
                                               "unless every row passes).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Also write every problem, cell by cell, to this .csv or .xlsx file.")
def import_command(kind: str, store_path: str, file: str, sheet: str | None, skip_bad: bool,
                   report_path: str | None) -> None:
    """Import a roster from an .xlsx workbook or a .csv file (UTF-8 or GB18030).

    Columns are matched to the rule file's register fields by their Chinese or
    English label or their code; every cell is checked by the ruleset's
    validators and every problem is reported by its cell (户籍!D17). Nothing
    is written unless the whole file passes, or with --skip-bad the good
    rows are. A row whose 系统编号 names a record updates it.

    \b
    Example:
      wangge import households office.db 泰丰户籍.xlsx
      wangge import residents office.db residents.csv --skip-bad --report problems.csv
      wangge import workers office.db 社工名册.xlsx --sheet 名册
    """
    from wangge.app import rosters
    from wangge.core.errors import ImportRefused

    try:
        done = rosters.import_file(store_path, kind, file, sheet=sheet, skip_bad=skip_bad)
    except ImportRefused as refused:
        _problem_report(report_path, refused.problems)
        raise
    _problem_report(report_path, done.skipped)
    for where, message in done.skipped[: 50]:
        click.echo(f"{where}: {message}", err=True)
    if len(done.skipped) > 50:
        more = len(done.skipped) - 50
        click.echo(_("… and %(count)s more", count=more) if report_path
                   else _("… and %(count)s more (see them all with --report)", count=more), err=True)
    click.echo(done.summary())


def _problem_report(path: str | None, problems) -> None:
    if path:
        from wangge.app import sheets

        sheets.write_table(path, "problems", ["cell", "problem"], [list(p) for p in problems])


@cli.command("export")
@click.argument("kind", type=_ROSTERS)
@click.argument("store_path", metavar="STORE")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="The .xlsx or .csv file to write.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default=None,
              help="Language of the column labels (default: the rule file's).")
def export_command(kind: str, store_path: str, out: str, lang: str | None) -> None:
    """Export a roster to an .xlsx workbook or a .csv file, with the columns `wangge import` reads.

    \b
    Example:
      wangge export households office.db --out 住户.xlsx
      wangge export workers office.db --out workers.csv --lang en
    """
    from wangge.app import rosters

    count = rosters.export_file(store_path, kind, out, lang=lang)
    click.echo(_("wrote %(count)s %(kind)s to %(file)s", count=count, kind=_(_ROSTER_NAMES[kind]), file=out))



@grid.command("import")
@click.argument("store_path", metavar="STORE")
@click.argument("file", type=click.Path(dir_okay=False))
def grid_import(store_path: str, file: str) -> None:
    """Import grid boundaries from a GeoJSON map drawn in a GIS tool (QGIS, ArcGIS, geojson.io).

    Each feature's properties name its grid: code, level and parent (the code
    of the grid above), with name and grade optional. The whole file is
    checked first: unknown parents, invalid polygons, overlapping siblings and
    gaps inside a parent are all reported, each naming its feature, and
    nothing is written if there is any.

    \b
    Example:
      wangge grid import office.db 泰丰社区网格.geojson
    """
    from wangge.app import gridmap

    click.echo(gridmap.import_map(store_path, file))


@grid.command("export")
@click.argument("store_path", metavar="STORE")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="The .geojson file to write.")
def grid_export(store_path: str, out: str) -> None:
    """Export the grids that have boundaries as a GeoJSON map, as `wangge grid import` reads it.

    \b
    Example:
      wangge grid export office.db --out grids.geojson
    """
    from wangge.app import gridmap

    click.echo(_("wrote %(count)s grids to %(file)s", count=gridmap.export_map(store_path, out), file=out))



@cli.group()
def apikey() -> None:
    """API keys of the systems that send requests through Open311 (a city hotline).

    \b
    Example:
      wangge apikey add office.db 12345热线
      wangge apikey list office.db
    """


@apikey.command("add")
@click.argument("store_path", metavar="MASTER_STORE")
@click.argument("name")
@click.option("--channel", default="", help="The rule file's channel its requests come in by (default: 热线).")
def apikey_add(store_path: str, name: str, channel: str) -> None:
    """Make an API key for the system NAME; it is shown once, and stored only hashed.

    \b
    Example:
      wangge apikey add office.db 12345热线
      wangge apikey add office.db 社工热线平台 --channel 社工热线
    """
    from wangge.app import Office
    from wangge.core import apikeys

    with Office.open(store_path) as office:
        if channel and channel not in {c.code for c in office.ruleset.channels}:
            raise UsageError(_("unknown channel '%(channel)s': the rule file has %(channels)s", channel=channel,
                               channels=", ".join(c.code for c in office.ruleset.channels)))
        with office.store.write(actor="office") as rec:
            key = apikeys.add(rec.conn, name, channel)
    click.echo(_("API key for %(name)s (shown once; keep it secret):", name=name) + f"\n{key}")


@apikey.command("list")
@click.argument("store_path", metavar="MASTER_STORE")
def apikey_list(store_path: str) -> None:
    """List the API keys by name, channel and state (never the keys themselves).

    \b
    Example:
      wangge apikey list office.db
    """
    from wangge.app import Office
    from wangge.core import apikeys

    with Office.open(store_path) as office, office.store.read() as conn:
        rows = apikeys.listing(conn)
    for row in rows:
        state = _("revoked %(day)s", day=format(row.revoked_at, "%Y-%m-%d")) if row.revoked_at else _("live")
        created = _("created %(day)s", day=format(row.created_at, "%Y-%m-%d"))
        click.echo(f"{row.name}\t{row.channel or '热线'}\t{created}\t{state}")
    if not rows:
        click.echo(_("no API keys: make one with `wangge apikey add MASTER_STORE NAME`"))


@apikey.command("revoke")
@click.argument("store_path", metavar="MASTER_STORE")
@click.argument("name")
def apikey_revoke(store_path: str, name: str) -> None:
    """Revoke the API key of NAME: its next request is refused.

    \b
    Example:
      wangge apikey revoke office.db 12345热线
    """
    from wangge.app import Office
    from wangge.core import apikeys

    with Office.open(store_path) as office, office.store.write(actor="office") as rec:
        apikeys.revoke(rec.conn, name)
    click.echo(_("revoked the API key of %(name)s", name=name))



@rules.command("lsp")
@click.option("--textmate", is_flag=True, help="Print the TextMate grammar of .wg files instead (for editors).")
def rules_lsp(textmate: bool) -> None:
    """Run the language server for .wg files over stdio, for an editor to start.

    Diagnostics as you type (every problem `rules check` finds), go to
    definition of any code, completion of keywords and codes. The VS Code
    extension in editors/vscode starts it; other editors run this command.

    \b
    Example:
      wangge rules lsp
      wangge rules lsp --textmate > editors/vscode/syntaxes/wangge.tmLanguage.json
    """
    from wangge.dsl import lsp

    if textmate:
        import json

        click.echo(json.dumps(lsp.textmate_grammar(), ensure_ascii=False, indent=2))
        return
    lsp.main()


def main() -> None:
    """Entry point of the console script and of `python -m wangge`."""
    try:
        cli.main(prog_name="wangge")
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - the last line of defence for users
        if os.environ.get("WANGGE_DEBUG"):
            raise
        click.echo(_("wangge: internal error: %(error)s (run again with WANGGE_DEBUG=1 for details and report it)",
                     error="%s: %s" % (type(exc).__name__, exc)), err=True)
        sys.exit(INTERNAL_ERROR)


if __name__ == "__main__":
    main()
