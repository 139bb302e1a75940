"""What the `wangge` commands print: each function opens its store through `Office` or
`Tablet`, performs one use case and says what happened, in the lines a person reads.

The command line stays a shell over these; a test or a script may call them
by path as a person would type the command.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from wangge.app.office import Office
from wangge.app.tablet import Tablet
from wangge.core.report import table


def enroll_tablet(target: str, passphrase: str, name: str, master_url: Optional[str] = None) -> str:
    """Make the tablet at ``target`` (created if missing) ask to enroll; its request as text, sent if a URL is given."""
    from wangge.sync.transport.client import check_master_url

    # Checked before anything is made: a typo is said at once, never stored.
    if master_url is not None:
        check_master_url(master_url)
    made = not Path(target).exists()
    opened = Tablet.create(target, passphrase) if made else Tablet.open(target, passphrase, for_sync=True)
    with opened as tablet:
        enrolled = tablet.enroll(name, master_url)
    request = enrolled.request
    lines = [f"device {request.device_id} ({name})", f"fingerprint: {request.fingerprint}"]
    if made:
        from wangge.sync.device import atrest

        lines.append(f"key file: {atrest.keyfile_path(target).resolve()} (the database key, locked by the "
                     f"passphrase: keep it beside the database; without it the data cannot be read)")
    lines += ["request (show as a QR code or copy to the office):", request.to_text()]
    if enrolled.sent_to:
        lines.append(f"sent to {enrolled.sent_to}: {enrolled.status}")
    return "\n".join(lines)


def approve_device(target: str, request: str, worker: str) -> str:
    """Approve a device by id or by its request text for ``worker``; print the card for a tablet with no network."""
    with Office.open(target) as office:
        approved = office.approve(request, worker)
    return (f"device {approved.device_id} approved for {worker}\n"
            f"a tablet with no network learns this master by scanning (wangge device trust):\n{approved.card}")


def rotate_master_keys(target: str, *, stamp: str) -> str:
    """New key pairs for the master at ``target``; the text lists a card per active tablet to scan."""
    with Office.open(target) as office:
        rotated = office.rotate_keys(stamp=stamp)
    lines = [f"master {rotated.master} has new keys; the old ones are kept in {rotated.retired} until every "
             f"tablet trusts the new ones: then destroy that file",
             "each active tablet refuses this master's replies until it scans its card "
             "(wangge device trust TABLET_STORE CARD):"]
    lines += [f"{device_id} ({name}, {worker or '-'}): {card}" for device_id, name, worker, card in rotated.cards]
    return "\n".join(lines)


def trust_card(target: str, passphrase: str, text: str) -> str:
    """Record on the tablet at ``target`` the master a card names. Raises `EnrollmentError`."""
    with Tablet.open(target, passphrase, for_sync=True) as tablet:
        master = tablet.trust(text)
    return f"this tablet now syncs with master {master}"


def revoke_device(target: str, device_id: str) -> str:
    with Office.open(target) as office:
        office.revoke(device_id)
    return f"device {device_id} revoked: its next sync will be refused"


def device_table(target: str) -> str:
    with Office.open(target) as office:
        found = office.devices()
    return table(["device", "name", "status", "worker", "fingerprint"],
                 [[r["device_id"], r["name"], r["status"], r["worker"], r["fingerprint"]] for r in found.rows],
                 title=f"Devices (registry version {found.registry_version})")


def registry_snapshot(target: str, out: str) -> str:
    """Write the master's signed registry snapshot to ``out``; say what was written."""
    with Office.open(target) as office:
        done = office.registry_snapshot(out)
    return f"registry version {done.version} ({done.devices} devices), signed by {done.master}: {done.path}"


def sync_tablet(target: str, master_url: str, passphrase: str, *, progress: bool = False) -> str:
    """One sync of the tablet at ``target`` with a master over HTTP; what moved, in one line."""
    from wangge.sync.transport.client import check_master_url

    check_master_url(master_url)
    with Tablet.open(target, passphrase, for_sync=True) as tablet:
        return tablet.sync(master_url, progress=progress)
