"""Host names, IP literals and ``host[:port]`` lists, checked without the socket module.

Pure string work: the plan uses it before anything resolves a name, and
importing socket or ipaddress for it would cost more than the whole check.
"""

DEFAULT_PORT = 6379
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")
_HEX = frozenset("0123456789abcdefABCDEF")


def is_ipv4(text):
    parts = text.split(".")
    return len(parts) == 4 and all(p.isdigit() and p.isascii() and len(p) <= 3 and int(p) <= 255 for p in parts)


def is_ipv6(text):
    """An IPv6 literal (``::1``, ``fd00::5``, ``::ffff:10.0.0.1``); no zone index."""
    if ":" not in text or text.count("::") > 1 or ":::" in text:
        return False
    if (text.startswith(":") and not text.startswith("::")) or (text.endswith(":") and not text.endswith("::")):
        return False
    head, _, last = text.rpartition(":")
    groups = head.split(":")
    if "." in last:  # an embedded IPv4 tail counts as two groups
        if not is_ipv4(last):
            return False
        count = 2
    else:
        groups.append(last)
        count = 0
    for group in groups:
        if group and not (len(group) <= 4 and all(c in _HEX for c in group)):
            return False
    count += sum(1 for g in groups if g)
    return count == 8 if "::" not in text else count < 8


def is_ip(text):
    return is_ipv4(text) or is_ipv6(text)


def is_hostname(text):
    """What valkey-server accepts as cluster-announce-hostname: letters, digits, ``-`` and ``.``."""
    return 0 < len(text) < 256 and all(c in _NAME_CHARS for c in text)


def normalise_host(host):
    """Compare names the way DNS does: case-insensitive, a trailing dot means the same name."""
    host = host.lower()
    return host[:-1] if host.endswith(".") and len(host) > 1 else host


def parse_host_port(item, variable):
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 literal -> (host, port)."""
    host, port = item, None
    if item.startswith("["):
        end = item.find("]")
        rest = item[end + 1 :] if end > 0 else "?"
        if end < 0 or (rest and not rest.startswith(":")):
            raise ValueError(f"{variable}: {item!r} is not host[:port] ([ without a matching ])")
        host, port = item[1:end], rest[1:] if rest else None
        if not is_ipv6(host):
            raise ValueError(f"{variable}: {item!r}: {host!r} in brackets is not an IPv6 address")
    elif item.count(":") == 1:
        host, _, port = item.partition(":")
    elif ":" in item and not is_ipv6(item):
        raise ValueError(f"{variable}: {item!r} is not host[:port] (write an IPv6 address as [addr]:port)")
    if port is not None:
        if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"{variable}: {item!r}: the port must be a number from 1 to 65535")
        port = int(port)
    if not (is_ipv6(host) or is_hostname(host)):
        raise ValueError(f"{variable}: {item!r}: {host!r} is neither a host name nor an IP address")
    return normalise_host(host), DEFAULT_PORT if port is None else port


def parse_node_list(value, variable):
    """Comma and/or space separated ``host[:port]`` items -> [(host, port)], in order, no repeats."""
    nodes = []
    for item in value.replace(",", " ").split():
        node = parse_host_port(item, variable)
        if node in nodes:
            raise ValueError(f"{variable}: {format_node(node)} is listed twice")
        nodes.append(node)
    return nodes


def format_node(node):
    host, port = node
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def first_label(hostname):
    """The human node name valkey shows in logs: ``db-0.svc.local`` -> ``db-0`` (an IP stays whole)."""
    return hostname if is_ip(hostname) else hostname.split(".", 1)[0]


def hosts_address(hosts_text, name):
    """The first address ``/etc/hosts`` text gives ``name`` that is not a loopback address, or None.

    Docker and Kubernetes write the container's (pod's) address there under its host name:
    the address its peers reach it on, which changes with every new container.
    """
    name = normalise_host(name)
    for line in hosts_text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2 or name not in (normalise_host(n) for n in fields[1:]):
            continue
        address = fields[0].split("%", 1)[0]
        if is_ip(address) and not (
            address.startswith("127.") or address == "::1" or address.lower().startswith("fe80:")
        ):
            return address
    return None
