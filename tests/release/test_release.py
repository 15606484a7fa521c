"""The release, rehearsed: the release workflow's build.sh commands in its order (push by
digest, smoke pulled back from the registry, manifest under every tag of the ref, sign,
verify every tag) against a real registry on 127.0.0.1, checked through the registry's
own HTTP API."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from . import release_kit
from .release_kit import ROOT, build_sh, rehearse

pytestmark = pytest.mark.release


def tags_for(ref: str) -> list[str]:
    result = subprocess.run(["./build.sh", "tags", "--ref", ref], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def version_ref() -> str:
    return f"refs/tags/v{tags_for('')[0]}"


def signature_tag(index: str) -> str:
    return index.replace(":", "-") + ".sig"


@pytest.fixture(scope="module")
def first_release(release_image, registry, cosign_keys):
    image = f"{registry}/valkey-bundle"
    assert release_kit.tags(image) == [], "a new repository"
    key, pub = cosign_keys
    return rehearse(image, release_image, version_ref(), key, pub)


def test_a_version_tag_is_pushed_smoked_joined_signed_and_verified(first_release, release_image):
    release = first_release
    image = release.image
    assert release.steps == release_kit.WORKFLOW_COMMANDS
    # Every tag the ref gets names the one joined image, and nothing else was tagged but
    # its signature.
    expected = tags_for(version_ref())
    assert release_kit.snapshot(image) == {
        **dict.fromkeys(expected, release.index),
        signature_tag(release.index): release_kit.digest(image, signature_tag(release.index)),
    }
    index = release_kit.manifest(image, release.index)
    assert [(m["digest"], m["platform"]["os"] + "/" + m["platform"]["architecture"]) for m in index["manifests"]] == [
        (release.platform_digest, release_kit.this_platform())
    ]
    # The platform image went up by digest, and smoke ran what it pulled from the registry.
    assert release_kit.digest(image, release.platform_digest) == release.platform_digest
    smoke = release.outputs["smoke"].stderr
    assert f"smoke: pulling {image}@{release.platform_digest}" in smoke
    assert f"smoke: {image}@{release.platform_digest} ok" in smoke
    pulled = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", f"{image}@{release.platform_digest}"],
        capture_output=True,
        text=True,
    )
    assert pulled.returncode == 0 and f"{image}@{release.platform_digest}" in pulled.stdout
    # The rehearsal pushed an image that is not the pins: said, and only because the
    # registry is on this machine.
    assert "rehearsal: " in release.outputs["push"].stderr and "is not the pins" in release.outputs["push"].stderr
    assert release.outputs["verify"].stdout.strip() == f"{image}@{release.index}"
    for tag in expected:
        assert f"verify: {image}:{tag} is {release.index}, signed" in release.outputs["verify"].stderr


def test_a_second_run_of_the_same_commit_changes_no_tag_and_no_digest(first_release, release_image, cosign_keys):
    before = release_kit.snapshot(first_release.image)
    key, pub = cosign_keys
    again = rehearse(first_release.image, release_image, version_ref(), key, pub)
    assert (again.platform_digest, again.index) == (first_release.platform_digest, first_release.index)
    assert release_kit.snapshot(first_release.image) == before
    assert "already carries a signature" in again.outputs["sign"].stderr


def test_a_wrong_key_fails_verify(first_release, tmp_path):
    _key, other = release_kit.key_pair(tmp_path)
    result = build_sh("verify", "--ref", version_ref(), "--key", str(other), image=first_release.image)
    assert result.returncode == 1 and result.stdout == ""
    assert "does not verify" in result.stderr


def test_release_notes_of_the_pushed_image(first_release):
    result = build_sh(
        "release-notes",
        "--ref",
        version_ref(),
        "--image",
        f"{first_release.image}@{first_release.index}",
        image=first_release.image,
    )
    assert result.returncode == 0, result.stderr
    notes = result.stdout
    assert f"Image tags: {', '.join(tags_for(version_ref()))}" in notes
    assert "| valkey | " in notes and "| search/grpc | " in notes
    assert f"## Modules in {first_release.image}@{first_release.index} ({release_kit.this_platform()})" in notes
    for module in ("search", "json", "bloom", "ldap"):
        assert any(line.startswith(f"- {module} ") and line.endswith(": stand-in") for line in notes.splitlines())


def test_main_gets_its_commit_and_edge_and_no_release_tag(release_image, registry, cosign_keys):
    image = f"{registry}/valkey-bundle-main"
    key, pub = cosign_keys
    release = rehearse(image, release_image, "refs/heads/main", key, pub)
    commit = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert release_kit.tags(image) == sorted([f"sha-{commit}", "edge", signature_tag(release.index)])
    for tag in tags_for(""):
        assert release_kit.digest(image, tag) is None, f"{tag} on a push to main"


@pytest.fixture
def broken_image(release_image):
    """The image with one module left out: its smoke fails."""
    name = f"valkey-bundle-release-broken-{uuid.uuid4().hex[:8]}:local"
    subprocess.run(
        ["docker", "build", "--quiet", "--tag", name, "-"],
        input=f"FROM {release_image}\nENV VALKEY_DISABLE_MODULES=ldap\n",
        capture_output=True,
        text=True,
        check=True,
    )
    yield name
    subprocess.run(["docker", "image", "rm", name], capture_output=True, check=False)


def test_a_failed_smoke_leaves_no_tag(broken_image, registry, cosign_keys):
    image = f"{registry}/valkey-bundle-broken"
    key, pub = cosign_keys
    with pytest.raises(release_kit.StepFailed) as failed:
        rehearse(image, broken_image, version_ref(), key, pub)
    assert failed.value.step == "smoke"
    assert "did not load: ldap" in failed.value.result.stderr
    # Pushed by digest, untagged: not published.
    assert release_kit.tags(image) == []


def test_push_never_sends_an_image_that_is_not_the_pins_elsewhere(release_image):
    result = build_sh(
        "push",
        "--platform",
        release_kit.this_platform(),
        "--by-digest",
        "--local-image",
        release_image,
        image="ghcr.io/example/valkey-bundle",
    )
    assert result.returncode == 1 and result.stdout == ""
    assert "is not what the pins describe" in result.stderr and "never pushed to ghcr.io" in result.stderr
    assert "skopeo copy" not in result.stderr
    unsigned = build_sh("sign", "--key", "cosign.key", "ghcr.io/example/valkey-bundle:latest", image="x")
    assert unsigned.returncode == 1 and "sign by digest" in unsigned.stderr
