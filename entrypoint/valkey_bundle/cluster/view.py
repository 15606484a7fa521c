"""What members say about the cluster (CLUSTER INFO, CLUSTER NODES), read into data.  Pure."""

from ..addresses import format_node

SLOTS = 16384


def parse_info(text):
    """``key:value`` lines of CLUSTER INFO / INFO -> dict."""
    values = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            values[key.strip()] = value.strip()
    return values


def known_ids(nodes_text):
    """Node IDs in a CLUSTER NODES reply that completed the handshake and have an address."""
    ids = set()
    for line in (nodes_text or "").splitlines():
        fields = line.split(" ")
        if len(fields) >= 8 and not {"handshake", "noaddr"} & set(fields[2].split(",")):
            ids.add(fields[0])
    return ids


class ClusterNode:
    """One line of CLUSTER NODES."""

    __slots__ = ("cport", "flags", "hostname", "id", "ip", "port", "primary", "slots")

    def __init__(self, node_id, ip, port, cport, hostname, flags, primary, slots):
        self.id, self.ip, self.port, self.cport = node_id, ip, port, cport
        self.hostname, self.flags, self.primary, self.slots = hostname, flags, primary, slots

    def name(self):
        where = self.hostname or (format_node((self.ip, self.port)) if self.ip else "no address")
        return f"{self.id[:8]} ({where})"


def parse_nodes(text):
    """CLUSTER NODES -> [ClusterNode]: ``<id> <ip:port@cport[,hostname]> <flags> <primary|-> ... <slots>``."""
    nodes = []
    for line in (text or "").splitlines():
        fields = line.split(" ")
        if len(fields) < 8:
            continue
        parts = fields[1].split(",")
        address, _, cport = parts[0].partition("@")
        ip, _, port = address.rpartition(":")
        hostname = parts[1] if len(parts) > 1 and "=" not in parts[1] else ""
        slots = []
        for item in fields[8:]:
            if not item or item.startswith("["):  # a slot on its way in or out: not owned yet
                continue
            first, _, last = item.partition("-")
            slots.append((int(first), int(last or first)))
        primary = fields[3] if fields[3] != "-" else None
        nodes.append(
            ClusterNode(
                fields[0], ip, _number(port), _number(cport), hostname, frozenset(fields[2].split(",")), primary, slots
            )
        )
    return nodes


def _number(text):
    return int(text) if text.isdigit() else 0


def slot_text(ranges):
    """[(0, 5460), (7, 7)] -> "0-5460, 7"."""
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in ranges)


def uncovered(nodes):
    """The slot ranges no node in ``nodes`` claims."""
    covered = bytearray(SLOTS)
    for node in nodes:
        for first, last in node.slots:
            covered[first : last + 1] = b"\x01" * (last - first + 1)
    ranges, start = [], None
    for slot in range(SLOTS + 1):
        free = slot < SLOTS and not covered[slot]
        if free and start is None:
            start = slot
        elif not free and start is not None:
            ranges.append((start, slot - 1))
            start = None
    return ranges
