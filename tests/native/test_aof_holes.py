"""Tier 2: the entrypoint cuts out the hole a full disk leaves in an AOF, and nothing else.

On a full disk the server cuts off a partial AOF write and retries it; in an incremental
file opened after a rewrite or a full sync the retry lands past the end, leaving NUL bytes
between two commands (tests/faults makes one on a real full disk). Here the hole is put
into a real server's AOF by hand, at a command boundary, the way it is left there.
"""

import re
import shutil
import subprocess

import pytest
from support import testbed

from valkey_bundle.resp import Connection

pytestmark = pytest.mark.native

# NUL bytes between CRLF and a command's `*`: what a hole looks like, inside a value here.
BINARY = b"head\r\n\x00\x00\x00*2\r\n$4\r\ntail"
HOLE = b"\x00" * 43


def incr_file(data):
    manifest = next((data / "appendonlydir").glob("*.manifest")).read_text()
    name = re.search(r"file (\S+) seq \d+ type i", manifest).group(1)
    return data / "appendonlydir" / name


def write(server, keys):
    with Connection("127.0.0.1", server.port) as conn:
        for key in keys:
            assert conn.call("SET", key, f"value-of-{key}") == "OK"
        assert conn.call("SET", "binary", BINARY) == "OK"


def read(server, keys):
    with Connection("127.0.0.1", server.port, decode=False) as conn:
        return [conn.call("GET", key) for key in keys], conn.call("GET", "binary")


def test_a_hole_left_by_a_full_disk_is_cut_out(start_server, valkey_prefix, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    conf = tmp_path / "valkey.conf"
    conf.write_text(f'dir {data}\nappendonly yes\nsave ""\n')
    keys = [f"key:{i}" for i in range(200)]
    server = start_server([str(conf), "--port", "{port}"], VALKEY_MODULES="none").wait_ready()
    write(server, keys)
    assert server.stop() == 0

    # The server's own start finds nothing to cut: NUL bytes inside a value are left alone.
    server = start_server([str(conf), "--port", "{port}"], VALKEY_MODULES="none").wait_ready()
    assert read(server, keys) == ([f"value-of-{k}".encode() for k in keys], BINARY)
    assert "NUL bytes" not in server.log()
    assert server.stop() == 0

    path = incr_file(data)
    text = path.read_bytes()
    at = re.search(rb"\*3\r\n\$3\r\n(?i:set)\r\n\$7\r\nkey:100\r\n", text).start()
    path.write_bytes(text[:at] + HOLE + text[at:])

    # Without the entrypoint the server refuses the file.
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    port = str(testbed.free_port())
    bare = subprocess.run(
        [str(valkey_prefix / "bin" / "valkey-server"), "--port", port, "--bind", "127.0.0.1"]
        + ["--dir", str(copy), "--appendonly", "yes", "--save", ""],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert bare.returncode != 0 and "Bad file format" in bare.stdout + bare.stderr, bare.stdout + bare.stderr

    server = start_server([str(conf), "--port", "{port}"], VALKEY_MODULES="none").wait_ready()
    assert read(server, keys) == ([f"value-of-{k}".encode() for k in keys], BINARY)
    log = server.log()
    assert f"cut out 43 NUL bytes at offset {at}" in log, log
    assert path.read_bytes() == text
