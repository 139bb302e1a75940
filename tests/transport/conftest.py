"""Fixtures of the transport tests; the helpers themselves are in `support.transport`."""
from __future__ import annotations

import pytest

from support.transport import wait_for


@pytest.fixture(name="wait_for")
def wait_for_fixture():
    """`wait_for(condition, what, timeout=10)`: a bounded poll on a condition."""
    return wait_for


@pytest.fixture
def served_street(tmp_path):
    """A street master behind a real uvicorn server: (street, url)."""
    from support import street as st
    from wangge.web.server import running

    built = st.street(tmp_path)
    with running(built.app()) as url:
        yield built, url
    built.store.close()
