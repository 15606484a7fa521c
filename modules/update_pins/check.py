"""One component against upstream: the newest release on its pinned X.Y line that has a pin
to be had, or the pin checked as it is; its dependencies; what to review. check_components
does it for every component."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from update_pins.common import GITHUB_ARCHIVE, Failure
from update_pins.module_env import EnvFile, components_in
from update_pins.upstream import Upstream

RELEASE_TAG = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
HEX40 = re.compile(r"^[0-9a-f]{40}$")


Version = tuple[int, int, int]


def parse_version(text: str) -> Version | None:
    match = RELEASE_TAG.match(text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def show(version: Version) -> str:
    return ".".join(map(str, version))


@dataclass
class Result:
    component: str
    pinned: str
    now: str
    note: str
    changes: dict[str, str] = field(default_factory=dict)
    review: list[str] = field(default_factory=list)
    error: str = ""
    # Applied all the same, but to be looked at (exit status 3): a newer release skipped.
    problems: list[str] = field(default_factory=list)


def tarball_url_for(url: str, old: str, new: str) -> str:
    if old not in url:
        raise Failure(f"SOURCE_URL {url} does not contain the version {old}: cannot derive the URL of {new}")
    return url.replace(old, new)


def repository_of(component: str, env: EnvFile) -> str:
    url = env.get("SOURCE_URL")
    if url.endswith(".git"):
        return url
    match = GITHUB_ARCHIVE.match(url)
    if match:
        return match[1] + ".git"
    raise Failure(f"{component}: cannot tell the git repository of SOURCE_URL {url}")


def check_component(component: str, env: EnvFile, upstream: Upstream) -> Result:
    current_text = env.get("VERSION")
    current = parse_version(current_text)
    if current is None:
        raise Failure(f"{env.path}: VERSION {current_text!r} is not X.Y.Z")
    url = env.get("SOURCE_URL")
    is_git = url.endswith(".git") or env.has("SOURCE_COMMIT")
    verified = env.get("PIN_VERIFIED") == "yes"
    pin_name = "SOURCE_COMMIT" if is_git else "SOURCE_SHA256"
    pin = env.get(pin_name)
    result = Result(component, current_text, current_text, "")

    tags = upstream.tags(component, repository_of(component, env))
    releases: dict[Version, tuple[str, str | None]] = {}
    for name, commit in tags.items():
        version = parse_version(name)
        # X.Y.Z wins over vX.Y.Z if both exist; the VERSION written is X.Y.Z either way.
        if version and (version not in releases or not name.startswith("v")):
            releases[version] = (name, commit)
    line = current[:2]
    on_line = sorted(v for v in releases if v[:2] == line and v > current)
    newer_lines = sorted(v for v in releases if v[:2] > line)
    notes = []
    if newer_lines:
        notes.append(
            f"newer line available: {show(newer_lines[-1])} (not applied: a new X.Y is a bump by hand, "
            "see modules/README.md)"
        )

    # A tarball: the newest release on the line whose sha256 can be had. A newer one
    # without is named as a problem (exit status 3), never guessed; with none to pin,
    # the current pin is checked as usual.
    found: tuple[Version, str, str, str] | None = None
    skipped: list[str] = []
    if on_line and not is_git:
        for candidate in reversed(on_line):
            new_url = tarball_url_for(url, current_text, show(candidate))
            try:
                found = (candidate, new_url, *upstream.tarball_sha256(component, env, new_url, show(candidate)))
                break
            except Failure as error:
                reason = str(error).removeprefix(f"{component}: ")
                skipped.append(f"{component}: {show(candidate)} not pinned: {reason}")

    if on_line and (is_git or found):
        target = on_line[-1]
        target_text = show(target)
        changes = {"VERSION": target_text}
        if is_git:
            commit = releases[target][1]
            if not commit or not HEX40.match(commit):
                raise Failure(f"{component}: no commit known for tag {releases[target][0]}")
            changes["SOURCE_COMMIT"] = commit
            notes.insert(0, f"{current_text} -> {target_text}, commit {commit}")
        else:
            target, new_url, sha, how = found
            target_text = show(target)
            changes = {"VERSION": target_text, "SOURCE_URL": new_url, "SOURCE_SHA256": sha}
            notes.insert(0, f"{current_text} -> {target_text}, sha256 {sha} ({how})")
        changes["PIN_VERIFIED"] = "yes"
        result.now = target_text
        result.changes = changes
        # Comments that speak of the old release, or of the new one as still to come.
        result.review = env.comments_naming(current_text) + env.comments_naming(target_text)
    elif not verified or not pin:
        if current not in releases:
            raise Failure(f"{component}: upstream has no tag {current_text} (or v{current_text}) to verify the pin")
        if is_git:
            commit = releases[current][1]
            if not commit or not HEX40.match(commit):
                raise Failure(f"{component}: no commit known for tag {releases[current][0]}")
            if pin and pin != commit:
                raise Failure(f"{component}: tag {releases[current][0]} is commit {commit}, the pin says {pin}")
            result.changes = {"SOURCE_COMMIT": commit, "PIN_VERIFIED": "yes"}
            notes.insert(0, f"pin verified: commit {commit}")
        else:
            sha, how = upstream.tarball_sha256(component, env, url, current_text)
            if pin and pin != sha:
                raise Failure(f"{component}: {url} has sha256 {sha} ({how}), the pin says {pin}")
            result.changes = {"SOURCE_SHA256": sha, "PIN_VERIFIED": "yes"}
            notes.insert(0, f"pin verified: sha256 {sha} ({how})")
        result.review = env.comments_naming("not known") + env.comments_naming("unknown")
    else:
        if is_git and current in releases:
            commit = releases[current][1]
            if commit and commit != pin:
                raise Failure(
                    f"{component}: tag {releases[current][0]} now points to {commit}, pinned {pin}: upstream "
                    "moved a tag; find out why before changing the pin"
                )
        if not is_git:
            checked = upstream.check_pin(component, env, url, current_text, pin)
            if checked:
                notes.insert(0, checked)
        notes.insert(0, "kept: no newer release with a sha256" if skipped else "up to date")
    if skipped:
        newer = ", ".join(problem.split(" ", 2)[1] for problem in skipped)
        notes.insert(1, f"newer, not pinned: {newer} (no sha256, below)")
        result.problems = skipped
    result.note = "; ".join(notes)
    return result


def check_dependencies(component: str, env: EnvFile, upstream: Upstream, result: Result) -> None:
    """Add to RESULT what the component's dependencies need, for its current or bumped VERSION."""
    bumped = result.now if result.now != result.pinned else None
    notes = [result.note] if result.note else []
    for dep in env.get("DEPS").split():
        name, prefix = f"{component}/{dep}", dep.upper().replace("-", "_") + "_"
        if env.get(prefix + "KIND") == "crates":
            if not bumped:
                continue
            if env.get(prefix + "LOCKFILE") == "upstream":
                result.changes[prefix + "LOCKFILE_SHA256"] = ""
                result.changes[prefix + "PIN_VERIFIED"] = "no"
                notes.append(f"{name}: {bumped}'s Cargo.lock to pin (./build.sh fetch prints its sha256)")
            else:
                result.review.append(f"{name}: {env.get(prefix + 'LOCKFILE')} may need resolving again for {bumped}")
            continue
        verified = env.get(prefix + "PIN_VERIFIED") == "yes" and env.get(prefix + "SOURCE_COMMIT")
        if verified and bumped:
            result.review.append(f"{name}: check that {component} {bumped} still clones it at this pin")
        tag = env.get(prefix + "SOURCE_TAG")
        if not tag:
            # Followed on a branch upstream: the commit is the pin, there is nothing to ask.
            if not verified:
                raise Failure(f"{name}: the pin is not verified and no {prefix}SOURCE_TAG names what to resolve")
            continue
        if not upstream.covers(name):
            notes.append(f"{name}: not checked (not in --from-json)")
            continue
        commit = upstream.tags(name, env.get(prefix + "SOURCE_URL")).get(tag)
        if not commit or not HEX40.match(commit):
            raise Failure(f"{name}: upstream has no tag {tag} to verify the pin")
        pinned = env.get(prefix + "SOURCE_COMMIT")
        if pinned and pinned != commit:
            raise Failure(
                f"{name}: tag {tag} now points to {commit}, pinned {pinned}: upstream moved a tag; "
                "find out why before changing the pin"
            )
        if not verified:
            result.changes[prefix + "SOURCE_COMMIT"] = commit
            result.changes[prefix + "PIN_VERIFIED"] = "yes"
            result.review.append(f"modules/README.md: the dependency table's row of {name}")
            notes.append(f"{name}: pin verified: commit {commit}")
    result.note = "; ".join(notes)


def check_components(
    modules: Path, wanted: list[str], upstream: Upstream
) -> tuple[list[Result], dict[str, EnvFile], list[str]]:
    """Every component (those WANTED; all when empty) checked, and what resolved applied to
    its module.env as read (nothing is written yet): the results in order, the EnvFile of
    each component checked, and the problems (a component that could not be checked, a
    newer release not pinned)."""
    results: list[Result] = []
    envs: dict[str, EnvFile] = {}
    problems: list[str] = []
    for component in components_in(modules, wanted):
        env = EnvFile(modules / component / "module.env")
        if not upstream.covers(component):
            results.append(
                Result(component, env.get("VERSION"), env.get("VERSION"), "not checked (not in --from-json)")
            )
            continue
        try:
            result = check_component(component, env, upstream)
            check_dependencies(component, env, upstream, result)
        except Failure as error:
            problems.append(str(error))
            results.append(Result(component, env.get("VERSION"), env.get("VERSION"), "", error="**error** (below)"))
            continue
        for name, value in result.changes.items():
            env.set(name, value)
        envs[component] = env
        results.append(result)
        problems += result.problems
    return results, envs, problems
