"""bundle-info: the image's labels beside what the server has loaded."""

import os

from conftest import ROOT

from valkey_bundle import info
from valkey_bundle.module_files import read_module_facts

LABELS = {
    "org.opencontainers.image.version": "9.0.5",
    "org.opencontainers.image.revision": "0123456789abcdef0123",
    "org.valkey-bundle.valkey.version": "9.0.5",
    "org.valkey-bundle.search.version": "1.2.1",
    "org.valkey-bundle.json.version": "1.0.2",
    "org.valkey-bundle.bloom.version": "1.0.1",
    "org.valkey-bundle.ldap.version": "1.0.0",
    "org.valkey-bundle.search.build": "stand-in",
    "org.valkey-bundle.json.build": "real",
    "org.valkey-bundle.bloom.build": "stand-in",
    "org.valkey-bundle.ldap.build": "real",
    "org.valkey-bundle.substitutes": "",
}
MODULE_LIST = [
    ["name", "json", "ver", 10002, "path", "/usr/lib/valkey/libjson.so", "args", []],
    ["name", "bf", "ver", 1, "path", "/usr/lib/valkey/libvalkey_bloom.so", "args", ["bloom-capacity", "10"]],
    ["name", "search", "ver", 1, "path", "/usr/lib/valkey/libsearch.so", "args", ["--use-coordinator"]],
    ["name", "lua", "ver", 1, "path", "", "args", []],
]


def test_each_module_with_its_label_and_what_the_server_loaded():
    lines = info.report(LABELS, read_module_facts(), info.module_entries(MODULE_LIST), "valkey 9.0.5 on 127.0.0.1:6379")
    assert lines == [
        "image   valkey-bundle 9.0.5 (revision 0123456789ab), Valkey 9.0.5",
        "server  valkey 9.0.5 on 127.0.0.1:6379",
        "search  1.2.1 stand-in  loaded: search ver 1 /usr/lib/valkey/libsearch.so",
        "json    1.0.2 real      loaded: json ver 10002 /usr/lib/valkey/libjson.so",
        "bloom   1.0.1 stand-in  loaded: bf ver 1 /usr/lib/valkey/libvalkey_bloom.so",
        "ldap    1.0.0 real      not loaded",
    ]


def test_without_a_server_the_labels_still_print():
    lines = info.report(LABELS, read_module_facts(), None, "cannot reach 127.0.0.1:6379: refused")
    assert lines[1] == "server  cannot reach 127.0.0.1:6379: refused"
    assert lines[2] == "search  1.2.1 stand-in  server not reachable"


def test_a_module_from_elsewhere_is_listed_too():
    extra = [["name", "mine", "ver", 3, "path", "/opt/mine.so", "args", []]]
    lines = info.report(LABELS, read_module_facts(), info.module_entries(extra), "x")
    assert lines[-1] == "mine    (not from the image) loaded: ver 3 /opt/mine.so"


def test_the_image_writes_every_label_bundle_info_reads():
    """The Dockerfile writes the labels to a file (a container cannot read its image's labels)."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    label_block = dockerfile[dockerfile.index("LABEL org.opencontainers.image.title") :]
    written = dockerfile[dockerfile.index("> /usr/local/lib/valkey-bundle/image-labels") - 1200 :]
    for name in LABELS:
        assert f'{name}="' in label_block, name
        assert f'"{name}=' in written, f"{name} is a label but not in image-labels"
    assert "entrypoint/bundle-info /usr/local/bin/bundle-info" in dockerfile
    assert str(ROOT / "image-labels") == info.LABELS  # in the image: /usr/local/lib/valkey-bundle/image-labels
    assert os.access(ROOT / "entrypoint" / "bundle-info", os.X_OK)
