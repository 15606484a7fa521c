"""Plan cluster mode: the announce args, who creates the cluster, the nodes.conf refresh.  Pure.

Precedence of what the entrypoint generates from VALKEY_CLUSTER_ANNOUNCE_* (and
POD_IP): the server reads the config file, then the command line in order, and
the generated args sit between the two.  So a generated setting overrides the
config file -- with a warning naming the line, since a rewritten config
(CONFIG REWRITE) would otherwise pin a pod's old IP forever -- and the user's
own arguments and VALKEY_EXTRA_FLAGS override it (also warned, and the
generated one is then left out).
"""

import os

from ..addresses import first_label, format_node, is_ip, is_ipv4, normalise_host
from ..errors import UsageError

WILDCARDS = ("*", "::*", "0.0.0.0", "::")


class Identity:
    """What this node knows about its own address, to find itself in VALKEY_CLUSTER_NODES."""

    __slots__ = ("announce_ip", "binds", "hostname", "port")

    def __init__(self, port, announce_ip=None, hostname=None, binds=None):
        self.port = port
        self.announce_ip = announce_ip
        self.hostname = hostname
        self.binds = binds  # specific bind addresses, or None when it listens on a wildcard

    def as_dict(self):
        return {"port": self.port, "announce_ip": self.announce_ip, "hostname": self.hostname, "binds": self.binds}


class ClusterPlan:
    __slots__ = (
        "bootstrap",
        "creator",
        "creator_reason",
        "identity",
        "join",
        "local_host",
        "nodes",
        "nodes_conf",
        "port",
        "refresh_peers",
        "replicas",
        "timeout",
    )

    def __init__(self):
        self.nodes = None  # [(host, port)] from VALKEY_CLUSTER_NODES, or None
        self.replicas = 0
        self.bootstrap = "no"
        self.creator = False  # True: start the bootstrap helper; None: it decides by DNS at start
        self.creator_reason = ""
        self.join = False  # True: start the helper too when nodes.conf lists no peer (a new or emptied node)
        self.identity = None
        self.port = 6379  # where this server listens (the helper talks to it there)
        self.local_host = "127.0.0.1"
        self.nodes_conf = None
        self.refresh_peers = False
        self.timeout = 600.0

    def as_dict(self):
        return {
            "nodes": [format_node(n) for n in self.nodes] if self.nodes else None,
            "replicas": self.replicas,
            "bootstrap": self.bootstrap,
            "creator": self.creator,
            "creator_reason": self.creator_reason,
            "join": self.join,
            "identity": self.identity.as_dict() if self.identity else None,
            "local": format_node((self.local_host, self.port)),
            "nodes_conf": self.nodes_conf,
            "refresh_peers": self.refresh_peers,
            "timeout": self.timeout,
        }


def generated_setting(directive, value, variable, config, warnings):
    """``["--directive", value]`` unless the command line sets it; warn about every conflict."""
    current = config.settings.get(directive)
    if current is not None:
        args, origin = current
        if directive in config.late:
            warnings.append(f"{variable} ignored: {directive} is set by {origin} (the command line), which wins")
            return []
        if args != [value]:
            warnings.append(f"{variable} overrides `{directive} {' '.join(args)}` from {origin}")
    return [f"--{directive}", value]


def plan_cluster(plan, env, config, own_address=None):
    """Set ``plan.cluster`` and return the generated args for cluster mode.

    ``own_address``: this container's address, announced when no announce IP is given
    (neither VALKEY_CLUSTER_ANNOUNCE_IP nor POD_IP, nor cluster-announce-ip in the config):
    the server itself learns its address only from a peer's MEET, so after a restart on a
    new IP it would go on telling clients and peers its old one."""
    warnings, notes = plan.warnings, plan.notes
    if not plan.cluster_enabled:
        if env.cluster_nodes:
            raise UsageError(
                "VALKEY_CLUSTER_NODES is set but cluster mode is off: add `cluster-enabled yes` to the config "
                "file (or --cluster-enabled yes), or unset VALKEY_CLUSTER_NODES"
            )
        for variable, given in (
            ("VALKEY_CLUSTER_REPLICAS", env.cluster_replicas is not None),
            ("VALKEY_CLUSTER_BOOTSTRAP", env.bootstrap),
            ("VALKEY_CLUSTER_ANNOUNCE_IP", env.announce_ip and env.announce_ip[1] != "POD_IP"),
            ("VALKEY_CLUSTER_ANNOUNCE_HOSTNAME", env.announce_hostname),
        ):
            if given:
                warnings.append(f"{variable} ignored: cluster mode is off (cluster-enabled is not yes)")
        return []

    cluster = plan.cluster = ClusterPlan()
    cluster.timeout = env.bootstrap_timeout
    cluster.nodes_conf = os.path.join(config.cwd, config.value("cluster-config-file") or "nodes.conf")
    tls = plan.tls
    # Where this server takes clients: its TLS port when TLS is on (the helper speaks TLS there).
    cluster.port = tls.client_port() if tls is not None and tls.on else _port(config.value("port", "6379"))
    binds = _specific_binds(config)
    cluster.local_host = _local_host(config)

    args = []
    announce_ip = None
    if env.announce_ip:
        announce_ip, variable = env.announce_ip
        if not is_ip(announce_ip):
            raise UsageError(f"{variable}={announce_ip!r}: not an IPv4 or IPv6 address (for cluster-announce-ip)")
        args += generated_setting("cluster-announce-ip", announce_ip, variable, config, warnings)
    elif own_address and "cluster-announce-ip" not in config.settings and binds is None:
        announce_ip = own_address
        args += ["--cluster-announce-ip", own_address]
        notes.append(f"cluster-announce-ip: {own_address}, this container's address (no announce IP is given)")
    elif own_address and "cluster-announce-ip" in config.settings and "cluster-announce-ip" not in config.late:
        value, origin = config.settings["cluster-announce-ip"]
        if value != [own_address]:
            warnings.append(
                f"{origin}: cluster-announce-ip {' '.join(value)} is not this container's address ({own_address}): "
                "peers and clients are sent there; if it is an old address (CONFIG REWRITE writes it), remove the "
                "line and the current one is announced"
            )
    if env.announce_hostname:
        hostname = env.announce_hostname
        variable = "VALKEY_CLUSTER_ANNOUNCE_HOSTNAME"
        args += generated_setting("cluster-announce-hostname", hostname, variable, config, warnings)
        args += generated_setting("cluster-announce-human-nodename", first_label(hostname), variable, config, warnings)
    # What the other members will know this node by: the values that win.
    announce_ip = _winner(config, "cluster-announce-ip", announce_ip)
    hostname = _winner(config, "cluster-announce-hostname", env.announce_hostname)
    # The port the other members know this node by: with tls-cluster, its TLS port.
    tls_cluster = tls is not None and tls.on and tls.cluster.value
    announce = "cluster-announce-tls-port" if tls_cluster else "cluster-announce-port"
    announced_port = _port(config.value(announce, "0"), 0) or cluster.port
    cluster.identity = Identity(announced_port, announce_ip, hostname, binds)

    cluster.refresh_peers = bool(env.cluster_nodes or env.announce_hostname)
    if cluster.refresh_peers:
        notes.append(f"before start: peers in {cluster.nodes_conf} get the current IPs of their host names")
    _plan_bootstrap(cluster, env, warnings, notes, "requirepass" in config.settings)
    return args


def _plan_bootstrap(cluster, env, warnings, notes, requirepass):
    mode = env.bootstrap or "auto"
    if not env.cluster_nodes:
        if mode == "yes":
            raise UsageError("VALKEY_CLUSTER_BOOTSTRAP=yes needs VALKEY_CLUSTER_NODES (every member, host[:port])")
        if env.cluster_replicas is not None:
            warnings.append("VALKEY_CLUSTER_REPLICAS ignored: it shapes the cluster made from VALKEY_CLUSTER_NODES")
        cluster.creator_reason = "VALKEY_CLUSTER_NODES is not set"
        return
    nodes = cluster.nodes = env.cluster_nodes
    replicas = cluster.replicas = env.cluster_replicas or 0
    cluster.bootstrap = mode
    if mode == "no":
        cluster.creator_reason = "VALKEY_CLUSTER_BOOTSTRAP=no"
        return
    group = 1 + replicas
    if len(nodes) < 3 * group or len(nodes) % group:
        raise UsageError(
            f"VALKEY_CLUSTER_NODES lists {len(nodes)} members; with VALKEY_CLUSTER_REPLICAS={replicas} a cluster needs "
            f"primaries x {group} members with at least 3 primaries ({3 * group}, {4 * group}, ...)"
        )
    if cluster.port == 0:
        raise UsageError(
            "VALKEY_CLUSTER_BOOTSTRAP: creating the cluster needs a client port, and nothing listens (port 0, "
            "no tls-port); set VALKEY_TLS_CERT_FILE (and the rest of TLS) or a port"
        )
    cluster.creator, cluster.creator_reason = decide_creator(mode, nodes, cluster.identity)
    # Any member may have to join a cluster that exists without it (a lost volume): whether it
    # has to depends on its nodes.conf, which apply looks at.
    cluster.join = cluster.creator is False and any(match_self(n, cluster.identity) is not False for n in nodes)
    if cluster.creator is not False and env.password is None and requirepass:
        warnings.append(
            "VALKEY_CLUSTER_BOOTSTRAP: requirepass is set but not through VALKEY_PASSWORD(_FILE): "
            "the bootstrap cannot authenticate to the members; give the password that way instead"
        )
    verdict = {True: "creates the cluster", False: "does not create the cluster", None: "may create the cluster"}
    notes.append(f"cluster bootstrap ({mode}): this node {verdict[cluster.creator]}: {cluster.creator_reason}")
    if cluster.join:
        notes.append(f"cluster bootstrap: without peers in {cluster.nodes_conf} this node joins the cluster by itself")


def decide_creator(mode, nodes, me):
    """(True, False or None, why).  None: only resolving the first member's name can tell."""
    if mode == "yes":
        return True, "VALKEY_CLUSTER_BOOTSTRAP=yes"
    first = nodes[0]
    verdict = match_self(first, me)
    if verdict:
        return True, f"it is the first member, {format_node(first)}"
    for node in nodes[1:]:
        if match_self(node, me):
            return False, f"it is {format_node(node)}; the first member, {format_node(first)}, creates it"
    if verdict is False:
        return False, f"it is not the first member, {format_node(first)}, which creates it"
    return None, f"at start, if {format_node(first)} resolves to an address of this node"


def match_self(node, me):
    """Is ``node`` this server?  True, False, or None when only DNS or the interfaces can tell."""
    host, port = node
    if port != me.port:
        return False
    if me.hostname:
        name = normalise_host(me.hostname)
        # A short name ("db-0" or "db-0.svc") reaches the same pod through the DNS search list.
        if host == name or name.startswith(host + "."):
            return True
    if is_ip(host):
        if me.announce_ip:
            if host == normalise_host(me.announce_ip):
                return True
            # Two spellings of one IPv6 address are left to the run-time check.
            return False if is_ipv4(host) and is_ipv4(me.announce_ip) else None
        if me.binds is not None:
            return host in me.binds
        return None
    # A name that is not this node's announced name belongs to another member.
    return False if me.hostname else None


def _winner(config, directive, generated):
    if directive in config.late or not generated:
        return config.value(directive)
    return generated


def _port(text, default=6379):
    try:
        return int(text)
    except (TypeError, ValueError):
        return default  # the server refuses it and says why


def _bind_addresses(config):
    args = config.settings.get("bind", (["*", "-::*"], None))[0]
    return [a[1:] if a.startswith("-") else a for a in args]


def _specific_binds(config):
    addresses = _bind_addresses(config)
    if not addresses or any(a in WILDCARDS for a in addresses):
        return None
    return [normalise_host(a) for a in addresses]


def _local_host(config):
    """An address this server listens on, for the bootstrap helper to talk to it."""
    for address in _bind_addresses(config):
        if address in ("*", "0.0.0.0"):
            return "127.0.0.1"
        if address in ("::*", "::"):
            return "::1"
        return address
    return "127.0.0.1"
