"""The `wangge` command: a thin click shell over the library.

Library errors (`WanggeError`) become one line on stderr and the error's exit
code; any other exception is reported as an internal error in one line, so
no Python traceback reaches a user (set WANGGE_DEBUG=1 to see it).
"""
from __future__ import annotations

import os
import sys
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
def init(target: str, role: str) -> None:
    """Create a store at TARGET: a file path (SQLite) or a postgresql:// URL.

    \b
    Example:
      wangge init office.db --role master
      wangge init postgresql://127.0.0.1/district --role master
    """
    from wangge.core import store

    with store.init(target, role) as created:
        click.echo(f"created a {role} store at {created.url} (device {created.device_id})")


@cli.command()
@click.option(
    "--dir",
    "workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the demo's databases (default: a new temporary folder).",
)
def demo(workdir: Path | None) -> None:
    """Run the end-to-end demo on embedded SQLite and print what happened.

    \b
    Example:
      wangge demo
      wangge demo --dir ./demo-out
    """
    from wangge.core import demo as demo_run

    click.echo(demo_run.run(_workdir(workdir)))


def _workdir(workdir: Path | None) -> Path:
    if workdir is None:
        import tempfile

        return Path(tempfile.mkdtemp(prefix="wangge-demo-"))
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot use {workdir} for the demo: {exc.strerror}") from None
    return workdir


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
