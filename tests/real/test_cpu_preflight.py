"""The entrypoint's CPU check, with the facts the image ships for the real search module.

valkey-search on x86_64 is compiled for Haswell or newer and dies with SIGILL at load on
an older CPU; the entrypoint reads the features it needs (MODULE_CPU_FEATURES_* of the
image's modules/search/module.env) and /proc/cpuinfo first. Here a copy of this machine's
/proc/cpuinfo without some of those features is bind-mounted over the container's, as an
older CPU would look: the container stops with one line that names the module and the
variable that lets the rest start, and starts with that variable set.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from container.cluster_kit import docker

from valkey_bundle.module_files import parse_env_file

from . import real_kit

pytestmark = pytest.mark.real

FACTS = "/usr/local/lib/valkey-bundle/modules/search/module.env"
HIDDEN = ("avx2", "fma")  # what a CPU before Haswell lacks
BUILTIN_MODULES = {"lua"}  # a module of the server itself since Valkey 9.1


@pytest.fixture(scope="module", autouse=True)
def search_is_real(real_image):
    real_kit.require_real(real_image, "search")


@pytest.fixture(scope="module")
def needed(real_image) -> list[str]:
    """The CPU features the image says its search module needs on the machine it runs on."""
    out = docker("run", "--rm", real_image.name, "sh", "-c", f"uname -m; cat {FACTS}")
    machine, _, facts = out.partition("\n")
    features = parse_env_file(facts).get(f"MODULE_CPU_FEATURES_{machine.strip().upper()}", "").split()
    if not features:
        pytest.skip(f"not run: search needs no CPU features on {machine.strip()} (the image's {FACTS})")
    assert set(HIDDEN) <= set(features), f"{FACTS} no longer lists {HIDDEN}: {features}"
    return features


@pytest.fixture(scope="module")
def older_cpuinfo(tmp_path_factory) -> Path:
    """This machine's /proc/cpuinfo (what containers see) without the HIDDEN features."""
    lines = []
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith(("flags", "Features")):
            name, _, flags = line.partition(":")
            line = f"{name}: {' '.join(f for f in flags.split() if f not in HIDDEN)}"
        lines.append(line)
    path = tmp_path_factory.mktemp("cpu") / "cpuinfo"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o644)
    return path


def loaded_modules(node) -> set[str]:
    return {dict(zip(m[::2], m[1::2], strict=True))["name"] for m in node.call("MODULE", "LIST")} - BUILTIN_MODULES


def test_a_cpu_without_the_features_stops_with_one_line(kit, needed, older_cpuinfo):
    missing = [f for f in needed if f in HIDDEN]
    node = kit.node("cpu-old", mounts={str(older_cpuinfo): "/proc/cpuinfo"})
    node.run(kit.next_address())
    status = docker("wait", node.name, timeout=60).strip()
    output = node.logs().strip()
    assert status == "2", f"exit status {status}:\n{output}"
    assert len(output.splitlines()) == 1, output
    assert output.startswith("bundle-docker-entrypoint: error: module SEARCH "), output
    assert f"lacks: {' '.join(missing)};" in output, output
    assert "VALKEY_DISABLE_MODULES=SEARCH" in output, output


def test_the_rest_starts_without_search(kit, needed, older_cpuinfo):
    node = kit.node(
        "cpu-old-rest",
        extra_env={"VALKEY_DISABLE_MODULES": "search"},
        mounts={str(older_cpuinfo): "/proc/cpuinfo"},
    )
    real_kit.start(kit, node)
    code, out = node.exec("grep", "-cw", HIDDEN[0], "/proc/cpuinfo")
    assert out.strip() == "0", f"the container sees the real /proc/cpuinfo ({code}: {out})"
    assert loaded_modules(node) == {"json", "bf", "ldap"}


def test_the_cpu_of_this_machine_loads_search(kit, needed):
    node = real_kit.start(kit, kit.node("cpu-here"))
    assert "search" in loaded_modules(node)
    assert node.call("FT._LIST") == []


# Instructions that only a CPU with the feature runs, by /proc/cpuinfo name (x86_64).
# tzcnt is left out: it runs as bsf on CPUs without BMI1.
FEATURE_INSTRUCTIONS = {
    "cx16": r"cmpxchg16b",
    "sse4_2": r"v?(crc32[bwlq]?|pcmp[ei]str[im]|pcmpgtq)",
    "popcnt": r"popcnt",
    "pclmulqdq": r"v?pclmulqdq",
    "aes": r"v?aes(enc|enclast|dec|declast|imc|keygenassist)",
    "avx": r"v[a-z0-9]+",  # any VEX instruction
    "avx2": r"v(pbroadcast[bwdq]|perm2i128|perm[dq]|inserti128|extracti128"
    r"|ps[lr]lv[dq]|psravd|p?gather[a-z]+|pmaskmov[dq]|pblendd)",
    "fma": r"vf(n?m(add|sub)(sub|add)?)[0-9]{3}[ps][sd]",
    "3dnowprefetch": r"prefetchw",
    "f16c": r"vcvt(ph2ps|ps2ph)",
    "bmi1": r"(andn|bextr|blsi|blsmsk|blsr)",
    "bmi2": r"(bzhi|mulx|pdep|pext|rorx|sarx|shlx|shrx)",
    "lzcnt": r"lzcnt",
    "movbe": r"movbe",
    "avx512f": r"v[a-z0-9]+ .*(%zmm|%k[1-7]).*",  # matched against the whole instruction
}
# simsimd's kernels for newer CPUs, picked at run time by what the CPU reports.
DISPATCHED = re.compile(r"<simsimd_\w+_(haswell|skylake|ice|genoa|sapphire|turin|sierra)>:")


def features_by_function(listing: str) -> dict[str, set[str]]:
    """{function: the features its instructions need}, from ``objdump -d``."""
    found: dict[str, set[str]] = {}
    function = ""
    for line in listing.splitlines():
        if line.endswith(">:"):
            function = line.split(" ", 1)[-1]
            continue
        fields = line.split("\t")
        if len(fields) < 2 or not fields[1].strip():
            continue
        instruction = fields[1].strip()
        mnemonic = instruction.split()[0]
        for feature, pattern in FEATURE_INSTRUCTIONS.items():
            if re.fullmatch(pattern, instruction if feature == "avx512f" else mnemonic):
                found.setdefault(function, set()).add(feature)
    return found


def test_the_module_needs_the_cpu_features_it_declares(real_image, needed, tmp_path):
    """MODULE_CPU_FEATURES_X86_64 against the instructions in the real libsearch.so: every
    feature an instruction outside simsimd's run-time-dispatched kernels needs is
    declared (else the preflight would let a CPU through that dies with SIGILL). Declared
    features no instruction uses are printed: the recipe checks, as it builds, that the
    list is what the module was compiled for, and the compiler may use them in any
    rebuild."""
    import shutil
    import subprocess

    if shutil.which("objdump") is None:
        pytest.fail("objdump is not installed: .ci/install-deps installs binutils")
    name = f"cpu-{tmp_path.name}"
    docker("create", "--name", name, real_image.name)
    try:
        docker("cp", f"{name}:/usr/lib/valkey/libsearch.so", str(tmp_path / "libsearch.so"))
    finally:
        docker("rm", "-f", name)
    listing = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", str(tmp_path / "libsearch.so")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    by_function = features_by_function(listing)
    assert by_function, "objdump found no instructions"
    baseline: dict[str, list[str]] = {}
    dispatched: set[str] = set()
    for function, features in by_function.items():
        if DISPATCHED.fullmatch(function):
            dispatched |= features
            continue
        for feature in features:
            baseline.setdefault(feature, []).append(function)
    undeclared = {f: functions[:3] for f, functions in baseline.items() if f not in needed}
    assert not undeclared, f"used outside run-time dispatch but not in MODULE_CPU_FEATURES_X86_64: {undeclared}"
    assert {"avx2", "fma"} <= set(baseline), "the module's own code no longer uses AVX2 and FMA?"
    unused = sorted(set(needed) - set(baseline))
    print(f"\nlibsearch.so needs {sorted(baseline)}; declared, not used now: {unused}")
    print(f"run-time dispatched kernels use {sorted(dispatched)}")
