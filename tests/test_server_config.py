"""The config reader sees what valkey-server will see."""

import pytest

from valkey_bundle.errors import UsageError
from valkey_bundle.server_config import command_line_options, read_server_config
from valkey_bundle.tokens import split_config_args


def modules_of(config):
    return [(m.key, m.path, m.args) for m in config.modules]


def test_quoted_paths_and_args(tmp_path):
    conf = tmp_path / "valkey.conf"
    conf.write_text(
        '# comment\n  LoadModule "/opt/my mods/libsearch.so" --reader-threads 4\nloadmodule /x/libjson.so\n'
    )
    config = read_server_config([str(conf)], str(tmp_path))
    assert modules_of(config) == [
        ("SEARCH", "/opt/my mods/libsearch.so", ["--reader-threads", "4"]),
        ("JSON", "/x/libjson.so", []),
    ]
    assert config.modules[0].origin == f"{conf}:2"


def test_include_relative_glob_and_dir(tmp_path):
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "10-bloom.conf").write_text("loadmodule /m/libvalkey_bloom.so capacity 5\n")
    (tmp_path / "conf.d" / "20-cluster.conf").write_text("cluster-enabled yes\n")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "ldap.conf").write_text("loadmodule /m/libvalkey_ldap.so\n")
    conf = tmp_path / "valkey.conf"
    # conf.d/* relative to the start directory; after `dir other`, ldap.conf from there.
    conf.write_text("include conf.d/*.conf\ninclude nothing-here/*.conf\ndir other\ninclude ldap.conf\n")
    config = read_server_config(["valkey.conf"], str(tmp_path))
    assert [m.key for m in config.modules] == ["BLOOM", "LDAP"]
    assert config.is_yes("cluster-enabled")
    assert config.cwd == str(tmp_path / "other")


def test_last_cluster_enabled_wins_and_command_line_comes_last(tmp_path):
    conf = tmp_path / "valkey.conf"
    conf.write_text("cluster-enabled yes\n")
    assert read_server_config([str(conf)], str(tmp_path)).is_yes("cluster-enabled")
    config = read_server_config([str(conf), "--cluster-enabled", "no"], str(tmp_path))
    assert not config.is_yes("cluster-enabled")
    assert config.settings["cluster-enabled"][1] == "the command line"


def test_command_line_loadmodule_and_include(tmp_path):
    inc = tmp_path / "inc.conf"
    inc.write_text("loadmodule /m/libjson.so\n")
    args = ["--loadmodule /m/libsearch.so --use-coordinator", "--include", str(inc), "--loadmodule", "/m/a b.so", "x y"]
    config = read_server_config(args, str(tmp_path))
    assert modules_of(config) == [
        ("SEARCH", "/m/libsearch.so", ["--use-coordinator"]),
        ("JSON", "/m/libjson.so", []),
        ("A_B", "/m/a b.so", ["x y"]),
    ]


@pytest.mark.parametrize(
    "args, lines",
    [
        (["--port", "7000"], [["port", "7000"]]),
        (["--save", "--appendonly", "yes"], [["save", ""], ["appendonly", "yes"]]),
        (["--save"], [["save", ""]]),
        (["--save", "", "--port", "1"], [["save", ""], ["port", "1"]]),
        (["--port 7000", "--dir", "/a b"], [["port", "7000"], ["dir", "/a b"]]),
        # Why module args need one argv element: a separate "--flag" opens a directive.
        (["--loadmodule", "/x.so", "--use-coordinator"], [["loadmodule", "/x.so"], ["use-coordinator"]]),
    ],
)
def test_command_line_options_like_the_server(args, lines):
    text = command_line_options(args, config_file_given=False)
    assert [split_config_args(line) for line in text.split("\n")] == lines


def test_include_cycle_is_an_error(tmp_path):
    (tmp_path / "a.conf").write_text("include b.conf\n")
    (tmp_path / "b.conf").write_text("include a.conf\n")
    with pytest.raises(UsageError, match="include cycle"):
        read_server_config(["a.conf"], str(tmp_path))


def test_same_file_included_twice_is_fine(tmp_path):
    (tmp_path / "m.conf").write_text("loadmodule /m/libjson.so\n")
    (tmp_path / "a.conf").write_text("include m.conf\ninclude m.conf\n")
    assert len(read_server_config(["a.conf"], str(tmp_path)).modules) == 2


def test_errors_name_file_and_line(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text('port 1\nloadmodule "/x.so\n')
    with pytest.raises(UsageError, match=rf"^{conf}:2: unbalanced quotes"):
        read_server_config([str(conf)], str(tmp_path))
    conf.write_text("include /nonexistent/file.conf\n")
    with pytest.raises(UsageError, match=rf"^{conf}:1: cannot read included file /nonexistent/file.conf"):
        read_server_config([str(conf)], str(tmp_path))
    with pytest.raises(UsageError, match=r"cannot read config file missing\.conf"):
        read_server_config(["missing.conf"], str(tmp_path))
