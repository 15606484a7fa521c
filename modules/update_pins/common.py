"""What the parts of modules/update-pins share: the error they report, and what the URL of
a GitHub release archive looks like."""

from __future__ import annotations

import re

GITHUB_ARCHIVE = re.compile(r"^(https://github\.com/[^/]+/[^/]+)/archive/refs/tags/")


class Failure(Exception):
    """An error to report as one line: update-pins: error: ..."""
