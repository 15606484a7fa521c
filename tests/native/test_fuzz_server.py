"""The fuzz's sound plans, started for real: the server accepts each and loads what was planned."""

import json
import os
import subprocess

import pytest
from conftest import ENTRYPOINT, base_env
from support import testbed
from support.fuzz_cases import random_case, seeded

pytestmark = pytest.mark.native
STARTS = 30


def test_fuzzed_plans_start_the_server(modules_dir, valkey_prefix, tmp_path):
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    (conf_dir / "a.inc").write_text("cluster-enabled no\n")
    (conf_dir / "xb.inc").write_text(f"loadmodule {modules_dir}/libjson.so from-include\n")
    rng = seeded(4242)
    started = 0
    while started < STARTS:
        argv, environ, config = random_case(rng, modules_dir, conf_dir, server_safe=True)
        if config is not None:
            (conf_dir / "fuzz.conf").write_text(config.replace("cluster-enabled yes", "cluster-enabled no"))
        env = base_env(**environ)
        env["PATH"] = f"{valkey_prefix / 'bin'}{os.pathsep}{env['PATH']}"
        dry = subprocess.run(
            [str(ENTRYPOINT), *argv],
            env=dict(env, VALKEY_BUNDLE_DRY_RUN="1"),
            capture_output=True,
            text=True,
            cwd=conf_dir,
        )
        if dry.returncode == 2:
            continue  # a clean error (e.g. the config loads a module twice): nothing to start
        assert dry.returncode == 0, dry.stderr
        plan = json.loads(dry.stdout)
        port = testbed.free_port()
        log = tmp_path / f"fuzz-{started}.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [str(ENTRYPOINT), *argv, "--port", str(port), "--save", ""],
                env=env, stdout=out, stderr=subprocess.STDOUT, cwd=conf_dir,
            )  # fmt: skip
        try:
            testbed.wait_until_ready(valkey_prefix, port, proc)
            for module in plan["modules"]:
                name = {"BLOOM": "bf"}.get(module["key"], module["key"].lower())
                got = testbed.valkey_command(port, f"{name}.args")
                assert got == [a.encode("utf-8", "surrogateescape") for a in module["args"]], (plan, log.read_text())
        finally:
            proc.terminate()
            proc.wait(10)
        started += 1
