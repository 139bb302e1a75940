"""`wangge demo --serve`: the field day's street office left running, to click through.

After `wangge.app.demo.field_day`, the demo's master is served as `wangge
serve` serves one (sync endpoints, the office console at ``/``, Open311)
on loopback, with office accounts made for it, and each demo tablet's
field app is served in the same process on a port of its own, unlocked,
behind a one-time login link. Everything stops on Ctrl-C.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable

from wangge.app import demo

HOST = "127.0.0.1"


def serve_demo(workdir: Path, *, port: int = 0, echo: Callable[[str], None] = print) -> None:
    """Serve the demo left in ``workdir`` by `field_day` until interrupted; print how to use it.

    Prints the master's URL, each office account's name, role and password,
    and each tablet's field-app link and passphrase. ``port`` is the
    master's (0 picks a free one); the field apps take free ports. Raises
    `UsageError` for a taken port, `StoreError` if the demo's stores cannot
    be opened.
    """
    from wangge.web import server

    made = demo.add_demo_accounts(workdir)
    apps = contextlib.ExitStack()

    def announce(url: str) -> None:
        echo("")
        echo(f"The street office's console: {url}/  (tablets sync at {url}, Open311 at {url}/open311/v2)")
        for name, role, password, what in made:
            echo(f"  log in as {name} ({role}: {what}) with password {password}")
        echo("")
        echo("The workers' field apps (each tablet's own app, served here for the demo):")
        for name, worker in demo.DEMO_TABLETS:
            link = apps.enter_context(_field_app(demo.tablet_path(workdir, name), url))
            echo(f"  {worker} ({name}): {link}  (passphrase: {demo.PASSPHRASE})")
        echo("")
        echo("Press Ctrl-C to stop.")

    with apps:
        server.serve_master(str(demo.master_path(workdir)), host=HOST, port=port, echo=echo,
                            on_listening=announce)


@contextlib.contextmanager
def _field_app(path: Path, master_url: str):
    """The field app for the tablet at ``path``, unlocked and syncing with ``master_url``, served on a
    free loopback port in a background thread; yields its one-time login link."""
    from wangge.app.fieldtablet import FieldTablet
    from wangge.web.field.app import field_app
    from wangge.web.server import running

    app = field_app(FieldTablet.open(path, demo.PASSPHRASE), path=str(path), master_url=master_url)
    try:
        with running(app, HOST, 0) as base:
            yield f"{base}/login?token={app.state.field.guard.new_login()}"
    finally:
        if app.state.field.tablet is not None:  # the app may have locked it meanwhile, as `serve_field` knows
            app.state.field.tablet.close()
