"""Tier 1 against the real server: random token lists round-trip through a real module load.

Each list is written into <KEY>_MODULE_ARGS with our quoting, split by the
entrypoint, re-quoted into one --loadmodule element, split again by
valkey-server, and must reach the module byte for byte.
"""

import os
import random
import subprocess

import pytest
from conftest import ENTRYPOINT, base_env
from support import testbed
from support.fuzz_cases import random_tokens

from valkey_bundle.tokens import join_config_args

pytestmark = pytest.mark.native
COPIES = 16  # fixture modules loaded per server start
STARTS = 25


@pytest.fixture(scope="module")
def round_trip_modules(tmp_path_factory, valkey_prefix):
    directory = tmp_path_factory.mktemp("rt-modules")
    for i in range(COPIES):
        subprocess.run(
            [os.environ.get("CC", "cc"), "-shared", "-fPIC", "-O1", f"-I{valkey_prefix / 'include'}",
             f'-DFIXTURE_NAME="rt{i}"', "-o", str(directory / f"librt{i}.so"), str(testbed.FIXTURE_SOURCE)],
            check=True,
        )  # fmt: skip
    return directory


def test_random_token_lists_reach_the_module_unchanged(round_trip_modules, valkey_prefix, tmp_path):
    rng = random.Random(1129)
    checked = 0
    for start in range(STARTS):
        lists = {i: random_tokens(rng) for i in range(COPIES)}
        port = testbed.free_port()
        env = base_env(VALKEY_MODULES_DIR=str(round_trip_modules))
        env["PATH"] = f"{valkey_prefix / 'bin'}{os.pathsep}{env['PATH']}"
        for i, tokens in lists.items():
            env[f"RT{i}_MODULE_ARGS"] = join_config_args(tokens)
        log = tmp_path / f"rt-{start}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [str(ENTRYPOINT), "--port", str(port), "--save", ""], env=env, stdout=out, stderr=out, cwd=tmp_path
            )
        try:
            testbed.wait_until_ready(valkey_prefix, port, proc)
            for i, tokens in lists.items():
                got = testbed.valkey_command(port, f"rt{i}.args")
                expected = [t.encode("utf-8", "surrogateescape") for t in tokens]
                assert got == expected, (start, i, tokens, log.read_text(errors="replace"))
                checked += 1
        finally:
            proc.terminate()
            proc.wait(10)
    assert checked == COPIES * STARTS
