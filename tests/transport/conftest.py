"""Fixtures of the transport tests. Tests never sleep blindly: they wait on a condition with a bounded poll."""
from __future__ import annotations

import time

import pytest


def wait_for(condition, what: str, timeout: float = 10.0, every: float = 0.02):
    """Return ``condition()``'s first truthy value; fail the test naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


@pytest.fixture(name="wait_for")
def wait_for_fixture():
    """`wait_for(condition, what, timeout=10)`: a bounded poll on a condition."""
    return wait_for
