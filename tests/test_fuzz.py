"""Fixed-seed fuzz over environment values and config text: a clean error or a sound plan."""

import pytest
from support.fuzz_cases import MODULE_FILES, random_case, seeded

from valkey_bundle.errors import UsageError
from valkey_bundle.main import build_plan
from valkey_bundle.server_config import command_line_options
from valkey_bundle.tokens import split_config_args

CASES = 4000


@pytest.fixture
def fuzz_dirs(tmp_path):
    modules_dir = tmp_path / "modules"
    modules_dir.mkdir()
    for name in MODULE_FILES.values():
        (modules_dir / name).write_bytes(b"\x7fELF")
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    (conf_dir / "a.inc").write_text("cluster-enabled yes\n")
    (conf_dir / "xb.inc").write_text(f"loadmodule {modules_dir}/libjson.so from-include\n")
    return modules_dir, conf_dir


def server_view(argv):
    """The (directive, args) lines valkey-server reads from these command-line args."""
    text = command_line_options(argv, config_file_given=False)
    return [split_config_args(line) for line in text.split("\n") if line.strip()]


def test_fuzz_never_a_traceback(fuzz_dirs, monkeypatch):
    modules_dir, conf_dir = fuzz_dirs
    monkeypatch.chdir(conf_dir)
    rng = seeded(20261129)
    outcomes = {"error": 0, "plan": 0}
    for case in range(CASES):
        argv, environ, config = random_case(rng, modules_dir, conf_dir)
        if config is not None:
            (conf_dir / "fuzz.conf").write_text(config)
        try:
            _, plan = build_plan(argv, environ)
        except UsageError as exc:
            message = str(exc)
            assert message and "\n" not in message, (case, message)
            outcomes["error"] += 1
            continue
        except Exception as exc:  # any other exception is a traceback for a user
            raise AssertionError(f"case {case}: {type(exc).__name__}: {exc}\nargv={argv}\nenv={environ}") from exc
        outcomes["plan"] += 1
        keys = [m.key for m in plan.modules]
        assert len(keys) == len(set(keys)), (case, keys)  # never the same module twice
        generated = [a for a in plan.argv[1:] if a.startswith("--loadmodule ")]
        env_modules = [m for m in plan.modules if m.source == "env"]
        assert [line[1:] for line in server_view(generated)] == [[m.path, *m.args] for m in env_modules], case
    # The generator must exercise both outcomes, or this test proves little.
    assert outcomes["error"] > CASES // 10 and outcomes["plan"] > CASES // 4, outcomes
