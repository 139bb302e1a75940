"""The file transport: bundles on a USB stick, written atomically.

A bundle file is the bundle's bytes, nothing more. `write_atomic` writes a
temporary file in the target folder, fsyncs it, renames it over the target
and fsyncs the folder, so a pulled stick holds either the old file or the
whole new one, never half a bundle.
"""
from __future__ import annotations

import os
from pathlib import Path

from wangge.core.errors import UsageError
from wangge.sync.bundle import MAX_HEADER, MAX_PAYLOAD, SIGNATURE_BYTES

MAX_FILE = 12 + MAX_HEADER + MAX_PAYLOAD + SIGNATURE_BYTES


def check_target(path: str | Path) -> Path:
    """``path`` if a file can be written there; else `UsageError` saying why. For checking before
    doing what the file is to record (applying a bundle whose reply it is to hold)."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"cannot write {target}: folder {folder} does not exist")
    if target.is_dir():
        raise UsageError(f"cannot write {target}: it is a folder; give a file name")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write {target}: folder {folder} is not writable")
    return target


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically. Raises `UsageError` if the folder is missing or unwritable."""
    target = check_target(path)
    folder = target.parent if str(target.parent) else Path(".")
    temp = folder / f".{target.name}.{os.getpid()}.tmp"
    try:
        with open(temp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {target}: {exc.strerror}") from None
    return target


def read_bundle(path: str | Path) -> bytes:
    """The bytes of a bundle file, refusing anything over the bundle caps. Raises `UsageError`."""
    source = Path(path)
    try:
        size = source.stat().st_size
        if size > MAX_FILE:
            raise UsageError(f"{source} is {size} bytes, over the bundle cap of {MAX_FILE}: not a bundle")
        with source.open("rb") as opened:
            # A pipe or a device has no size to check first: read no more than the cap allows.
            data = opened.read(MAX_FILE + 1)
        if len(data) > MAX_FILE:
            raise UsageError(f"{source} holds more than the bundle cap of {MAX_FILE} bytes: not a bundle")
        return data
    except OSError as exc:
        raise UsageError(f"cannot read bundle {source}: {exc.strerror}") from None
