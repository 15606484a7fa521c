"""Cut out the run of NUL bytes that a full disk leaves in an append-only file.

When the disk fills, the server writes part of its AOF buffer, cuts that partial write off
again (ftruncate) and retries once there is room. An incremental AOF file that the server
opened after an AOF rewrite or a replica's full sync is not in append mode, so the retry
lands where the partial write had ended: the file gets a hole of NUL bytes at a command
boundary, the writes after it are intact, and the server refuses the file at its next start
("Bad file format reading the append only file"), at every restart after that too.
`valkey-check-aof --fix` would cut the file at the hole, losing every write made after the
disk was freed.

Before the server starts, every incremental file of each AOF manifest under the data
directory is searched for such a run (NUL bytes between the end of one command and the
`*` of the next); only where the server's own checker, valkey-check-aof, finds the file
broken at exactly that offset is the run cut out, into a new file renamed over the old one.
A file without that pattern costs one scan; nothing else is touched.
"""

import os
import re
import subprocess

from .errors import info, warn

COMMAND = re.compile(rb"\*[0-9]+\r\n\$")  # how a command starts in the AOF
CHUNK = 1 << 20
MAX_HOLES = 64  # a full disk that came and went more often than this is left to the operator
CHECK_TIMEOUT = 600


def incremental_files(data_dir):
    """Paths of the incremental (``type i``) files named by the AOF manifests in ``data_dir``'s
    subdirectories (appendonlydir, or whatever appenddirname says)."""
    found = []
    try:
        entries = sorted(os.scandir(data_dir), key=lambda e: e.name)
    except OSError:
        return found
    for entry in entries:
        if not entry.is_dir(follow_symlinks=False):
            continue
        try:
            manifests = sorted(e.path for e in os.scandir(entry.path) if e.name.endswith(".manifest"))
        except OSError:
            continue
        for manifest in manifests:
            try:
                with open(manifest, "rb") as f:
                    lines = f.read().decode("utf-8", "replace").splitlines()
            except OSError:
                continue
            for line in lines:
                words = line.split()
                fields = dict(zip(words[::2], words[1::2], strict=False))
                if fields.get("type") == "i" and fields.get("file"):
                    found.append(os.path.join(entry.path, fields["file"]))
    return found


def holes(path):
    """{offset: length} of the candidate runs of NUL bytes in ``path``: at the start of the file
    or right after a CRLF, and followed by the start of a command."""
    starts = []
    with open(path, "rb") as f:
        offset, tail = 0, b""
        while chunk := f.read(CHUNK):
            data, base = tail + chunk, offset - len(tail)
            if base == 0 and data[:1] == b"\0":
                starts.append(0)
            at = data.find(b"\r\n\0")
            while at != -1:
                starts.append(base + at + 2)
                at = data.find(b"\r\n\0", at + 1)
            offset += len(chunk)
            tail = data[-2:]
        found = {}
        for start in starts:
            f.seek(start)
            length = 0
            while block := f.read(CHUNK):
                run = len(block) - len(block.lstrip(b"\0"))
                length += run
                if run < len(block):
                    break
            f.seek(start + length)
            if COMMAND.match(f.read(32)):
                found[start] = length
    return found


def first_error(checker, path):
    """The offset where valkey-check-aof finds ``path`` broken, or None when it is valid."""
    result = subprocess.run(
        [checker, path], capture_output=True, text=True, timeout=CHECK_TIMEOUT, check=False, stdin=subprocess.DEVNULL
    )
    output = result.stdout + result.stderr
    if " is valid" in output:
        return None
    found = re.search(r"ok_up_to=(\d+)", output)
    if not found:
        raise OSError(f"valkey-check-aof said: {output.strip()[-200:]}")
    return int(found.group(1))


def cut(path, offset, length):
    """Write ``path`` without the bytes [offset, offset + length) to a new file and rename it over."""
    temporary = f"{path}.hole-{os.getpid()}"
    st = os.stat(path)
    try:
        with open(path, "rb") as source, open(temporary, "wb") as target:
            os.fchmod(target.fileno(), st.st_mode & 0o7777)
            remaining = offset
            while remaining:
                chunk = source.read(min(remaining, 1 << 20))
                if not chunk:
                    raise OSError(f"{path} shrank while being repaired")
                target.write(chunk)
                remaining -= len(chunk)
            source.seek(offset + length)
            while chunk := source.read(1 << 20):
                target.write(chunk)
            target.flush()
            os.fsync(target.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    directory = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def repair_file(path, checker):
    """Cut out each hole valkey-check-aof confirms, first to last; returns how many were cut."""
    repaired = 0
    for _ in range(MAX_HOLES):
        candidates = holes(path)
        if not candidates:
            break
        offset = first_error(checker, path)
        if offset is None or offset not in candidates:
            break  # NUL bytes inside values, or a fault of another kind: not ours to touch
        cut(path, offset, candidates[offset])
        repaired += 1
        info(
            f"{path}: cut out {candidates[offset]} NUL bytes at offset {offset} that a write on a full "
            "disk left there (the server would refuse the file); the writes after them are kept"
        )
    return repaired


def repair(data_dir, checker):
    """Repair the AOF files under ``data_dir`` (the server's ``dir``); ``checker`` is the path of
    valkey-check-aof, or None when there is none (nothing is repaired then)."""
    for path in incremental_files(data_dir):
        try:
            if not holes(path):
                continue
            if checker is None:
                warn(f"{path} may hold a hole left by a full disk, and no valkey-check-aof is here to confirm it")
                continue
            repair_file(path, checker)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            warn(f"cannot check {path} for a hole left by a full disk: {exc}")
