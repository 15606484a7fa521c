"""bundle-info [--host H] [--port P]: what this image is and what its server runs.

The image's labels say which module was compiled from its pinned sources ("real") and
which is the tests' fixture module under its names ("stand-in", a build where that
module's inputs could not be had); the server's MODULE LIST cannot tell them apart
(a stand-in answers with ``ver 1``). This prints both, one line per module:

    image   valkey-bundle 9.0.5 (revision 0123abcd), Valkey 9.0.5
    server  valkey 9.0.5 on 127.0.0.1:6379
    search  1.2.1 real      loaded: search ver 10201 /usr/lib/valkey/libsearch.so
    bloom   1.0.1 stand-in  loaded: bf ver 1 /usr/lib/valkey/libvalkey_bloom.so
    ldap    1.0.0 real      not loaded

Exit 0 when the server answered, 1 when it did not (the labels are printed anyway), 2 on
a usage error. It authenticates as bundle-healthcheck does (VALKEY_PASSWORD(_FILE)).
"""

import os
import sys

PROG = "bundle-info"
# The image writes its labels here (Dockerfile); a checkout has none.
LABELS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "image-labels")
COMPONENTS = ("search", "json", "bloom", "ldap")


def read_labels(path=LABELS):
    """{label: value} from the image's label file, or None when there is none."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    labels = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            labels[name.strip()] = value.strip()
    return labels


def module_entries(reply):
    """MODULE LIST (RESP2: a list of [name, n, ver, v, path, p, args, [...]]) -> [{field: value}]."""
    entries = []
    for item in reply or []:
        if isinstance(item, list):
            entries.append({str(item[i]): item[i + 1] for i in range(0, len(item) - 1, 2)})
    return entries


def report(labels, facts, loaded, server):
    """The lines bundle-info prints.  ``facts``: {key: ModuleFacts}; ``loaded``: MODULE LIST entries
    (None when the server did not answer); ``server``: one line on it."""
    lines = []
    if labels is None:
        lines.append("image   no image labels here (not run in the image)")
    else:
        revision = labels.get("org.opencontainers.image.revision", "")
        lines.append(
            f"image   valkey-bundle {labels.get('org.opencontainers.image.version', '?')}"
            + (f" (revision {revision[:12]})" if revision and revision != "unknown" else "")
            + f", Valkey {labels.get('org.valkey-bundle.valkey.version', '?')}"
        )
        if labels.get("org.valkey-bundle.substitutes"):
            lines.append(f"        built from substitutes of: {labels['org.valkey-bundle.substitutes']}")
    lines.append(f"server  {server}")
    by_component = {f.component: f for f in facts.values()}
    by_name = {str(m.get("name")): m for m in loaded or []}
    shown = set()
    for component in COMPONENTS:
        module_facts = by_component.get(component)
        name = module_facts.name if module_facts else component
        fallback = module_facts.version if module_facts and module_facts.version else "?"
        version = (labels or {}).get(f"org.valkey-bundle.{component}.version", fallback)
        build = (labels or {}).get(f"org.valkey-bundle.{component}.build", "?")
        if loaded is None:
            state = "server not reachable"
        elif name in by_name:
            entry = by_name[name]
            state = f"loaded: {name} ver {entry.get('ver', '?')} {entry.get('path', '')}".rstrip()
            shown.add(name)
        else:
            state = "not loaded"
        lines.append(f"{component:<7} {version} {build:<9} {state}")
    for name, entry in sorted(by_name.items()):
        if name not in shown and name != "lua":  # lua: the server's own scripting engine (Valkey 9.1)
            lines.append(f"{name:<7} (not from the image) loaded: ver {entry.get('ver', '?')} {entry.get('path', '')}")
    return lines


def ask_server(host, port, password, tls=None, server_name=None):
    """(one line on the server, MODULE LIST entries or None).  ``tls``: a tls_client.ClientTLS
    when the server speaks TLS."""
    from .resp import Connection, ReplyError, authenticate
    from .tls_client import TLSFailure

    try:
        with Connection(host, port, tls=tls, server_name=server_name) as conn:
            refused = authenticate(conn, password)
            if refused:
                return f"AUTH failed on {host}:{port}: {refused}", None
            info = conn.call("INFO", "server")
            modules = conn.call("MODULE", "LIST")
    except TLSFailure as exc:
        return str(exc), None
    except OSError as exc:
        return f"cannot reach {host}:{port}: {exc}", None
    if isinstance(modules, ReplyError):
        return f"MODULE LIST on {host}:{port}: {modules}", None
    fields = dict(line.split(":", 1) for line in (info if isinstance(info, str) else "").splitlines() if ":" in line)
    version = fields.get("valkey_version") or fields.get("redis_version", "?")
    return f"{fields.get('server_name', 'valkey')} {version.strip()} on {host}:{port}", module_entries(modules)


def read_password(environ):
    """The server's password as the entrypoint reads it, or None."""
    from .secret import read_password as read

    try:
        password = read(environ)
    except ValueError:
        return None
    return password.value if password else None


def main(argv, environ=None):
    from .module_files import read_module_facts

    environ = os.environ if environ is None else environ
    host, port, rest = None, None, list(argv)
    try:
        while rest:
            flag, value, rest = rest[0], rest[1], rest[2:]
            if flag == "--host":
                host = value
            elif flag == "--port":
                port = int(value)
            else:
                raise ValueError(flag)
    except (IndexError, ValueError):
        print(f"usage: {PROG} [--host HOST] [--port PORT]", file=sys.stderr)
        return 2
    from .local_server import local_server

    local_port, tls = local_server(environ)  # where and how the server takes clients (TLS included)
    server_name = tls.server_name if tls and host is None else host
    host, port = host or "127.0.0.1", port or local_port
    server, loaded = ask_server(host, port, read_password(environ), tls, server_name)
    for line in report(read_labels(), read_module_facts(), loaded, server):
        print(line)
    return 0 if loaded is not None else 1
