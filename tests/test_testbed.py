"""The native test bed itself: the Valkey recipe, modules/unpack.sh and the fixture
modules, against a real valkey-server."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

import pytest
from support import testbed


@pytest.fixture(scope="session")
def valkey_prefix() -> Path:
    return testbed.valkey_build()


@pytest.fixture(scope="session")
def fixture_libs(valkey_prefix, tmp_path_factory) -> dict[str, Path]:
    return testbed.fixture_modules(tmp_path_factory.mktemp("fixture-modules"))


@pytest.mark.native
def test_build_reports_the_pinned_version(valkey_prefix):
    _, sha256, _ = testbed.valkey_source_tarball()
    expected = testbed.valkey_source_version(sha256)  # from modules/valkey/module.env
    for name in ("bin/valkey-server", "bin/valkey-cli", "include/valkeymodule.h"):
        assert (valkey_prefix / name).is_file(), name
    out = subprocess.run(
        [str(valkey_prefix / "bin" / "valkey-server"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert f" v={expected} " in out, out
    assert f"source_sha256={sha256}" in (valkey_prefix / "BUILD_INFO").read_text()


def _small_tarball(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "demo.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        data = b"hello\n"
        info = tarfile.TarInfo("demo-1.0/dir/file.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_unpack_verifies_then_strips(tmp_path):
    tarball, sha256 = _small_tarball(tmp_path)
    subprocess.run(
        [str(testbed.MODULES_DIR / "unpack.sh"), str(tarball), sha256, "1", str(tmp_path / "out")], check=True
    )
    assert (tmp_path / "out" / "dir" / "file.txt").read_text() == "hello\n"


def test_unpack_rejects_a_wrong_checksum(tmp_path):
    tarball, sha256 = _small_tarball(tmp_path)
    wrong = "0" * 64
    result = subprocess.run(
        [str(testbed.MODULES_DIR / "unpack.sh"), str(tarball), wrong, "1", str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(tarball) in lines[0] and wrong in lines[0] and sha256 in lines[0]
    assert "mismatch" in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.native
@pytest.mark.parametrize(
    "args",
    [
        ["a", "b c"],
        ["q\"uo'te", "back\\slash", "tab\there", "ünï", "", "-x"],
    ],
)
def test_fixture_module_gets_its_args_exactly(valkey_prefix, fixture_libs, tmp_path, args):
    port = testbed.free_port()
    server_args = ["--port", str(port), "--save", "", "--loadmodule", str(fixture_libs["JSON"]), *args]
    with testbed.running_server(server_args, port, tmp_path, valkey_prefix):
        assert testbed.valkey_command(port, "json.args") == [a.encode() for a in args]
        modules = testbed.valkey_command(port, "module", "list")
        # 9.1 (the offline fallback) also lists its built-in "lua" module.
        assert b"json" in [m[m.index(b"name") + 1] for m in modules]


@pytest.mark.native
def test_fixture_module_config(valkey_prefix, fixture_libs, tmp_path):
    port = testbed.free_port()
    conf = tmp_path / "valkey.conf"
    conf.write_text(f'loadmodule "{fixture_libs["BLOOM"]}" x\nbf.fixture-config "from file"\n')
    with testbed.running_server([str(conf), "--port", str(port), "--save", ""], port, tmp_path, valkey_prefix):
        assert testbed.valkey_command(port, "config", "get", "bf.fixture-config") == [
            b"bf.fixture-config",
            b"from file",
        ]
        testbed.valkey_command(port, "config", "set", "bf.fixture-config", "set later")
        assert testbed.valkey_command(port, "config", "get", "bf.fixture-config")[1] == b"set later"
        assert testbed.valkey_command(port, "bf.args") == [b"x"]


@pytest.mark.native
def test_fixture_module_config_defaults_to_empty(valkey_prefix, fixture_libs, tmp_path):
    port = testbed.free_port()
    with testbed.running_server(
        ["--port", str(port), "--save", "", "--loadmodule", str(fixture_libs["LDAP"])], port, tmp_path, valkey_prefix
    ):
        assert testbed.valkey_command(port, "config", "get", "ldap.fixture-config") == [b"ldap.fixture-config", b""]
        assert testbed.valkey_command(port, "ldap.args") == []


@pytest.mark.native
@pytest.mark.parametrize("flags, expected", [([], 0), (["--use-coordinator"], 1)])
def test_search_fixture_reports_the_coordinator(valkey_prefix, fixture_libs, tmp_path, flags, expected):
    port = testbed.free_port()
    # One argv element: the server splits it like a config-file line.
    load = " ".join(["--loadmodule", str(fixture_libs["SEARCH"]), *flags, "--reader-threads", "4"])
    with testbed.running_server(["--port", str(port), "--save", "", load], port, tmp_path, valkey_prefix):
        assert testbed.valkey_command(port, "search.coordinator") == expected
        assert testbed.valkey_command(port, "search.args") == [f.encode() for f in flags] + [b"--reader-threads", b"4"]


@pytest.mark.native
def test_search_fixture_refuses_a_value_for_use_coordinator(valkey_prefix, fixture_libs, tmp_path):
    port = testbed.free_port()
    conf = tmp_path / "valkey.conf"
    conf.write_text(f'loadmodule "{fixture_libs["SEARCH"]}" --use-coordinator yes\n')
    server = subprocess.Popen(
        [str(valkey_prefix / "bin" / "valkey-server"), str(conf), "--port", str(port), "--save", ""],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = server.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        output, _ = server.communicate()
        pytest.fail(f"valkey-server kept running with --use-coordinator yes:\n{output}")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode != 0, output
    assert "--use-coordinator takes no value, got 'yes'" in output
