"""Upstream's official list of release checksums (valkey-io/valkey-hashes' README): the
sha256 it gives a tarball, and the file name upstream gives that tarball."""

from __future__ import annotations

import re
from dataclasses import dataclass

from update_pins.common import GITHUB_ARCHIVE, Failure

HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class HashLine:
    number: int
    file: str
    algo: str
    digest: str
    url: str


class HashList:
    """Upstream's official list of release checksums, as valkey-io/valkey-hashes keeps it:
    lines `hash <file> <algo> <digest> <url>`; comments and anything else are skipped."""

    def __init__(self, text: str, where: str):
        self.where = where
        self.lines = [
            HashLine(number, fields[1], fields[2].lower(), fields[3].lower(), fields[4])
            for number, fields in enumerate((raw.split() for raw in text.splitlines()), 1)
            if len(fields) == 5 and fields[0] == "hash"
        ]

    def sha256(self, url: str, file: str) -> tuple[str | None, str]:
        """The sha256 the list gives for the tarball at URL, which it must call FILE, and a
        note; None when it lists no such tarball. A line for URL under another file name, or
        without a sha256, is refused. A tarball listed more than once (upstream re-made it):
        the last line counts, as upstream appends; the note says so."""
        lines = [line for line in self.lines if line.url == url]
        if not lines:
            elsewhere = [line for line in self.lines if line.file == file]
            if elsewhere:
                last = elsewhere[-1]
                return None, f"{self.where}:{last.number} lists {file} at {last.url}, not at {url}: not taken"
            return None, f"not in {self.where}"
        last = lines[-1]
        if last.file != file:
            raise Failure(f"{self.where}:{last.number}: the line for {url} names {last.file}, not {file}: not taken")
        if last.algo != "sha256" or not HEX64.match(last.digest) or set(last.digest) == {"0"}:
            raise Failure(f"{self.where}:{last.number}: no sha256 of {file} ({last.algo} {last.digest})")
        earlier = sorted({line.digest for line in lines[:-1]} - {last.digest})
        if earlier:
            return last.digest, (
                f"{self.where} lists {file} {len(lines)} times: line {last.number} counts "
                f"(earlier: {', '.join(earlier)})"
            )
        return last.digest, ""


def tarball_file_name(url: str, version: str) -> str:
    """What upstream calls the tarball at URL: for a GitHub archive of a tag,
    <repository>-<version>.tar.gz (the name it downloads as, and the directory it
    unpacks to); else the URL's last part."""
    match = GITHUB_ARCHIVE.match(url)
    if match:
        suffix = ".zip" if url.endswith(".zip") else ".tar.gz"
        return f"{match[1].rsplit('/', 1)[1]}-{version}{suffix}"
    return url.rsplit("/", 1)[-1]
