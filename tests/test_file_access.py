"""A config the server's uid cannot read stops the start with one line, before the privileges drop."""

import os
import shutil
import tempfile

import pytest

from valkey_bundle import main as entrypoint_main
from valkey_bundle.file_access import blocker, unreadable_config
from valkey_bundle.server_config import read_server_config

VALKEY = (999, 999)
PREFIX = "bundle-docker-entrypoint: error: "

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="making files of other uids needs root")


@pytest.fixture
def open_dir():
    """A directory every uid may enter (pytest's own tmp_path sits in a 0700 directory of root)."""
    path = tempfile.mkdtemp(prefix="valkey-bundle-access-", dir="/tmp")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path)


def make(path, text="port 6379\n", mode=0o644, owner=(0, 0)):
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chown(path, *owner)
    os.chmod(path, mode)
    return path


def test_readable_files(open_dir):
    assert blocker(make(f"{open_dir}/a.conf"), *VALKEY) is None
    assert blocker(make(f"{open_dir}/own.conf", mode=0o400, owner=VALKEY), *VALKEY) is None
    assert blocker(make(f"{open_dir}/group.conf", mode=0o640, owner=(0, 999)), *VALKEY) is None


def test_the_class_that_applies_is_the_only_one_checked(open_dir):
    # Others may read, but the owner class applies to the owner: it may not.
    path = make(f"{open_dir}/owner-denied.conf", mode=0o044, owner=VALKEY)
    where, _, who = blocker(path, *VALKEY)
    assert (where, who) == (path, "u")
    path = make(f"{open_dir}/private.conf", mode=0o600)
    assert blocker(path, *VALKEY)[::2] == (path, "o")
    assert blocker(path, 0, 0) is None


def test_a_directory_it_cannot_enter(open_dir):
    path = make(f"{open_dir}/private/sub/valkey.conf")
    os.chmod(f"{open_dir}/private", 0o700)
    where, st, who = blocker(path, *VALKEY)
    assert (where, oct(st.st_mode & 0o777), who) == (f"{open_dir}/private", "0o700", "o")
    os.chmod(f"{open_dir}/private", 0o711)  # search without listing is enough
    assert blocker(path, *VALKEY) is None


def test_a_symlink_into_a_private_directory(open_dir):
    target = make(f"{open_dir}/private/valkey.conf")
    os.chmod(f"{open_dir}/private", 0o700)
    link = f"{open_dir}/public/valkey.conf"
    os.makedirs(os.path.dirname(link))
    os.symlink(target, link)
    assert blocker(link, *VALKEY)[0] == f"{open_dir}/private"


def test_the_line_names_the_included_file_the_uid_and_the_fix(open_dir):
    make(f"{open_dir}/conf.d/secret.conf", mode=0o600)
    conf = make(f"{open_dir}/valkey.conf", f"include {open_dir}/conf.d/*.conf\n")
    line = unreadable_config(read_server_config([conf], "/"), *VALKEY)
    assert line.startswith(f"included file {open_dir}/conf.d/secret.conf is not readable by uid 999")
    assert "(mode 0600, owner 0:0)" in line and f"chmod o+r {open_dir}/conf.d/secret.conf" in line
    assert "--user" in line and "\n" not in line
    assert unreadable_config(read_server_config([conf], "/"), 0, 0) is None


def run_as_root_dropping_to_valkey(monkeypatch, capsys, args, environ):
    """The entrypoint's main() as root, with a valkey account of uid/gid 999 (this machine may have none)."""
    monkeypatch.setattr(entrypoint_main, "valkey_account", lambda: VALKEY)
    status = entrypoint_main.main(args, environ)
    return status, capsys.readouterr()


def test_entrypoint_stops_before_anything_starts(open_dir, monkeypatch, capsys, tmp_path):
    conf = make(f"{open_dir}/private/valkey.conf", "port 6379\nloadmodule /nowhere/libjson.so\n")
    os.chmod(f"{open_dir}/private", 0o700)
    (tmp_path / "libjson.so").write_bytes(b"\x7fELF")
    environ = {"VALKEY_BUNDLE_DRY_RUN": "1", "VALKEY_MODULES_DIR": str(tmp_path), "JSON_MODULE_ARGS": "x"}
    status, out = run_as_root_dropping_to_valkey(monkeypatch, capsys, [conf], environ)
    assert status == 2 and out.out == ""
    lines = out.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(PREFIX), out.err  # no warning about that file first
    assert f"config file {conf} is not readable by uid 999" in lines[0]
    assert f"cannot enter {open_dir}/private" in lines[0] and f"chmod o+x {open_dir}/private" in lines[0]

    os.chmod(f"{open_dir}/private", 0o755)
    status, out = run_as_root_dropping_to_valkey(monkeypatch, capsys, [conf], environ)
    assert status == 0, out.err
    assert f"JSON_MODULE_ARGS ignored: JSON is loaded by {conf}:2" in out.err
