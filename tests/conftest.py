"""Fixtures shared by every test folder: real SQLite files and a real PostgreSQL."""
from __future__ import annotations

import os
import uuid
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

PG_SERVER = os.environ.get("WANGGE_TEST_PG", "postgresql+psycopg://127.0.0.1:5432/test")


def _pg_engine():
    engine = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        engine.dispose()
        if os.environ.get("CI"):
            raise RuntimeError(f"PostgreSQL is not reachable at {PG_SERVER}: {exc}") from None
        pytest.skip(f"PostgreSQL is not reachable at {PG_SERVER}")
    return engine


@pytest.fixture(scope="session", autouse=True)
def _master_keys_in_a_scratch_config(tmp_path_factory):
    """PostgreSQL masters keep their key files under the user's config folder: a scratch one in tests."""
    before = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config"))
    yield
    if before is None:
        os.environ.pop("XDG_CONFIG_HOME", None)
    else:
        os.environ["XDG_CONFIG_HOME"] = before


@pytest.fixture(scope="session", autouse=True)
def _english_whatever_the_locale():
    """The tests read the command line's English; a machine in a Chinese locale would get Chinese
    (tests/test_cli_lang.py sets the language itself)."""
    before = os.environ.get("WANGGE_LANG")
    os.environ["WANGGE_LANG"] = "en"
    yield
    if before is None:
        os.environ.pop("WANGGE_LANG", None)
    else:
        os.environ["WANGGE_LANG"] = before


@pytest.fixture
def pg_url():
    """A URL of a fresh, empty PostgreSQL schema, dropped after the test."""
    engine = _pg_engine()
    schema = "t_" + uuid.uuid4().hex[:12]
    with engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{PG_SERVER}?options={quote(f'-csearch_path={schema}')}"
    with engine.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_target(request, tmp_path):
    """A place for a new store: an SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    return request.getfixturevalue("pg_url")
