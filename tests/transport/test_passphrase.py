"""One passphrase rule for a tablet, asked twice, and changed without re-encrypting the database."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from wangge.cli import cli
from wangge.sync.device import atrest


@pytest.fixture(autouse=True)
def fast_scrypt(monkeypatch):
    # Tuning scrypt to the machine takes a second per new tablet; the work factor is not under test.
    monkeypatch.setattr(atrest, "tune_scrypt_n", lambda *a, **k: atrest.MIN_SCRYPT_N)


def wangge(*args, input=None, **env):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, input=input)


@pytest.mark.parametrize("weak", ["1", "1234567", "aaaaaaaaaaaa", "口令"])
def test_enroll_refuses_a_weak_passphrase_and_makes_nothing(tmp_path, weak):
    tablet = tmp_path / "tablet.db"
    done = wangge("device", "enroll", tablet, "--name", "王芳的平板", WANGGE_PASSPHRASE=weak)
    assert done.exit_code == 2, done.output
    assert atrest.PASSPHRASE_RULE in done.output and "Traceback" not in done.output
    assert not tablet.exists() and not atrest.keyfile_path(tablet).exists()


def test_enroll_asks_the_passphrase_twice_and_says_where_the_key_file_is(tmp_path):
    tablet = tmp_path / "tablet.db"
    typed = "王芳的口令 one\n王芳的口令 onw\n王芳的口令 one\n王芳的口令 one\n"  # a slip, then the same twice
    done = wangge("device", "enroll", tablet, "--name", "王芳的平板", input=typed)
    assert done.exit_code == 0, done.output
    assert done.output.count("Repeat for confirmation") == 2 and "do not match" in done.output
    key_line = next(line for line in done.output.splitlines() if line.startswith("key file: "))
    assert str(atrest.keyfile_path(tablet).resolve()) in key_line and atrest.keyfile_path(tablet).exists()
    atrest.open_tablet(tablet, "王芳的口令 one").close()


def test_the_passphrase_changes_without_re_encrypting_the_database(tmp_path):
    tablet = tmp_path / "tablet.db"
    assert wangge("device", "enroll", tablet, "--name", "t", WANGGE_PASSPHRASE="first passphrase").exit_code == 0
    database = tablet.read_bytes()
    weak = wangge("device", "passphrase", tablet, WANGGE_PASSPHRASE="first passphrase", WANGGE_NEW_PASSPHRASE="short")
    assert weak.exit_code == 2 and atrest.PASSPHRASE_RULE in weak.output
    wrong = wangge("device", "passphrase", tablet, WANGGE_PASSPHRASE="not the one", WANGGE_NEW_PASSPHRASE="second one!")
    assert wrong.exit_code == 3 and "wrong passphrase" in wrong.output
    done = wangge("device", "passphrase", tablet, input="first passphrase\nsecond one!\nsecond one!\n")
    assert done.exit_code == 0, done.output
    assert str(atrest.keyfile_path(tablet)) in done.output and "not re-encrypted" in done.output
    assert tablet.read_bytes() == database
    atrest.open_tablet(tablet, "second one!").close()
    with pytest.raises(atrest.WrongPassphrase):
        atrest.open_tablet(tablet, "first passphrase")
