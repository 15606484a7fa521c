"""What the real-module tier and its benchmarks share: the image under test and its
modules' builds, and nodes of that image started, restarted and replicated through the
entrypoint on a network of their own (tests/container/cluster_kit.py).

The image is the one named by VALKEY_BUNDLE_REAL_IMAGE (an image ./build.sh built
elsewhere, e.g. by the image job of the test workflow), else the real-module image built
here from what the cache holds (container_image.build_real_image(): every module whose
pinned inputs are cached is real, the others are the fixture module). Which module is
real comes from the image's labels, org.valkey-bundle.<module>.build.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from container import container_image
from container.cluster_kit import PORT, ClusterKit, Node

MODULES = ("search", "json", "bloom", "ldap")
READY_TIMEOUT = 60.0


@dataclasses.dataclass(frozen=True)
class RealImage:
    name: str
    valkey_version: str
    # module -> "real", "stand-in" (or whatever else the label says)
    builds: dict[str, str]

    def not_real(self, module: str) -> str | None:
        """Why ``module`` cannot be tested in this image ("not run: ..."), or None when it is real."""
        build = self.builds.get(module, "")
        if build == "real":
            return None
        label = f"org.valkey-bundle.{module}.build={build or '(unset)'}"
        what = "a stand-in" if build == "stand-in" else "not labelled as a real build"
        return f"not run: {module} is {what} (image {self.name}, label {label})"


def real_image(log_path: Path | None = None) -> RealImage:
    """The image under test: $VALKEY_BUNDLE_REAL_IMAGE, else built here (cached by BuildKit)."""
    name = os.environ.get("VALKEY_BUNDLE_REAL_IMAGE", "")
    if not name:
        name = container_image.build_real_image(log_path).name
    labels = container_image.labels(name)
    builds = {m: labels.get(f"org.valkey-bundle.{m}.build", "") for m in MODULES}
    return RealImage(name, labels.get("org.valkey-bundle.valkey.version", ""), builds)


def required_real() -> set[str]:
    """Modules that must be real (VALKEY_BUNDLE_REQUIRE_REAL: a list, or "all"): where the
    image is known to hold them (CI's image job), a stand-in there is a failure, not a skip."""
    words = os.environ.get("VALKEY_BUNDLE_REQUIRE_REAL", "").replace(",", " ").lower().split()
    return set(MODULES) if "all" in words else set(words)


def require_real(image: RealImage, module: str) -> None:
    """In a test: skip it, saying why, unless ``module`` is real in ``image`` (fail instead
    when the module is required to be real)."""
    import pytest

    reason = image.not_real(module)
    if reason is None:
        return
    if module in required_real():
        pytest.fail(f"{reason}; VALKEY_BUNDLE_REQUIRE_REAL says it must be real")
    pytest.skip(reason)


# ------------------------------------------------------------------ nodes


def start(kit: ClusterKit, node: Node, ip: str | None = None, timeout: float = READY_TIMEOUT) -> Node:
    """Run ``node`` (on ``ip``, else a new address) and wait until it answers PONG (its data loaded)."""
    node.run(ip or kit.next_address())
    kit.wait(f"{node.alias} to answer PING", lambda: node.call("PING") == "PONG", [node], timeout)
    return node


def restart(kit: ClusterKit, node: Node, graceful: bool = True) -> Node:
    """A new container for ``node`` on a new address, with the same volume: after a
    ``docker stop`` (the server shuts down cleanly), or after a kill (``graceful=False``:
    only what was on disk before counts)."""
    if graceful:
        node.stop()
    else:
        node.remove()
    return start(kit, node)


def replica(kit: ClusterKit, primary: Node, name: str) -> Node:
    """A node replicating ``primary``, started and in sync (the password of the kit is its masterauth)."""
    node = start(kit, kit.node(name, args=["--replicaof", primary.ip, str(PORT)]))

    def in_sync() -> bool:
        info = node.info("INFO", "replication")
        return info.get("master_link_status") == "up" and info.get("master_sync_in_progress") == "0"

    kit.wait(f"{name} in sync with {primary.alias}", in_sync, [primary, node])
    return node


def module_args(node: Node, module: str) -> list[str]:
    """The arguments ``module`` was loaded with on ``node`` (MODULE LIST)."""
    loaded = next(m for m in node.call("MODULE", "LIST") if m[1] == module)
    return dict(zip(loaded[::2], loaded[1::2], strict=True))["args"]
