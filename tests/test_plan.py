"""The plan: which modules load, with which args, in which argv position."""

import pytest

from valkey_bundle.command import normalise_command
from valkey_bundle.errors import UsageError
from valkey_bundle.module_files import ModuleFacts, parse_env_file
from valkey_bundle.plan import closest, final_server_args, make_plan
from valkey_bundle.server_config import read_server_config
from valkey_bundle.settings import read_bundle_env
from valkey_bundle.tokens import split_config_args

DISCOVERED = {
    "BLOOM": "/usr/lib/valkey/libvalkey_bloom.so",
    "JSON": "/usr/lib/valkey/libjson.so",
    "LDAP": "/usr/lib/valkey/libvalkey_ldap.so",
    "SEARCH": "/usr/lib/valkey/libsearch.so",
}
FACTS = {
    f.key: f
    for f in [
        ModuleFacts(
            "search",
            parse_env_file(
                "MODULE_FILE=libsearch.so\nMODULE_NAME=search\nMODULE_VALUELESS_FLAGS=--use-coordinator\n"
                "MODULE_COORDINATOR_FLAG=--use-coordinator\nMODULE_COORDINATOR_PORT_OFFSET=20294\n"
                'MODULE_COORDINATOR_CONFIGS="search.enable-partial-results no"\n'
                "MODULE_REINDEX_CONFIG=search.skip-rdb-load\n"
                'MODULE_CPU_FEATURES_X86_64="avx2 fma"\n'
            ),
        ),
        ModuleFacts("bloom", parse_env_file("MODULE_FILE=libvalkey_bloom.so\nMODULE_NAME=bf\n")),
        ModuleFacts("json", parse_env_file("MODULE_FILE=libjson.so\nMODULE_NAME=json\n")),
        ModuleFacts("ldap", parse_env_file("MODULE_FILE=libvalkey_ldap.so\nMODULE_NAME=ldap\n")),
    ]
}


def plan_for(command, environ=None, cwd="/", discovered=DISCOVERED, **kwargs):
    env = read_bundle_env(environ or {})
    args, server_mode = normalise_command(command)
    config = read_server_config(final_server_args(args, env), cwd) if server_mode else None
    return make_plan(args, server_mode, env, discovered, FACTS, config, **kwargs)


def split_loadmodule(element):
    tokens = split_config_args(element[2:])
    assert tokens[0] == "loadmodule"
    return tokens[1:]


def test_all_discovered_modules_one_argv_element_each_in_order():
    plan = plan_for([])
    modules = [f"--loadmodule {DISCOVERED[k]}" for k in sorted(DISCOVERED)]
    assert plan.argv == ["valkey-server", *modules, "--search.skip-rdb-load yes", "--protected-mode no"]
    assert [m.source for m in plan.modules] == ["env"] * 4


def test_generated_args_sit_after_config_file_before_user_args_then_extra_flags(tmp_path):
    conf = tmp_path / "v.conf"
    conf.write_text("port 7000\n")
    plan = plan_for(
        [str(conf), "--port", "7001"],
        {"VALKEY_MODULES": "json", "JSON_MODULE_ARGS": "", "VALKEY_EXTRA_FLAGS": '--save "" --port 7002'},
    )
    assert plan.argv == [
        "valkey-server",
        str(conf),
        "--loadmodule /usr/lib/valkey/libjson.so",
        "--protected-mode no",
    ] + [
        "--port",
        "7001",
        "--save",
        "",
        "--port",
        "7002",
    ]


def test_module_args_with_spaces_and_quotes_survive_the_servers_split():
    discovered = dict(DISCOVERED, SEARCH="/opt/my modules/libsearch.so")
    plan = plan_for(
        [],
        {"VALKEY_MODULES": "search", "SEARCH_MODULE_ARGS": '--log-level notice --name "a b" \'c"d\' ""'},
        discovered=discovered,
    )
    element = plan.argv[1]
    assert split_loadmodule(element) == [
        "/opt/my modules/libsearch.so",
        "--log-level",
        "notice",
        "--name",
        "a b",
        'c"d',
        "",
    ]


@pytest.mark.parametrize(
    "value, keys",
    [
        ("none", []),
        ("", []),
        ("  NONE ", []),
        ("search,json", ["SEARCH", "JSON"]),
        ("Search  bloom", ["SEARCH", "BLOOM"]),
        ("bf", ["BLOOM"]),  # the module's own name works too
        ("libvalkey_ldap.so", ["LDAP"]),
    ],
)
def test_valkey_modules_selects(value, keys):
    assert [m.key for m in plan_for([], {"VALKEY_MODULES": value}).modules] == keys


def test_unknown_module_suggests_close_match():
    with pytest.raises(UsageError, match=r"^VALKEY_MODULES: unknown module 'serch' .*did you mean SEARCH\?"):
        plan_for([], {"VALKEY_MODULES": "serch"})
    with pytest.raises(UsageError, match=r"^VALKEY_DISABLE_MODULES: unknown module 'jsn'.*JSON"):
        plan_for([], {"VALKEY_DISABLE_MODULES": "jsn"})


def test_requested_module_missing_from_directory_is_an_error():
    with pytest.raises(UsageError, match="VALKEY_MODULES: module SEARCH is not in /usr/lib/valkey"):
        plan_for([], {"VALKEY_MODULES": "search"}, discovered={"JSON": "/usr/lib/valkey/libjson.so"})


def test_disable_and_args_for_a_disabled_module_warn():
    plan = plan_for([], {"VALKEY_DISABLE_MODULES": "SEARCH ldap", "SEARCH_MODULE_ARGS": "--reader-threads 2"})
    assert [m.key for m in plan.modules] == ["BLOOM", "JSON"]
    assert "SEARCH_MODULE_ARGS ignored: module SEARCH is disabled" in plan.warnings


def test_args_for_an_absent_module_warn():
    plan = plan_for([], {"FOO_MODULE_ARGS": "x"})
    assert "FOO_MODULE_ARGS ignored: module FOO is not loaded" in plan.warnings


def test_config_wins_whatever_the_path(tmp_path):
    conf = tmp_path / "v.conf"
    conf.write_text("loadmodule /elsewhere/libsearch.so --reader-threads 1\n")
    plan = plan_for([str(conf)], {"SEARCH_MODULE_ARGS": "--reader-threads 8"})
    loads = [a for a in plan.argv if "libsearch" in a]
    assert loads == []  # not loaded a second time from the command line
    search = [m for m in plan.modules if m.key == "SEARCH"]
    assert len(search) == 1 and search[0].args == ["--reader-threads", "1"]
    assert search[0].source == f"{conf}:1"
    assert any(w.startswith("SEARCH_MODULE_ARGS ignored: SEARCH is loaded by") for w in plan.warnings)


def test_command_line_loadmodule_counts_as_config():
    plan = plan_for(["--loadmodule", "/x/libjson.so"])
    assert plan.argv.count("--loadmodule") == 1
    assert not any(a.startswith("--loadmodule /usr/lib/valkey/libjson.so") for a in plan.argv)


@pytest.mark.parametrize(
    "value, expected, warned",
    [
        ("--use-coordinator", ["--use-coordinator"], False),
        ("--use-coordinator yes", ["--use-coordinator"], True),
        ("--use-coordinator TRUE --reader-threads 2", ["--use-coordinator", "--reader-threads", "2"], True),
        # "no" drops the flag, then auto adds it back (cluster mode): VALKEY_SEARCH_COORDINATOR decides.
        ("--reader-threads 2 --use-coordinator no", ["--reader-threads", "2", "--use-coordinator"], True),
    ],
)
def test_valueless_flag_normalised(value, expected, warned):
    # auto in cluster mode keeps a flag the user gave: only normalisation acts.
    plan = plan_for(["--cluster-enabled", "yes"], {"VALKEY_MODULES": "search", "SEARCH_MODULE_ARGS": value})
    assert plan.modules[0].args == expected
    assert split_loadmodule(plan.argv[1])[1:] == expected
    assert any("--use-coordinator" in w for w in plan.warnings) == warned


@pytest.mark.parametrize(
    "mode, cluster, on",
    [("auto", True, True), ("auto", False, False), ("yes", False, True), ("no", True, False)],
)
def test_coordinator(mode, cluster, on):
    command = ["--cluster-enabled", "yes"] if cluster else []
    plan = plan_for(command, {"VALKEY_MODULES": "search", "VALKEY_SEARCH_COORDINATOR": mode})
    assert plan.coordinator is on
    assert plan.cluster_enabled is cluster
    assert split_loadmodule(plan.argv[1])[1:] == (["--use-coordinator"] if on else [])


def test_coordinator_no_removes_the_flag_with_a_warning():
    plan = plan_for([], {"SEARCH_MODULE_ARGS": "--use-coordinator", "VALKEY_SEARCH_COORDINATOR": "no"})
    search = next(m for m in plan.modules if m.key == "SEARCH")
    assert search.args == []
    assert any("removed by VALKEY_SEARCH_COORDINATOR=no" in w for w in plan.warnings)


def test_coordinator_outside_cluster_mode_is_dropped_unless_asked_for():
    environ = {"VALKEY_MODULES": "search", "SEARCH_MODULE_ARGS": "--use-coordinator --reader-threads 2"}
    plan = plan_for([], environ)
    assert plan.modules[0].args == ["--reader-threads", "2"] and plan.coordinator is False
    assert [w for w in plan.warnings if "not in cluster mode" in w] == [
        "SEARCH_MODULE_ARGS: --use-coordinator removed: the server is not in cluster mode, where the coordinator "
        "has nothing to do but open its port without authentication (VALKEY_SEARCH_COORDINATOR=yes keeps it)"
    ]
    kept = plan_for([], {**environ, "VALKEY_SEARCH_COORDINATOR": "yes"})
    assert kept.modules[0].args == ["--use-coordinator", "--reader-threads", "2"] and kept.coordinator is True
    assert not any("not in cluster mode" in w for w in kept.warnings)


def test_coordinator_of_a_config_loaded_search_outside_cluster_mode_is_a_warning(tmp_path):
    conf = tmp_path / "v.conf"
    conf.write_text("loadmodule /x/libsearch.so --use-coordinator\n")
    plan = plan_for([str(conf)])
    assert plan.coordinator is True  # the config wins
    assert any(f"loaded by {conf}:1 with --use-coordinator outside cluster mode" in w for w in plan.warnings)


def test_partial_results_off_by_default_beside_the_coordinator(tmp_path):
    plan = plan_for(["--cluster-enabled", "yes"], {"VALKEY_MODULES": "search"})
    assert plan.argv.count("--search.enable-partial-results no") == 1
    # After the module's load line: the server applies module configs at load.
    assert plan.argv.index("--search.enable-partial-results no") > 1
    # Not without the coordinator, nor where the user says otherwise.
    assert "--search.enable-partial-results no" not in plan_for([], {"VALKEY_MODULES": "search"}).argv
    off = plan_for(["--cluster-enabled", "yes"], {"VALKEY_MODULES": "search", "VALKEY_SEARCH_COORDINATOR": "no"})
    assert "--search.enable-partial-results no" not in off.argv
    extra = {"VALKEY_MODULES": "search", "VALKEY_EXTRA_FLAGS": "--search.enable-partial-results yes"}
    assert "--search.enable-partial-results no" not in plan_for(["--cluster-enabled", "yes"], extra).argv
    conf = tmp_path / "v.conf"
    conf.write_text("cluster-enabled yes\nsearch.enable-partial-results yes\n")
    assert "--search.enable-partial-results no" not in plan_for([str(conf)], {"VALKEY_MODULES": "search"}).argv


def record(algorithms):
    from valkey_bundle.index_state import record_text

    return record_text({name: frozenset(kinds) for name, kinds in algorithms.items()})


@pytest.mark.parametrize(
    "index_record, value, why",
    [
        (None, "yes", "no record of this directory's indexes"),
        (record({"books": ["FLAT"], "films": ["HNSW"]}), "yes", "FLAT vector fields in books (bundle-search-indexes)"),
        (record({"films": ["HNSW"], "tags": []}), "no", "no FLAT vector field in the indexes (bundle-search-indexes)"),
        (record({}), "no", "no search index (bundle-search-indexes)"),
        ("books FLAT\n", "yes", "bundle-search-indexes unreadable"),
    ],
)
def test_search_indexes_its_keys_again_on_load_only_where_a_flat_index_may_be(index_record, value, why):
    """search.skip-rdb-load (module.env says why), after search's load line: yes unless the
    data directory's record shows no FLAT vector field; the guard keeps it right."""
    plan = plan_for([], {"VALKEY_MODULES": "search"}, cwd="/data", index_record=index_record)
    setting = f"--search.skip-rdb-load {value}"
    assert plan.argv.count(setting) == 1 and plan.argv.index(setting) > 1
    assert f"search.skip-rdb-load: {value} (chosen for this data directory: {why})" in plan.notes
    assert plan.index_guard == {
        "port": 6379,
        "rewrite_aof": False,
        "reindex_config": "search.skip-rdb-load",
        "reindex": value,
        "record": "/data/bundle-search-indexes",
    }


def test_the_reindex_setting_is_left_to_the_config_or_the_command(tmp_path):
    flat_free = record({"films": ["HNSW"]})
    assert "--search.skip-rdb-load" not in " ".join(plan_for([], {"VALKEY_MODULES": "json"}).argv)
    assert "--search.skip-rdb-load" not in " ".join(plan_for([], {"VALKEY_DISABLE_MODULES": "search"}).argv)
    mine = plan_for(["--search.skip-rdb-load", "yes"], {"VALKEY_MODULES": "search"}, index_record=flat_free)
    assert mine.argv[-2:] == ["--search.skip-rdb-load", "yes"] and "--search.skip-rdb-load no" not in mine.argv
    assert mine.index_guard is None, "nothing left for the guard to keep outside a cluster"
    conf = tmp_path / "v.conf"
    conf.write_text("search.skip-rdb-load no\n")
    kept = plan_for([str(conf)], {"VALKEY_MODULES": "search"})
    assert not any(a.startswith("--search.skip-rdb-load") for a in kept.argv)
    assert f"search.skip-rdb-load: no ({conf}:1)" in kept.notes
    member = plan_for([str(conf), "--cluster-enabled", "yes"], {"VALKEY_MODULES": "search"})
    assert member.index_guard["rewrite_aof"] and member.index_guard["reindex_config"] is None
    # A search the config loads gets it too: the setting is the module's, not the env's.
    conf.write_text("loadmodule /x/libsearch.so\n")
    assert plan_for([str(conf)], {"VALKEY_MODULES": ""}).argv.count("--search.skip-rdb-load yes") == 1


def test_without_the_guard_every_load_indexes_again():
    """Nothing would keep the record right: the safe choice, whatever the record says."""
    environ = {"VALKEY_MODULES": "search", "VALKEY_SEARCH_INDEX_GUARD": "no"}
    plan = plan_for([], environ, index_record=record({"films": ["HNSW"]}))
    assert "--search.skip-rdb-load yes" in plan.argv and plan.index_guard is None
    assert "search.skip-rdb-load: yes (VALKEY_SEARCH_INDEX_GUARD=no: every load indexes the keys again)" in plan.notes


def test_coordinator_cannot_be_added_to_a_config_loaded_search(tmp_path):
    conf = tmp_path / "v.conf"
    conf.write_text("cluster-enabled yes\nloadmodule /x/libsearch.so\n")
    plan = plan_for([str(conf)])
    assert plan.coordinator is False
    assert any("cross-shard search stays off" in w for w in plan.warnings)


def test_cluster_mode_from_extra_flags_turns_coordinator_on():
    plan = plan_for([], {"VALKEY_MODULES": "search", "VALKEY_EXTRA_FLAGS": "--cluster-enabled yes"})
    assert plan.coordinator and "--use-coordinator" in plan.argv[1]


@pytest.mark.parametrize("command", [["valkey-cli", "--version"], ["sh", "-c", "echo hi"]])
def test_other_commands_run_unchanged(command):
    plan = plan_for(command, {"VALKEY_EXTRA_FLAGS": "--port 1", "SEARCH_MODULE_ARGS": "x"})
    assert plan.argv == command and plan.modules == [] and not plan.server


@pytest.mark.parametrize(
    "command, argv, server",
    [
        ([], ["valkey-server"], True),
        (["--port", "1"], ["valkey-server", "--port", "1"], True),
        (["my.conf", "--port", "1"], ["valkey-server", "my.conf", "--port", "1"], True),
        (["/usr/local/bin/valkey-server", "-v"], ["/usr/local/bin/valkey-server", "-v"], True),
        (["valkey-cli", "ping"], ["valkey-cli", "ping"], False),
        (["valkey-server-x"], ["valkey-server-x"], False),
        # Every name the image gives the server is the server (redis-server links to it).
        (["redis-server", "--port", "1"], ["redis-server", "--port", "1"], True),
        (["/usr/local/bin/redis-server"], ["/usr/local/bin/redis-server"], True),
        (["redis-cli"], ["redis-cli"], False),
        (["redis-sentinel"], ["redis-sentinel"], False),
    ],
)
def test_command_normalisation(command, argv, server):
    assert normalise_command(command) == (argv, server)


def test_version_passes_through_without_modules():
    plan = plan_for(["valkey-server", "--version"])
    assert plan.argv == ["valkey-server", "--version"]


def test_cpu_without_avx2_refuses_search_with_the_way_out():
    with pytest.raises(UsageError, match=r"module SEARCH .* lacks: avx2 fma; set VALKEY_DISABLE_MODULES=SEARCH"):
        plan_for([], machine="x86_64", cpu_flags=frozenset({"sse4_2"}))
    plan = plan_for([], {"VALKEY_DISABLE_MODULES": "search"}, machine="x86_64", cpu_flags=frozenset({"sse4_2"}))
    assert "SEARCH" not in [m.key for m in plan.modules]
    assert plan_for([], machine="aarch64", cpu_flags=frozenset()).modules  # no x86 needs on arm64


def test_root_hands_the_data_dir_to_valkey(tmp_path):
    conf = tmp_path / "v.conf"
    conf.write_text(f"dir {tmp_path}/data\n")
    plan = plan_for([str(conf)], identity=(0, (999, 999)))
    assert plan.run_as == (999, 999) and plan.data_dir == f"{tmp_path}/data"
    assert plan_for([], cwd="/data", identity=(1000, None)).run_as is None


def test_config_loading_a_module_twice_is_an_error(tmp_path):
    (tmp_path / "mods.conf").write_text("loadmodule /usr/lib/valkey/libjson.so\n")
    conf = tmp_path / "v.conf"
    conf.write_text(f"include {tmp_path}/mods.conf\nloadmodule /opt/other/libjson.so\n")
    with pytest.raises(UsageError, match=rf"^{conf}:2: module JSON is already loaded by {tmp_path}/mods.conf:1"):
        plan_for([str(conf)])


@pytest.mark.parametrize(
    "typo, suggestion",
    [
        ("SERCH", "SEARCH"),
        ("JSN", "JSON"),
        ("BLOM", "BLOOM"),
        ("LDAPP", "LDAP"),
        ("REDIS", None),
        ("X", None),
        # Two letters swapped are one typo.
        ("JSNO", "JSON"),
        ("LDPA", "LDAP"),
        ("SAERCH", "SEARCH"),
    ],
)
def test_did_you_mean(typo, suggestion):
    assert closest(typo, sorted(DISCOVERED)) == suggestion


@pytest.mark.parametrize("typo, key", [("jsno", "JSON"), ("ldpa", "LDAP"), ("fb", "BLOOM")])
def test_swapped_letters_get_a_did_you_mean(typo, key):
    with pytest.raises(UsageError, match=rf"unknown module '{typo}' .*; did you mean {key}\?$"):
        plan_for([], {"VALKEY_MODULES": typo})


def test_redis_server_is_the_server_with_the_modules():
    plan = plan_for(["redis-server", "--appendonly", "yes"], identity=(0, (999, 999)))
    assert plan.server and plan.argv[0] == "redis-server"
    assert [m.key for m in plan.modules] == sorted(DISCOVERED)
    assert "--protected-mode no" in plan.argv and plan.run_as == (999, 999)


# ------------------------------------------------------------- what the config does against the environment


def test_the_config_loading_a_disabled_module_says_so(tmp_path):
    conf = tmp_path / "valkey.conf"
    conf.write_text("port 6379\n" * 10 + "loadmodule /usr/lib/valkey/libvalkey_ldap.so\n")
    plan = plan_for([str(conf)], {"VALKEY_DISABLE_MODULES": "ldap"})
    assert "LDAP" in [m.key for m in plan.modules]  # the config still wins
    assert [w for w in plan.warnings if "VALKEY_DISABLE_MODULES" in w] == [
        f"VALKEY_DISABLE_MODULES names LDAP, but {conf}:11 loads it: the config wins; "
        "remove that line to leave the module out"
    ]
    left_out = plan_for([str(conf)], {"VALKEY_MODULES": "json,search"})
    assert [m.key for m in left_out.modules] == ["LDAP", "JSON", "SEARCH"]
    assert [w for w in left_out.warnings if "VALKEY_MODULES" in w] == [
        f"VALKEY_MODULES leaves LDAP out, but {conf}:11 loads it: the config wins; "
        "remove that line to leave the module out"
    ]
    assert any(f"{conf}:11" in w for w in plan_for([str(conf)], {"VALKEY_MODULES": "none"}).warnings)
    # Listed, or not named at all: nothing to say.
    quiet = plan_for([str(conf)], {"VALKEY_MODULES": "ldap json"}).warnings
    assert not any(f"{conf}:11" in w for w in quiet + plan_for([str(conf)]).warnings)


def test_module_args_of_a_config_loaded_module_left_out_still_warn(tmp_path):
    conf = tmp_path / "valkey.conf"
    conf.write_text("loadmodule /usr/lib/valkey/libsearch.so\n")
    plan = plan_for([str(conf)], {"VALKEY_MODULES": "json", "SEARCH_MODULE_ARGS": "--reader-threads 2"})
    assert any(w.startswith(f"SEARCH_MODULE_ARGS ignored: SEARCH is loaded by {conf}:1") for w in plan.warnings)


# ------------------------------------------------------------- mistakes the server would stop at


@pytest.mark.parametrize(
    "line, message",
    [
        (
            "loadmodule /usr/lib/valkey/libsearch.so --use-coordinator yes --reader-threads 2",
            r"v.conf:2: --use-coordinator takes no value, and SEARCH fails to load with `--use-coordinator yes`: "
            r"write --use-coordinator alone$",
        ),
        (
            "loadmodule /usr/lib/valkey/libsearch.so --use-coordinator no",
            r"v.conf:2: .*`--use-coordinator no`: remove --use-coordinator no \(off is its default\)$",
        ),
    ],
)
def test_a_valueless_flag_with_a_value_in_a_loadmodule_line_is_an_error(tmp_path, line, message):
    conf = tmp_path / "v.conf"
    conf.write_text(f"cluster-enabled yes\n{line}\n")
    with pytest.raises(UsageError, match=message):
        plan_for([str(conf)])


ENV_FIX = "set SEARCH_MODULE_ARGS=--use-coordinator (or nothing: it is added in cluster mode)"


@pytest.mark.parametrize(
    "command, environ, where, fix",
    [
        (["--cluster-enabled", "yes", "--use-coordinator"], {}, "the command line", ENV_FIX),
        ([], {"VALKEY_EXTRA_FLAGS": "--cluster-enabled yes --use-coordinator"}, "VALKEY_EXTRA_FLAGS", ENV_FIX),
        (
            ["--loadmodule", "/usr/lib/valkey/libsearch.so", "--use-coordinator"],
            {},
            "the command line",
            'pass it in the module\'s own argument: "--loadmodule /usr/lib/valkey/libsearch.so --use-coordinator"',
        ),
    ],
)
def test_a_load_flag_given_as_a_server_setting_is_an_error(command, environ, where, fix):
    with pytest.raises(UsageError) as caught:
        plan_for(command, environ)
    assert str(caught.value) == (
        f"{where}: --use-coordinator is an argument of the SEARCH module's load, not a server setting "
        f"(valkey-server stops at it: Bad directive); {fix}"
    )


def test_a_load_flag_on_a_line_of_its_own_in_the_config_is_an_error(tmp_path):
    conf = tmp_path / "v.conf"
    conf.write_text("cluster-enabled yes\nuse-coordinator\nloadmodule /usr/lib/valkey/libsearch.so\n")
    with pytest.raises(UsageError) as caught:
        plan_for([str(conf)])
    assert str(caught.value).startswith(f"{conf}:2: --use-coordinator is an argument of the SEARCH module's load")
    assert str(caught.value).endswith(f"add it to the loadmodule line, {conf}:3")


@pytest.mark.parametrize(
    "command, environ, config, message",
    [
        (
            [],
            {"VALKEY_MODULES": "search", "VALKEY_EXTRA_FLAGS": "--json.max-path-limit 256"},
            None,
            r"^VALKEY_EXTRA_FLAGS: json.max-path-limit is a setting of the json module \(JSON\), which is not loaded "
            r"\(VALKEY_MODULES leaves it out\): valkey-server would refuse to start \(Unused Module Configuration\); "
            r"remove the setting, or load JSON$",
        ),
        (
            ["--bf.bloom-capacity", "1000"],
            {"VALKEY_DISABLE_MODULES": "bloom"},
            None,
            r"^the command line: bf.bloom-capacity is a setting of the bf module \(BLOOM\), which is not loaded "
            r"\(VALKEY_DISABLE_MODULES names it\)",
        ),
        ([], {"VALKEY_MODULES": "json"}, "ldap.servers ldap://x\n", r"v.conf:1: ldap.servers .*\(LDAP\)"),
        ([], {"VALKEY_MODULES": "none"}, "port 1\nsearch.reader-threads 8\n", r"v.conf:2: search.reader-threads"),
    ],
)
def test_a_setting_of_a_module_that_is_not_loaded_is_an_error(tmp_path, command, environ, config, message):
    if config is not None:
        conf = tmp_path / "v.conf"
        conf.write_text(config)
        command = [str(conf), *command]
    with pytest.raises(UsageError, match=message):
        plan_for(command, environ)


def test_settings_of_loaded_modules_and_unknown_prefixes_pass(tmp_path):
    conf = tmp_path / "v.conf"
    conf.write_text("loadmodule /usr/lib/valkey/libvalkey_ldap.so\nldap.servers ldap://x\nother.setting 1\n")
    plan = plan_for([str(conf), "--json.max-path-limit", "256"], {"VALKEY_MODULES": "json"})
    assert [m.key for m in plan.modules] == ["LDAP", "JSON"]
    missing = {k: v for k, v in DISCOVERED.items() if k != "BLOOM"}
    with pytest.raises(UsageError, match=r"which is not loaded \(it is not in /usr/lib/valkey\)"):
        plan_for(["--bf.bloom-capacity", "1"], discovered=missing)


def test_protected_mode_off_unless_the_config_or_command_sets_it(tmp_path):
    assert "--protected-mode no" in plan_for([]).argv
    conf = tmp_path / "v.conf"
    conf.write_text("protected-mode yes\n")
    assert "--protected-mode no" not in plan_for([str(conf)]).argv
    assert "--protected-mode no" not in plan_for(["--protected-mode", "yes"]).argv
    assert "--protected-mode no" not in plan_for([], {"VALKEY_EXTRA_FLAGS": "--protected-mode yes"}).argv


@pytest.mark.parametrize("directory", ["/", "/usr/local", "/etc", "/proc/1"])
def test_root_never_hands_a_system_directory_over(directory):
    plan = plan_for([], cwd=directory, identity=(0, (999, 999)))
    assert plan.run_as == (999, 999) and plan.data_dir is None
    assert any("not handing a system directory" in w for w in plan.warnings)


TLS_FILES = ["--tls-cert-file", "/c.crt", "--tls-key-file", "/c.key", "--tls-ca-cert-file", "/ca.crt"]


def coordinator_warnings(plan):
    return [w for w in plan.warnings if w.startswith("the search coordinator listens")]


@pytest.mark.parametrize(
    "args, port",
    [
        ([], "port 26673 (port 6379 + 20294)"),
        (["--port", "7000"], "port 27294 (port 7000 + 20294)"),
        (["--tls-port", "6380", *TLS_FILES], "port 26674 (tls-port 6380 + 20294)"),
        (["--port", "0", "--tls-port", "6378", *TLS_FILES], "port 26673 (tls-port 6378 + 20295)"),
        (["--port", "many"], "port + 20294"),
    ],
)
def test_the_coordinator_port_takes_no_password_and_the_start_says_so(args, port):
    cluster = ["valkey-server", "--cluster-enabled", "yes", *args]
    plan = plan_for([*cluster, "--requirepass", "s3cret"])
    assert plan.coordinator
    (warning,) = coordinator_warnings(plan)
    if "--tls-port" in args:  # the coordinator stays plaintext whatever the server speaks
        assert warning.startswith(f"the search coordinator listens on {port} in plaintext gRPC"), warning
    else:
        assert warning.startswith(f"the search coordinator listens on {port} without authentication"), warning
    assert "without authentication" in warning
    assert "never publish it" in warning and "s3cret" not in warning


def test_the_coordinator_port_with_tls_from_the_environment_is_the_tls_port_and_plaintext():
    env = {"VALKEY_TLS_CERT_FILE": "/c.crt", "VALKEY_TLS_KEY_FILE": "/c.key", "VALKEY_TLS_CA_CERT_FILE": "/ca.crt"}
    plan = plan_for(["valkey-server", "--cluster-enabled", "yes"], {**env, "VALKEY_TLS_PORT": "7000"})
    (warning,) = coordinator_warnings(plan)  # TLS alone is reason enough to say so: no password needed
    assert warning.startswith(
        "the search coordinator listens on port 27294 (tls-port 7000 + 20294) in plaintext gRPC without "
        "authentication (valkey-search"
    ), warning
    assert "encrypts nothing there, whatever TLS the server speaks" in warning


def test_no_coordinator_warning_without_a_password_or_without_the_coordinator():
    cluster = ["valkey-server", "--cluster-enabled", "yes"]
    assert coordinator_warnings(plan_for(cluster)) == []  # the no-password warning covers it
    assert coordinator_warnings(plan_for([*cluster, "--requirepass", "x"], {"VALKEY_SEARCH_COORDINATOR": "no"})) == []
    assert coordinator_warnings(plan_for(["valkey-server", "--requirepass", "x"])) == []  # not in cluster mode
    assert (
        len(
            coordinator_warnings(
                plan_for(["valkey-server", "--aclfile", "/x.acl"], {"VALKEY_SEARCH_COORDINATOR": "yes"})
            )
        )
        == 1
    )
