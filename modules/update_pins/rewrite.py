"""The files a new pin is written to: module.env, the Dockerfile's ARG defaults, the
component's row in modules/README.md and Valkey's release in the top-level README.md;
written atomically, or shown as the diff of a dry run."""

from __future__ import annotations

import difflib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from update_pins.check import Result
from update_pins.module_env import EnvFile


def rewrite_dockerfile(text: str, component: str, old: str, new: str) -> tuple[str, list[str]]:
    names = [f"{component.upper()}_VERSION"] + (["IMAGE_VERSION"] if component == "valkey" else [])
    missing = []
    for name in names:
        pattern = re.compile(rf"^ARG {name}={re.escape(old)}$", re.M)
        text, count = pattern.subn(f"ARG {name}={new}", text)
        if not count:
            missing.append(f"Dockerfile: no line 'ARG {name}={old}' to update")
    return text, missing


# A release named in prose: 9.0.4, v9.0.4 (not part of 10.9.0.4, 9.0.4.1 or 9.0.40).
MENTION = re.compile(r"(?<![\w.])(v?)(\d+\.\d+\.\d+)(?![\w]|\.\d)")
# ... unless it is a minimum (">= 9.0.1", "≥ 9.0.1", "9.0.1 or newer"): that stays.
MINIMUM_BEFORE = re.compile(r"(?:>=|≥)\s*$")
MINIMUM_AFTER = re.compile(r"^\s+or (?:newer|later)\b")


def rewrite_mentions(text: str, old: str, new: str) -> str:
    """The top-level README names the pinned Valkey in its examples and image tags
    (valkey-bundle:9.0.4, v9.0.4): every such mention of OLD becomes NEW."""

    def replace(match: re.Match) -> str:
        before, after = text[max(0, match.start() - 4) : match.start()], text[match.end() : match.end() + 12]
        if match[2] != old or MINIMUM_BEFORE.search(before) or MINIMUM_AFTER.match(after):
            return match[0]
        return match[1] + new

    return MENTION.sub(replace, text)


def rewrite_readme_row(text: str, component: str, env: EnvFile) -> tuple[str, list[str]]:
    """The component's row of the pins table: | component | version | source | pin | verified |."""
    row = re.compile(
        rf"^\|[ \t]*{re.escape(component)}[ \t]*\|([^|\n]*)\|([^|\n]*)\|([^|\n]*)\|([^|\n]*)\|[ \t]*$", re.M
    )
    match = row.search(text)
    if not match:
        return text, [f"modules/README.md: no table row for {component} to update"]
    sha = env.get("SOURCE_SHA256")
    pin = f"sha256 `{sha}`" if sha else f"commit `{env.get('SOURCE_COMMIT')}`"
    verified = "yes" if env.get("PIN_VERIFIED") == "yes" else "**no**"
    new_row = f"| {component} | {env.get('VERSION')} |{match[2]}| {pin} | {verified} |"
    return text[: match.start()] + new_row + text[match.end() :], []


def rewrite_files(
    root: Path, results: list[Result], envs: dict[str, EnvFile]
) -> tuple[dict[Path, str], list[str], list[str]]:
    """The new contents of every file that changes (each changed module.env, the
    Dockerfile, modules/README.md, README.md), the comments to review, and the problems (a
    line to update that is missing)."""
    new_texts: dict[Path, str] = {}
    dockerfile = root / "Dockerfile"
    readme = root / "modules" / "README.md"
    guide = root / "README.md"
    docker_text = dockerfile.read_text() if dockerfile.is_file() else None
    readme_text = readme.read_text() if readme.is_file() else None
    guide_text = guide.read_text() if guide.is_file() else None
    review: list[str] = []
    problems: list[str] = []
    for result in results:
        if not result.changes:
            continue
        env = envs[result.component]
        new_texts[env.path] = env.text()
        review += result.review
        if result.component == "valkey" and result.now != result.pinned:
            # The modules' comments name the Valkey they were pinned against.
            for other in envs.values():
                if other is not env:
                    review += other.comments_naming(result.pinned)
        if docker_text is not None and result.now != result.pinned:
            docker_text, missing = rewrite_dockerfile(docker_text, result.component, result.pinned, result.now)
            problems += missing
        if guide_text is not None and result.component == "valkey" and result.now != result.pinned:
            guide_text = rewrite_mentions(guide_text, result.pinned, result.now)
        if readme_text is not None:
            readme_text, missing = rewrite_readme_row(readme_text, result.component, env)
            problems += missing
    if docker_text is not None and docker_text != dockerfile.read_text():
        new_texts[dockerfile] = docker_text
    if readme_text is not None and readme_text != readme.read_text():
        new_texts[readme] = readme_text
    if guide_text is not None and guide_text != guide.read_text():
        new_texts[guide] = guide_text
    return new_texts, review, problems


def diff_lines(root: Path, new_texts: dict[Path, str]) -> Iterator[str]:
    """What a dry run prints: the unified diff of every file that would change."""
    for path, text in new_texts.items():
        name = str(path.relative_to(root))
        yield from difflib.unified_diff(
            path.read_text().splitlines(keepends=True), text.splitlines(keepends=True), f"a/{name}", f"b/{name}"
        )


def write_atomic(path: Path, text: str) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(temp, path.stat().st_mode & 0o7777)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_files(new_texts: dict[Path, str]) -> None:
    for path, text in new_texts.items():
        write_atomic(path, text)
