"""The summary of a run (Markdown, for the pull request): each component's pin and what it
is now, what changed, the comments to review and the problems."""

from __future__ import annotations

from update_pins.check import Result


def summary_text(results: list[Result], changed: list[str], review: list[str], problems: list[str]) -> str:
    out = ["## update-pins", "", "| component | pinned | now | |", "|---|---|---|---|"]
    for r in results:
        out.append(f"| {r.component} | {r.pinned} | {r.now} | {r.error or r.note} |")
    out.append("")
    failed = [r.component for r in results if r.error]
    if failed:
        out.append(
            f"Not checked: {', '.join(failed)} (see Problems below); "
            + ("the updates of the other components are applied." if changed else "nothing else changed.")
        )
        out.append("")
    if changed:
        out.append("Changed: " + ", ".join(f"`{p}`" for p in changed))
        out.append("")
        out.append(
            "Before merging: read the upstream release notes for build changes (modules/README.md, "
            '"How to bump a version", step 4) and update the reasons in modules/README.md.'
        )
    else:
        out.append("No changes.")
    if review:
        out += ["", "Comments that may need an update:", ""] + [f"- `{line}`" for line in review]
    if problems:
        out += ["", "Problems:", ""] + [f"- {line}" for line in problems]
    return "\n".join(out) + "\n"
