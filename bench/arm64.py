"""arm64 under emulation, phase by phase: a debootstrapped arm64 trixie base, the image
built for linux/arm64 (every module a stand-in), started, and pushed by digest to a
registry on this machine and joined with the amd64 image into one list.

    python3 bench/arm64.py [--cold] [--jobs N] [--no-registry] [--log FILE]

Needs root, debootstrap, a Docker engine with buildx and QEMU's static arm64 user-mode
emulator (qemu-aarch64-static, or qemu-aarch64 as .ci/install-deps installs Debian 13's);
with the registry also docker-registry and skopeo (.ci/install-deps). Nothing is
downloaded but Debian packages.

- binfmt: an aarch64 entry in binfmt_misc with the fix-binary flag (F: the kernel keeps
  the emulator open, so it runs arm64 programs inside containers and chroots too); one
  without F is replaced, none is registered (binfmt_misc mounted first if it is not);
- rootfs: `debootstrap --foreign --arch=arm64 --variant=minbase trixie` (download and
  unpack, on this CPU), then its second stage in a chroot of it, through QEMU, and the
  tree loaded into Docker as a linux/arm64 image
  (valkey-bundle-test/trixie-minbase-arm64:<key>, the recipe of
  tests/support/make-base-image.sh for arm64). The tree is kept in the cache
  (<cache>/rootfs/arm64-<key>.tar) and reused; --cold makes it again;
- build: `./build.sh build --platform linux/arm64 --stand-ins all` on it with JOBS, the
  Valkey source of the test bed (tests/container/container_image.py), offline, under
  the container tests' build lock. Docker's own builder (the docker driver) builds the
  foreign platform through the binfmt entry and sees the local base image; an engine
  whose BuildKit cannot cut the network per step gets the package stages built first
  by build.sh, for arm64 and under a key of their own. Per stage the sum
  of its steps' times, from BuildKit's plain progress output, and the wall time. Every
  compile runs without the ccache (CCACHE_DISABLE=1: what is measured is the emulated
  compile, and no arm64 object goes into the ccache the amd64 builds share). The first
  run on a machine builds every step; later ones reuse the build cache, unless --cold:
  the tree debootstrapped again is a new base image, and every step runs again;
- run: `docker run --platform linux/arm64 ... --ignore-warnings ARM64-COW-BUG` (see
  SERVER_ARGS), to the first PONG from valkey-cli inside the container, then MODULE
  LIST; the answers are printed;
- registry (not with --no-registry): Debian's docker-registry on 127.0.0.1, the arm64
  image and the container tier's amd64 image pushed by digest (`./build.sh push
  --by-digest --local-image`), joined (`./build.sh manifest --platform
  linux/amd64,linux/arm64`), its platforms read from the registry, and the list pulled
  by digest for arm64 and started as above (`./build.sh smoke` would start it without
  that flag). The registry and what was pulled from it are removed at the end.

The images built (the base, build.sh's package stages, valkey-bundle-arm64:local) stay.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import fcntl
import hashlib
import inspect
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "container")]

import container_image  # noqa: E402
from release import release_kit  # noqa: E402
from support import testbed  # noqa: E402

PLATFORM = "linux/arm64"
IMAGE = "valkey-bundle-arm64"
BINFMT = Path("/proc/sys/fs/binfmt_misc")
# The ELF header of an arm64 executable and the bits that decide it, as Debian's
# qemu-user registers them (/usr/share/qemu/binfmt.d/qemu-aarch64.conf).
AARCH64_MAGIC = r"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00"
AARCH64_MASK = r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"
SUITE, VARIANT = "trixie", "minbase"
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
STEP = re.compile(r"^#(\d+) \[(?:linux/\w+ )?([\w.-]+)(?: \d+/\d+)?\] ")
DONE = re.compile(r"^#(\d+) DONE (\d+(?:\.\d+)?)s$")
CACHED = re.compile(r"^#(\d+) CACHED$")
# Valkey on arm64 checks at start that the kernel keeps a page dirty across
# madvise(MADV_FREE), a write and fork (an arm64 kernel bug, fixed upstream), reading
# /proc/self/smaps in the child, and exits if not. Under QEMU's user mode that check
# fails on an x86 host whose kernel has no such bug (QEMU emulates the arm64 process in
# an x86 one): the server is told to go on; a real arm64 machine needs no such flag.
SERVER_ARGS = ("--ignore-warnings", "ARM64-COW-BUG")


def run(*cmd: str, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    return subprocess.run(cmd, check=kwargs.pop("check", True), **kwargs)


def say(text: str) -> None:
    print(f"arm64: {text}", file=sys.stderr, flush=True)


# --- binfmt ----------------------------------------------------------------------------


def binfmt_entries() -> dict[str, dict[str, str]]:
    """Every binfmt_misc entry: name -> its fields (enabled, interpreter, flags, magic)."""
    entries = {}
    for path in BINFMT.iterdir():
        if path.name in ("register", "status"):
            continue
        fields = {}
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            fields[key.rstrip(":")] = value.strip() if value else key
        fields["enabled"] = "yes" if "enabled" in path.read_text().split() else "no"
        entries[path.name] = fields
    return entries


def emulator() -> Path:
    for name in ("qemu-aarch64-static", "qemu-aarch64"):
        found = shutil.which(name)
        if found:
            return Path(found).resolve()
    raise RuntimeError("no qemu-aarch64-static or qemu-aarch64: run .ci/install-deps (as root)")


def arrange_binfmt() -> str:
    """An enabled aarch64 entry with the F flag (registered here if need be); says which."""
    if not (BINFMT / "register").exists():
        run("mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT))
    magic = AARCH64_MAGIC.replace(r"\x", "")
    how = "registered"
    for name, fields in binfmt_entries().items():
        if fields.get("magic") != magic:
            continue
        if fields["enabled"] == "yes" and "F" in fields.get("flags", ""):
            how = "found"
            break
        say(f"binfmt_misc entry {name} has flags '{fields.get('flags', '')}' (enabled: {fields['enabled']}): replaced")
        (BINFMT / name).write_text("-1")
        how = "re-registered"
    if how != "found":
        line = f":qemu-aarch64:M::{AARCH64_MAGIC}:{AARCH64_MASK}:{emulator()}:OPF"
        (BINFMT / "register").write_text(line)
    name, fields = next((n, f) for n, f in binfmt_entries().items() if f.get("magic") == magic)
    interpreter = fields["interpreter"]
    version = run(interpreter, "--version").stdout.splitlines()[0]
    return f"{version}; binfmt_misc {name} {how}, flags {fields['flags']}"


# --- the arm64 base --------------------------------------------------------------------


def rootfs_key() -> str:
    recipe = f"suite={SUITE}\nvariant={VARIANT}\nmirror={MIRROR}\narch=arm64\n" + inspect.getsource(make_rootfs)
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def mounts_under(directory: Path) -> list[str]:
    """Mount points at or below DIRECTORY, deepest first."""
    prefix = str(directory.resolve())
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return sorted(points, key=len, reverse=True)


def make_rootfs(work: Path, tarball: Path, log: Path) -> dict[str, float]:
    """debootstrap's first stage (here), its second (in a chroot, through QEMU), the tar."""
    times = {}
    root = work / "root"
    with open(log, "w") as out:
        started = time.monotonic()
        first = ["debootstrap", "--foreign", "--arch=arm64", f"--variant={VARIANT}", SUITE, str(root), MIRROR]
        out.write("+ " + " ".join(first) + "\n")
        out.flush()
        if subprocess.run(first, stdout=out, stderr=subprocess.STDOUT, check=False).returncode != 0:
            raise RuntimeError(f"debootstrap --foreign failed, see {log}")
        times["debootstrap --foreign (download, unpack; this CPU)"] = time.monotonic() - started
        started = time.monotonic()
        second = ["chroot", str(root), "/debootstrap/debootstrap", "--second-stage"]
        out.write("+ " + " ".join(second) + "\n")
        out.flush()
        if subprocess.run(second, stdout=out, stderr=subprocess.STDOUT, check=False).returncode != 0:
            raise RuntimeError(f"debootstrap --second-stage failed, see {log}")
        times["debootstrap --second-stage (chroot, QEMU)"] = time.monotonic() - started
    if mounts_under(root):
        raise RuntimeError(f"still mounted after debootstrap: {mounts_under(root)}")
    started = time.monotonic()
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    run("tar", "--numeric-owner", "-C", str(root), "-cf", str(work / "rootfs.tar"), ".")
    os.replace(work / "rootfs.tar", tarball)
    times["tar"] = time.monotonic() - started
    return times


def load_image(tarball: Path, name: str, key: str) -> None:
    """TARBALL as a one-layer linux/arm64 image NAME: a `docker load` archive whose
    config says arm64 (`docker import --platform` of Docker 20.10 keeps the engine's
    own architecture), with make-base-image.sh's PATH, CMD and label."""
    digest = hashlib.sha256()
    with open(tarball, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    diff_id = f"sha256:{digest.hexdigest()}"
    created = datetime.datetime.fromtimestamp(tarball.stat().st_mtime, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    config = {
        "architecture": "arm64",
        "variant": "v8",
        "os": "linux",
        "created": created,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["bash"],
            "Labels": {"org.valkey-bundle.rootfs-key": key},
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": f"debootstrap --arch=arm64 --variant={VARIANT} {SUITE}"}],
    }
    config_bytes = json.dumps(config).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_name = f"{diff_id[7:]}/layer.tar"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [name], "Layers": [layer_name]}]).encode()
    with tempfile.TemporaryDirectory(dir=tarball.parent) as tmp:
        archive = Path(tmp) / "image.tar"
        with tarfile.open(archive, "w") as out:
            for member, data in ((config_name, config_bytes), ("manifest.json", manifest)):
                info = tarfile.TarInfo(member)
                info.size = len(data)
                out.addfile(info, io.BytesIO(data))
            out.add(str(tarball), arcname=layer_name)
        run("docker", "load", "--input", str(archive))
    have = run("docker", "image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", name).stdout.strip()
    if have != PLATFORM:
        raise RuntimeError(f"{name} loaded as {have}, not {PLATFORM}")


def base_image(rebuild: bool) -> tuple[str, dict[str, float]]:
    """The arm64 base image, made if need be; its name and the time of each step."""
    key = rootfs_key()
    name = f"valkey-bundle-test/trixie-minbase-arm64:{key}"
    rootfs_dir = testbed.cache_dir() / "rootfs"
    rootfs_dir.mkdir(parents=True, exist_ok=True)
    tarball = rootfs_dir / f"arm64-{key}.tar"
    times: dict[str, float] = {}
    with open(rootfs_dir / f"arm64-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if rebuild or not tarball.exists():
            if shutil.which("debootstrap") is None:
                raise RuntimeError("debootstrap not found: run .ci/install-deps (as root)")
            work = Path(tempfile.mkdtemp(prefix=f".debootstrap-arm64-{key}.", dir=rootfs_dir))
            log = rootfs_dir / f"arm64-{key}.log"
            say(f"debootstrap --foreign --arch=arm64 {SUITE} from {MIRROR}, then its second stage (log: {log})")
            try:
                times.update(make_rootfs(work, tarball, log))
            finally:
                for point in mounts_under(work):
                    run("umount", "--lazy", point, check=False)
                if mounts_under(work):
                    say(f"left {work}: still mounted there: {mounts_under(work)}")
                else:
                    shutil.rmtree(work, ignore_errors=True)
            run("docker", "image", "rm", name, check=False)
        if run("docker", "image", "inspect", name, check=False).returncode != 0:
            started = time.monotonic()
            load_image(tarball, name, key)
            times["docker load as linux/arm64"] = time.monotonic() - started
    return name, times


# --- the build ---------------------------------------------------------------------------


def stage_seconds(log: str) -> tuple[dict[str, float], dict[str, int]]:
    """Stage -> seconds summed over its steps that ran, and stage -> steps cached."""
    seconds: dict[str, float] = collections.defaultdict(float)
    cached: dict[str, int] = collections.defaultdict(int)
    # Each `docker build` numbers its steps from 1: a new build starts a new map.
    for chunk in re.split(r"^build\.sh: docker buildx build", log, flags=re.M):
        stage_of: dict[str, str] = {}
        for line in chunk.splitlines():
            if match := STEP.match(line):
                stage_of[match[1]] = match[2]
            elif (match := DONE.match(line)) and stage_of.get(match[1], "internal") not in ("internal", "auth"):
                seconds[stage_of[match[1]]] += float(match[2])
            elif (match := CACHED.match(line)) and stage_of.get(match[1], "internal") not in ("internal", "auth"):
                cached[stage_of[match[1]]] += 1
    return dict(seconds), dict(cached)


def build(base: str, jobs: str, log_path: Path) -> tuple[float, float]:
    """`./build.sh build --platform linux/arm64 --stand-ins all` under the tests' build
    lock; (seconds waited for the lock, seconds of the build)."""
    args = ["--platform", PLATFORM, "--stand-ins", "all", "--", "--progress=plain", "--build-arg", "CCACHE_DISABLE=1"]
    say(f"./build.sh build {' '.join(args)} (log: {log_path}; waits for the container tests' build lock)")
    began = time.monotonic()
    seconds = container_image.run_build(IMAGE, args, log_path, jobs=jobs, base=base)
    return time.monotonic() - began - seconds, seconds


# --- the run -------------------------------------------------------------------------------


def start(image: str, timeout: float = 600) -> tuple[float, str, dict[str, str]]:
    """`docker run --platform linux/arm64 IMAGE --ignore-warnings ARM64-COW-BUG` to
    valkey-cli's PONG inside it: (seconds, `uname -m` there, the answers of valkey-cli to
    PING and MODULE LIST, and of valkey-server --version)."""
    name = f"valkey-bundle-arm64-bench-{os.getpid()}"
    started = time.monotonic()
    run("docker", "run", "--detach", "--platform", PLATFORM, "--name", name, image, *SERVER_ARGS)
    try:
        while True:
            answer = run("docker", "exec", name, "valkey-cli", "PING", check=False).stdout.strip()
            if answer == "PONG":
                seconds = time.monotonic() - started
                break
            state = run("docker", "inspect", "--format", "{{.State.Status}}", name, check=False).stdout.strip()
            if state != "running" or time.monotonic() - started > timeout:
                logs = run("docker", "logs", "--tail", "20", name, check=False)
                raise RuntimeError(f"{image} did not answer PING ({state}):\n{logs.stdout}{logs.stderr}")
            time.sleep(0.5)
        machine = run("docker", "exec", name, "uname", "-m").stdout.strip()
        answers = {
            "PING": answer,
            "MODULE LIST": run("docker", "exec", name, "valkey-cli", "MODULE", "LIST").stdout.strip(),
            "valkey-server --version": run("docker", "exec", name, "valkey-server", "--version").stdout.strip(),
        }
        return seconds, machine, answers
    finally:
        run("docker", "rm", "--force", name, check=False)


# --- the registry ----------------------------------------------------------------------------


def build_sh(repository: str, *args: str) -> str:
    result = release_kit.build_sh(*args, image=repository, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"./build.sh {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result.stdout.strip()


def publish(host: str, amd64_image: str) -> dict[str, object]:
    """The release's steps for both platforms against the registry at HOST."""
    repository = f"{host}/valkey-bundle"
    out: dict[str, object] = {"repository": repository}
    times = {}
    digests = {}
    for platform, local in (("linux/amd64", amd64_image), (PLATFORM, f"{IMAGE}:local")):
        started = time.monotonic()
        digests[platform] = build_sh(repository, "push", "--platform", platform, "--by-digest", "--local-image", local)
        times[f"push --by-digest {platform}"] = time.monotonic() - started
    started = time.monotonic()
    reference = build_sh(
        repository, "manifest", "--platform", f"linux/amd64,{PLATFORM}", digests["linux/amd64"], digests[PLATFORM]
    )
    times["manifest (join)"] = time.monotonic() - started
    index = reference.split("@", 1)[1]
    listing = release_kit.manifest(repository, index)
    platforms = []
    for entry in listing.get("manifests", []):
        plat = entry.get("platform", {})
        if plat.get("os") != "unknown":  # attestations
            name = "/".join(p for p in (plat.get("os"), plat.get("architecture"), plat.get("variant")) if p)
            platforms.append(f"{name:16} {entry['digest']}")
    # `./build.sh smoke --platform linux/arm64` starts the image without arguments, which
    # Valkey's ARM64-COW-BUG check stops under emulation (SERVER_ARGS): the same steps here.
    started = time.monotonic()
    run("docker", "pull", "--quiet", "--platform", PLATFORM, reference)
    times[f"docker pull --platform {PLATFORM} of the list"] = time.monotonic() - started
    pong, machine, answers = start(reference)
    times[f"docker run --platform {PLATFORM} of the list -> PONG"] = pong
    out.update(digests=digests, reference=reference, platforms=platforms, times=times, machine=machine, answers=answers)
    return out


# --- main ------------------------------------------------------------------------------------


def module_list(raw: str) -> list[str]:
    """valkey-cli's MODULE LIST (name, NAME, ver, VER, path, PATH, args, ARGS per module)
    as one line per module."""
    lines = raw.splitlines()
    modules, fields = [], {}
    for key, value in zip(lines[::2], lines[1::2], strict=False):
        if key == "name" and fields:
            modules.append(fields)
            fields = {}
        fields[key] = value
    if fields:
        modules.append(fields)
    return [f"{m.get('name', '?')} (ver {m.get('ver', '?')}, {m.get('path', '?')})" for m in modules]


def print_answers(answers: dict[str, str]) -> None:
    for command, answer in answers.items():
        if command == "MODULE LIST":
            print(f"  {command}:", flush=True)
            for line in module_list(answer):
                print(f"    {line}", flush=True)
        else:
            print(f"  {command}: {answer}", flush=True)


def seconds_text(seconds: float) -> str:
    return f"{seconds:8.1f} s" + (f" ({seconds / 60:.1f} min)" if seconds >= 120 else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default="2", help="build.sh's JOBS (default: 2)")
    parser.add_argument(
        "--cold", action="store_true", help="debootstrap the arm64 tree again: a new base, every build step again"
    )
    parser.add_argument("--no-registry", action="store_true", help="skip the push, the list and its smoke")
    parser.add_argument("--log", type=Path, help="the build's log (default: <cache>/valkey-bundle-arm64-image.log)")
    args = parser.parse_args()
    problem = container_image.engine_problem()
    if problem:
        print(f"arm64: {problem}", file=sys.stderr)
        return 1
    if os.geteuid() != 0:
        print("arm64: needs root (binfmt_misc, debootstrap, chroot)", file=sys.stderr)
        return 1
    missing = [] if args.no_registry else [t for t in ("docker-registry", "skopeo") if shutil.which(t) is None]
    if missing:
        print(
            f"arm64: needs {', '.join(missing)}: run .ci/install-deps (as root), or pass --no-registry", file=sys.stderr
        )
        return 1
    engine = run("docker", "version", "--format", "{{.Server.Version}}").stdout.strip()
    log_path = args.log or testbed.cache_dir() / f"{IMAGE}-image.log"

    emulation = arrange_binfmt()
    print(f"arm64 under emulation on {os.cpu_count()} cores: {emulation}; Docker Engine {engine}", flush=True)

    started = time.monotonic()
    base, rootfs_times = base_image(args.cold)
    print(f"rootfs {base}:", flush=True)
    for step, seconds in rootfs_times.items():
        print(f"  {step:56}{seconds_text(seconds)}", flush=True)
    if rootfs_times:
        print(f"  {'total':56}{seconds_text(time.monotonic() - started)}", flush=True)
    else:
        print("  cached: the tree and the image were there (--cold makes them again)", flush=True)

    waited, build_seconds = build(base, args.jobs, log_path)
    seconds, cached = stage_seconds(log_path.read_text())
    labels = container_image.labels(f"{IMAGE}:local")
    kinds = ", ".join(
        f"{c} {labels.get(f'org.valkey-bundle.{c}.build', '?')}" for c in container_image.MODULE_COMPONENTS
    )
    print(
        f"build ./build.sh build --platform {PLATFORM} --stand-ins all, JOBS={args.jobs}"
        f", CCACHE_DISABLE=1 (Valkey {labels.get('org.valkey-bundle.valkey.version', '?')}; "
        f"{kinds}), per stage (the sum of its steps):",
        flush=True,
    )
    # Stages that only name another (FROM x AS y) have no step of their own.
    for stage in sorted(set(seconds) | set(cached), key=lambda s: (-seconds.get(s, 0.0), s)):
        if seconds.get(stage, 0.0) < 0.05 and not cached.get(stage):
            continue
        count = cached.get(stage, 0)
        note = f"   ({count} step{'s' if count > 1 else ''} cached)" if count else ""
        print(f"  {stage:56}{seconds_text(seconds.get(stage, 0.0))}{note}", flush=True)
    print(f"  {'wall time':56}{seconds_text(build_seconds)}", flush=True)
    print(f"  (log: {log_path})", flush=True)
    if waited >= 1:
        print(f"  (waited {waited:.0f} s for the build lock first, not counted)", flush=True)

    pong, machine, answers = start(f"{IMAGE}:local")
    print(f"run docker run --platform {PLATFORM} {IMAGE}:local {' '.join(SERVER_ARGS)}:", flush=True)
    print(f"  {'docker run -> PONG':56}{seconds_text(pong)}", flush=True)
    print(f"  uname -m: {machine}", flush=True)
    print_answers(answers)

    if args.no_registry:
        return 0
    amd64 = container_image.build_test_image()
    with tempfile.TemporaryDirectory(prefix="arm64-registry-") as tmp, release_kit.local_registry(Path(tmp)) as host:
        result = publish(host, amd64.name)
    print(f"registry {result['repository']} (amd64: {amd64.name}):", flush=True)
    for platform, digest in result["digests"].items():  # type: ignore[union-attr]
        print(f"  pushed {platform:12} {digest}", flush=True)
    print(f"  list {result['reference']}", flush=True)
    for line in result["platforms"]:  # type: ignore[union-attr]
        print(f"    {line}", flush=True)
    for step, step_seconds in result["times"].items():  # type: ignore[union-attr]
        print(f"  {step:56}{seconds_text(step_seconds)}", flush=True)
    print(f"  started from the list (uname -m: {result['machine']}):", flush=True)
    print_answers(result["answers"])  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
