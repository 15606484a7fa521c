"""Where tags, tarballs and official checksums come from: `git ls-remote`, downloads and the
hash list upstream publishes, or the data recorded in --from-json and a copy of the hash
list (--hashes)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from update_pins.common import Failure
from update_pins.hashes import HashList, tarball_file_name
from update_pins.module_env import EnvFile

TIMEOUT = 120


def ls_remote(url: str) -> dict[str, str]:
    """Tag name -> commit, from `git ls-remote --tags URL` (annotated tags peeled)."""
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="true", LC_ALL="C")
    try:
        result = subprocess.run(
            ["git", "-c", "http.lowSpeedLimit=1000", "-c", "http.lowSpeedTime=30", "ls-remote", "--tags", "--", url],
            capture_output=True,
            text=True,
            env=env,
            timeout=TIMEOUT,
            check=False,
        )
    except FileNotFoundError as error:
        raise Failure("git is needed to list upstream tags (apt-get install git)") from error
    except subprocess.TimeoutExpired as error:
        raise Failure(f"cannot list the tags of {url}: no answer within {TIMEOUT} s (offline?)") from error
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["git ls-remote failed"])[-1]
        raise Failure(
            f"cannot list the tags of {url}: {last} (offline? upstream is on GitHub; "
            "to work without it, pass recorded tags with --from-json FILE)"
        )
    tags: dict[str, str] = {}
    peeled: dict[str, str] = {}
    for line in result.stdout.splitlines():
        commit, _, ref = line.partition("\t")
        if not ref.startswith("refs/tags/"):
            continue
        name = ref.removeprefix("refs/tags/")
        if name.endswith("^{}"):
            peeled[name[:-3]] = commit
        else:
            tags[name] = commit
    tags.update(peeled)
    return tags


def sha256_of_url(url: str) -> str:
    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "valkey-bundle-update-pins"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise Failure(f"cannot download {url}: {reason} (offline? GitHub must be reachable)") from error
    return digest.hexdigest()


def text_of_url(url: str) -> str:
    request = urllib.request.Request(url, headers={"User-Agent": "valkey-bundle-update-pins"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise Failure(f"cannot read {url}: {reason}") from error


class Upstream:
    """Where tags, tarballs and official checksums come from: the network, or recorded
    data (--from-json) and a copy of the hash list (--hashes)."""

    def __init__(self, recorded: dict | None = None, hashes: HashList | None = None):
        self.recorded = recorded
        self.hashes = hashes
        self._lists: dict[str, HashList | str] = {}

    def covers(self, component: str) -> bool:
        return self.recorded is None or component in self.recorded

    def tags(self, component: str, repository: str) -> dict[str, str | None]:
        if self.recorded is None:
            return dict(ls_remote(repository))
        data = self.recorded[component]
        if "remote" in data:
            return dict(ls_remote(data["remote"]))
        tags = data.get("tags")
        if isinstance(tags, list):
            return dict.fromkeys(tags)
        if isinstance(tags, dict):
            return dict(tags)
        raise Failure(f"--from-json: {component} needs 'tags' (a list or an object) or 'remote'")

    def hash_list(self, component: str, env: EnvFile) -> tuple[HashList | None, str]:
        """The component's official hash list (SOURCE_HASHES_URL), or None and why not
        ("" when this run has none to read: none upstream, or none in --from-json)."""
        official = env.get("SOURCE_HASHES_URL")
        if not official:
            return None, ""
        if self.hashes is not None:
            return self.hashes, ""
        where = official if self.recorded is None else self.recorded[component].get("hashes_url", "")
        if not where:
            return None, ""
        if where not in self._lists:
            try:
                self._lists[where] = HashList(text_of_url(where), where)
            except Failure as error:
                self._lists[where] = f"the official hash list: {error}"
        found = self._lists[where]
        return (found, "") if isinstance(found, HashList) else (None, found)

    def _download(self, component: str, url: str, version: str) -> tuple[str | None, str]:
        """The sha256 of the tarball as downloaded, or None and why not."""
        if self.recorded is not None:
            template = self.recorded[component].get("tarball_url")
            if not template:
                return None, f"--from-json: {component} has no 'tarball_url' to download from"
            url = template.replace("{version}", version)
        try:
            return sha256_of_url(url), ""
        except Failure as error:
            return None, str(error)

    def tarball_sha256(self, component: str, env: EnvFile, url: str, version: str) -> tuple[str, str]:
        """The sha256 to pin for the tarball at URL, and where it comes from. The official
        hash list is the source; the download is the cross-check (they must agree) and the
        fallback for a tarball the list does not have, or a list that cannot be read."""
        hashes, unread = self.hash_list(component, env)
        official, note = hashes.sha256(url, tarball_file_name(url, version)) if hashes else (None, unread)
        downloaded, failed = self._download(component, url, version)
        if official and downloaded and official != downloaded:
            raise Failure(
                f"{component}: {hashes.where} gives sha256 {official} for {url}, the download has {downloaded}: "
                "not pinned; find out which is wrong before changing the pin"
            )
        notes = [note] if note else []
        if official:
            how = "from the official hash list" + (", as downloaded" if downloaded else "; not downloaded to compare")
            return official, "; ".join([how, *notes])
        if downloaded:
            return downloaded, "; ".join(["of the download", *notes])
        if not hashes and not unread and self.recorded is not None:
            notes.append("no 'hashes_url' in --from-json, no --hashes FILE")
        raise Failure(f"{component}: no sha256 for {url}: " + "; ".join([*notes, failed]))

    def check_pin(self, component: str, env: EnvFile, url: str, version: str, pin: str) -> str:
        """A verified tarball pin against the official hash list: a note, or an error when
        the list gives another sha256 (upstream re-made the tarball, or the list is wrong)."""
        hashes, unread = self.hash_list(component, env)
        if not hashes:
            return unread
        official, note = hashes.sha256(url, tarball_file_name(url, version))
        if official is None:
            return note
        if official != pin:
            raise Failure(
                f"{component}: {hashes.where} gives sha256 {official} for {url}, pinned {pin}: upstream "
                "re-made the tarball or the list is wrong; find out why before changing the pin"
            )
        return "; ".join(["sha256 as in the official hash list", *([note] if note else [])])


def upstream_from(from_json: str | None, hashes_file: str | None) -> Upstream:
    """Upstream for this run: the network, or the data recorded in FROM_JSON (--from-json);
    the official hash list from HASHES_FILE (--hashes) when given."""
    recorded = None
    if from_json:
        try:
            recorded = json.loads(Path(from_json).read_text())
        except (OSError, ValueError) as error:
            raise Failure(f"--from-json {from_json}: {error}") from error
        if not isinstance(recorded, dict):
            raise Failure(f"--from-json {from_json}: expected an object of components")
    hashes = None
    if hashes_file:
        try:
            hashes = HashList(Path(hashes_file).read_text(), hashes_file)
        except (OSError, UnicodeDecodeError) as error:
            raise Failure(f"--hashes {hashes_file}: {error}") from error
        if not hashes.lines:
            raise Failure(f"--hashes {hashes_file}: no 'hash <file> <algo> <digest> <url>' line")
    return Upstream(recorded, hashes)
