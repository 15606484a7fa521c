"""The entrypoint as a process: exit statuses, one-line errors, dry run."""

import json
import os

import pytest
from conftest import ENTRYPOINT, base_env, run_entrypoint

PREFIX = "bundle-docker-entrypoint: error: "


def fake_modules(directory, *names):
    directory.mkdir(exist_ok=True)
    for name in names:
        (directory / name).write_bytes(b"\x7fELF")  # discovery only looks at names
    return directory


def dry_run(tmp_path, args=(), **variables):
    env = base_env(VALKEY_BUNDLE_DRY_RUN="1", **variables)
    env.setdefault("VALKEY_MODULES_DIR", str(fake_modules(tmp_path / "mods", "libsearch.so", "libjson.so")))
    result = run_entrypoint(args, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def assert_clean_error(result, *needles):
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith(PREFIX)]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    for needle in needles:
        assert needle in errors[0], errors[0]


def test_entrypoint_is_executable_with_a_python_shebang():
    assert os.access(ENTRYPOINT, os.X_OK)
    first = ENTRYPOINT.read_text().splitlines()[0]
    assert first.startswith("#!") and "python3" in first and "-I" in first


def test_dry_run_prints_the_plan_as_json(tmp_path):
    plan, _ = dry_run(tmp_path, SEARCH_MODULE_ARGS="--reader-threads 2")
    mods = tmp_path / "mods"
    assert plan["argv"] == [
        "valkey-server",
        f"--loadmodule {mods}/libjson.so",
        f"--loadmodule {mods}/libsearch.so --reader-threads 2",
        "--search.skip-rdb-load yes",  # modules/search/module.env: MODULE_CONFIGS
        "--protected-mode no",
    ]
    assert [m["key"] for m in plan["modules"]] == ["JSON", "SEARCH"]


def test_python_variables_do_not_leak_in(tmp_path):
    bad = tmp_path / "site"
    bad.mkdir()
    (bad / "valkey_bundle").mkdir()
    (bad / "valkey_bundle" / "__init__.py").write_text("raise SystemExit('hijacked')\n")
    plan, _ = dry_run(tmp_path, PYTHONPATH=str(bad), PYTHONSTARTUP=str(bad / "x.py"))
    assert plan["argv"][0] == "valkey-server"


@pytest.mark.parametrize(
    "variables, needles",
    [
        ({"VALKEY_MODULES": "serch"}, ["VALKEY_MODULES", "'serch'", "did you mean SEARCH?"]),
        ({"VALKEY_DISABLE_MODULES": "jsonn"}, ["VALKEY_DISABLE_MODULES", "JSON"]),
        ({"SEARCH_MODULE_ARGS": '--name "unterminated'}, ["SEARCH_MODULE_ARGS", "unbalanced quotes"]),
        ({"SEARCH_MODULE_ARGS": "--a 1\nloadmodule /evil.so"}, ["SEARCH_MODULE_ARGS", "control character 0x0a"]),
        ({"VALKEY_EXTRA_FLAGS": '"--port 1\\nloadmodule /evil.so"'}, ["VALKEY_EXTRA_FLAGS", "control character"]),
        ({"VALKEY_EXTRA_FLAGS": "--save 'x"}, ["VALKEY_EXTRA_FLAGS", "unbalanced quotes"]),
        ({"VALKEY_SEARCH_COORDINATOR": "maybe"}, ["VALKEY_SEARCH_COORDINATOR", "auto, yes or no"]),
        ({"VALKEY_BUNDLE_DRY_RUN": "perhaps"}, ["VALKEY_BUNDLE_DRY_RUN"]),
    ],
)
def test_bad_environment_is_one_clear_line(tmp_path, variables, needles):
    env = base_env(VALKEY_MODULES_DIR=str(fake_modules(tmp_path / "mods", "libsearch.so", "libjson.so")), **variables)
    env.setdefault("VALKEY_BUNDLE_DRY_RUN", "1")
    assert_clean_error(run_entrypoint([], env=env, cwd=tmp_path), *needles)


def test_two_files_with_one_key(tmp_path):
    mods = fake_modules(tmp_path / "mods", "libsearch.so", "search.so")
    result = run_entrypoint([], env=base_env(VALKEY_MODULES_DIR=str(mods)), cwd=tmp_path)
    assert_clean_error(result, "libsearch.so", "search.so", "SEARCH")


def test_unreadable_config_and_bad_line(tmp_path):
    mods = str(fake_modules(tmp_path / "mods", "libjson.so"))
    result = run_entrypoint(["missing.conf"], env=base_env(VALKEY_MODULES_DIR=mods), cwd=tmp_path)
    assert_clean_error(result, "cannot read config file missing.conf")
    (tmp_path / "bad.conf").write_text("port 1\ninclude 'x\n")
    result = run_entrypoint(["bad.conf"], env=base_env(VALKEY_MODULES_DIR=mods), cwd=tmp_path)
    assert_clean_error(result, f"{tmp_path}/bad.conf:2", "unbalanced quotes")


def test_missing_modules_dir_warns_and_starts_without_modules(tmp_path):
    plan, stderr = dry_run(tmp_path, VALKEY_MODULES_DIR=str(tmp_path / "nope"))
    assert plan["argv"] == ["valkey-server", "--protected-mode no"]
    assert "warning: modules directory" in stderr


def test_command_not_found_is_127(tmp_path):
    result = run_entrypoint(["no-such-command-anywhere"], cwd=tmp_path)
    assert result.returncode == 127
    assert result.stderr.strip() == f"{PREFIX}command not found: no-such-command-anywhere"


def test_other_commands_are_execd_unchanged(tmp_path):
    result = run_entrypoint(
        ["sh", "-c", 'echo "$0:$$:$VALKEY_EXTRA_FLAGS"'], env=base_env(VALKEY_EXTRA_FLAGS="--x"), cwd=tmp_path
    )
    assert result.returncode == 0 and result.stdout.startswith("sh:")


def test_debug_explains_and_redacts(tmp_path):
    _, stderr = dry_run(
        tmp_path,
        VALKEY_BUNDLE_DEBUG="1",
        SEARCH_MODULE_ARGS="--reader-threads 2",
        VALKEY_EXTRA_FLAGS="--requirepass s3cret --masterauth=hunter2",
    )
    assert "debug: module SEARCH" in stderr and "debug: exec:" in stderr
    assert "s3cret" not in stderr and "hunter2" not in stderr


def test_debug_alias(tmp_path):
    _, stderr = dry_run(tmp_path, DEBUG="1")
    assert "debug: exec:" in stderr


def test_coordinator_with_a_password_is_warned_about_once(tmp_path):
    plan, stderr = dry_run(tmp_path, ["--cluster-enabled", "yes"], VALKEY_PASSWORD="s3cret")
    assert plan["coordinator"] is True
    lines = [line for line in stderr.splitlines() if "search coordinator" in line]
    assert lines == [
        "bundle-docker-entrypoint: warning: the search coordinator listens on port 26673 (port 6379 + 20294) "
        "without authentication (the password does not apply there): whoever reaches it can run index queries "
        "and read documents; let only the cluster's members reach it, never publish it"
    ]


def test_mistakes_the_server_would_stop_at_are_one_line_before_anything_starts(tmp_path):
    mods = str(fake_modules(tmp_path / "mods", "libsearch.so", "libjson.so"))
    (tmp_path / "valkey.conf").write_text(
        f"cluster-enabled yes\nloadmodule {mods}/libsearch.so --use-coordinator yes\n"
    )
    result = run_entrypoint(["valkey.conf"], env=base_env(VALKEY_MODULES_DIR=mods), cwd=tmp_path)
    assert_clean_error(
        result, f"{tmp_path}/valkey.conf:2: --use-coordinator takes no value", "write --use-coordinator alone"
    )
    result = run_entrypoint(["--cluster-enabled", "yes", "--use-coordinator"], env=base_env(VALKEY_MODULES_DIR=mods))
    assert_clean_error(result, "the command line: --use-coordinator is an argument of the SEARCH module's load")
    result = run_entrypoint(
        [], env=base_env(VALKEY_MODULES_DIR=mods, VALKEY_EXTRA_FLAGS="--bf.bloom-capacity 10"), cwd=tmp_path
    )
    assert_clean_error(result, "VALKEY_EXTRA_FLAGS: bf.bloom-capacity is a setting of the bf module (BLOOM)", "not in")
    result = run_entrypoint(
        [], env=base_env(VALKEY_MODULES_DIR=mods, VALKEY_MODULES="search", VALKEY_EXTRA_FLAGS="--json.max-path-limit 9")
    )
    assert_clean_error(result, "VALKEY_EXTRA_FLAGS: json.max-path-limit is a setting of the json module (JSON)")


def test_environment_the_config_overrides_is_warned_about(tmp_path):
    mods = fake_modules(tmp_path / "ldap-mods", "libsearch.so", "libvalkey_ldap.so")
    (tmp_path / "valkey.conf").write_text(f"port 6379\nloadmodule {mods}/libvalkey_ldap.so\n")
    plan, stderr = dry_run(tmp_path, ["valkey.conf"], VALKEY_MODULES_DIR=str(mods), VALKEY_DISABLE_MODULES="ldap")
    assert [m["key"] for m in plan["modules"]] == ["LDAP", "SEARCH"]
    assert (
        f"bundle-docker-entrypoint: warning: VALKEY_DISABLE_MODULES names LDAP, but {tmp_path}/valkey.conf:2 loads "
        "it: the config wins; remove that line to leave the module out"
    ) in stderr.splitlines()
