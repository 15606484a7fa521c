"""modules/<component>/module.env: which components there are, and each file read with its
values replaced in place (every comment and the layout kept)."""

from __future__ import annotations

import re
from pathlib import Path

from update_pins.common import Failure

ORDER = ["valkey", "search", "json", "bloom", "ldap"]
ASSIGNMENT = re.compile(r'^([A-Z][A-Z0-9_]*)=("?)([^"]*)("?)\s*$')


class EnvFile:
    """modules/<component>/module.env as lines; values are replaced in place."""

    def __init__(self, path: Path):
        self.path = path
        self.original = path.read_text()
        self.lines = self.original.splitlines(keepends=True)

    def _find(self, name: str) -> int | None:
        for index, line in enumerate(self.lines):
            match = ASSIGNMENT.match(line.rstrip("\n"))
            if match and match[1] == name:
                return index
        return None

    def has(self, name: str) -> bool:
        return self._find(name) is not None

    def get(self, name: str) -> str:
        index = self._find(name)
        if index is None:
            return ""
        return ASSIGNMENT.match(self.lines[index].rstrip("\n"))[3]

    def set(self, name: str, value: str) -> None:
        if re.search(r'["$`\\\s]', value):
            raise Failure(f"{self.path}: refusing to write {name}={value!r} (no quotes, $, backslashes, spaces)")
        index = self._find(name)
        if index is None:
            raise Failure(f"{self.path}: no line {name}=... to rewrite")
        match = ASSIGNMENT.match(self.lines[index].rstrip("\n"))
        quote = match[2]
        ending = "\n" if self.lines[index].endswith("\n") else ""
        self.lines[index] = f"{name}={quote}{value}{quote}{ending}"

    def text(self) -> str:
        return "".join(self.lines)

    def comments_naming(self, needle: str) -> list[str]:
        return [
            f"{self.path.parent.name}/module.env:{number}: {line.strip()}"
            for number, line in enumerate(self.lines, 1)
            if line.lstrip().startswith("#") and needle in line
        ]


def components_in(modules: Path, wanted: list[str]) -> list[str]:
    found = sorted(
        (p.parent.name for p in modules.glob("*/module.env")),
        key=lambda name: (ORDER.index(name) if name in ORDER else len(ORDER), name),
    )
    for name in wanted:
        if name not in found:
            raise Failure(f"unknown component {name!r} (known: {', '.join(found)})")
    return [name for name in found if not wanted or name in wanted]
