"""include globs: our matcher agrees with the C library the server uses."""

import ctypes
import glob
import random

from valkey_bundle.server_config import expand_wildcards, wildcard_match

LIBC = ctypes.CDLL(None)
LIBC.fnmatch.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]


def libc_fnmatch(pattern, name):
    return LIBC.fnmatch(pattern.encode(), name.encode(), 0) == 0


def test_wildcard_match_agrees_with_libc_fnmatch():
    rng = random.Random(7)
    pattern_parts = ["a", "b", ".", "-", "*", "?", "[ab]", "[!a]", "[^b]", "[a-c]", "[]a]", "[", "\\*", "\\a", "]"]
    for _ in range(20000):
        pattern = "".join(rng.choice(pattern_parts) for _ in range(rng.randrange(0, 5)))
        name = "".join(rng.choice("ab.-*]c") for _ in range(rng.randrange(0, 5)))
        assert wildcard_match(name, pattern) == libc_fnmatch(pattern, name), (pattern, name)


def test_expand_wildcards_matches_glob(tmp_path):
    for name in ["a.conf", "b.conf", ".hidden.conf", "c.txt", "sub/d.conf", "sub/e.conf", "sub2/f.conf"]:
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        path.write_text("")
    for pattern in ["*.conf", "*", ".*", "?.conf", "[ab].conf", "*/*.conf", "sub*/[d-f].conf", "none/*.conf"]:
        full = f"{tmp_path}/{pattern}"
        assert expand_wildcards(full) == sorted(glob.glob(full)), pattern
