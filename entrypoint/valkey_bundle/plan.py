"""Decide what to run.  Pure: everything it needs is passed in, nothing is touched.

The plan is what dry run prints and what apply carries out.
"""

import os

from .env_values import FALSE_WORDS, TRUE_WORDS
from .errors import UsageError
from .module_files import module_key
from .server_config import INFO_ARGS, split_server_args
from .tokens import join_config_args


class PlannedModule:
    __slots__ = ("args", "key", "path", "source")

    def __init__(self, key, path, args, source):
        self.key, self.path, self.args, self.source = key, path, args, source

    def as_dict(self):
        return {"key": self.key, "path": self.path, "args": self.args, "source": self.source}


class Plan:
    __slots__ = (
        "argv",
        "cluster",
        "cluster_enabled",
        "coordinator",
        "data_dir",
        "handover",
        "index_guard",
        "lone_cluster",
        "modules",
        "notes",
        "password",
        "run_as",
        "server",
        "tls",
        "warnings",
    )

    def __init__(self, argv, server):
        self.argv = argv
        self.server = server
        self.run_as = None  # (uid, gid) to switch to before exec, when started as root
        self.data_dir = None  # the server's working directory, to hand to run_as
        self.handover = ([], [])  # (paths to lchown, directories to walk) there, for run_as
        self.lone_cluster = None  # nodes.conf of a cluster node nothing forms a cluster for
        self.modules = []
        self.cluster_enabled = False
        self.cluster = None  # cluster.plan.ClusterPlan in cluster mode
        self.coordinator = False
        self.index_guard = None  # what the search index guard does (_plan_index_guard), when it runs
        self.password = None  # PasswordPlan when VALKEY_PASSWORD(_FILE) is set
        self.tls = None  # tls_plan.TlsPlan in server mode (its ``on`` says whether TLS listens)
        self.warnings = []
        self.notes = []  # explanations for debug output

    def as_dict(self):
        return {
            "argv": self.argv,
            "server": self.server,
            "modules": [m.as_dict() for m in self.modules],
            "cluster_enabled": self.cluster_enabled,
            "coordinator": self.coordinator,
            "index_guard": self.index_guard,
            "run_as": list(self.run_as) if self.run_as else None,
            "data_dir": self.data_dir,
            "cluster": self.cluster.as_dict() if self.cluster else None,
            "password": self.password.as_dict() if self.password else None,
            "tls": self.tls.as_dict() if self.tls and self.tls.on else None,
            "warnings": self.warnings,
        }


def loadmodule_arg(path, args):
    """One argv element the server splits back into exactly ``path`` and ``args``."""
    return "--loadmodule " + join_config_args([path, *args])


def resolve_names(entries, known, aliases):
    """Map [(name, variable)] to keys; an unknown name is an error with a suggestion."""
    keys = []
    for name, variable in entries:
        key = aliases.get(name.lower()) or module_key(name)
        if key not in known:
            choices = sorted(known)
            # A typo of a module's own name (``fb`` for ``bf``) points to its key as well.
            names = {alias.upper(): target for alias, target in aliases.items() if target in known}
            close = closest(key, choices) or names.get(closest(key, sorted(names)))
            hint = f"; did you mean {close}?" if close else ""
            raise UsageError(f"{variable}: unknown module {name!r} (known: {', '.join(choices) or 'none'}){hint}")
        if key not in keys:
            keys.append(key)
    return keys


def closest(word, choices):
    """The choice within a few typos of ``word`` (difflib is not in python3-minimal)."""
    best, best_distance = None, max(1, len(word) // 3) + 1
    for choice in choices:
        distance = edit_distance(word, choice)
        if distance < best_distance:
            best, best_distance = choice, distance
    return best


def edit_distance(a, b):
    """Edits from ``a`` to ``b``: a letter added, removed, changed, or two neighbours swapped
    (``jsno`` is one edit from ``json``)."""
    before, previous = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            distance = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb and ca != cb:
                distance = min(distance, before[j - 2] + 1)
            current.append(distance)
        before, previous = previous, current
    return previous[-1]


def normalise_valueless(tokens, flags, variable, warnings):
    """``--use-coordinator yes`` -> ``--use-coordinator``; ``--use-coordinator no`` -> dropped."""
    out = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        value = tokens[i + 1].lower() if i + 1 < len(tokens) else None
        if token in flags and value in TRUE_WORDS:
            warnings.append(f"{variable}: {token} takes no value; dropped {tokens[i + 1]!r}")
            out.append(token)
            i += 2
        elif token in flags and value in FALSE_WORDS:
            warnings.append(f"{variable}: {token} {tokens[i + 1]} means off; dropped the flag")
            i += 2
        else:
            out.append(token)
            i += 1
    return out


def final_server_args(args, env):
    """The server's arguments after the program name: the command's, then VALKEY_EXTRA_FLAGS."""
    return [*args[1:], *env.extra_flags]


def make_plan(
    args,
    server_mode,
    env,
    discovered,
    facts,
    config,
    machine=None,
    cpu_flags=None,
    identity=None,
    runtime=None,
    *,
    own_address=None,
    capabilities=None,
    data=None,
    index_record=None,
):
    """Build the plan from the normalised command and what was read before.

    ``args``: normalised argv; ``env``: BundleEnv; ``discovered``: {key: path};
    ``facts``: {key: ModuleFacts}; ``config``: ServerConfig read from the final
    server args (None outside server mode); ``machine``/``cpu_flags``: this CPU;
    ``identity``: (effective uid, (uid, gid) of the valkey account or None);
    ``runtime``: password_plan.Runtime (needed when a password is set);
    ``own_address``: this container's address (addresses.hosts_address), looked up in
    cluster mode when no announce IP is given; ``capabilities``: the effective
    capabilities of a root start (data_dir.read_capabilities), None when unknown;
    ``data``: data_dir.DataDir of the server's directory, None when not looked at;
    ``index_record``: the text of that directory's record of its search indexes
    (index_state.RECORD_FILE), None when there is none.
    """
    if not server_mode:
        plan = Plan(list(args), server=False)
        plan.notes.append(f"{args[0]} is not valkey-server: running it unchanged")
        if env.extra_flags:
            plan.notes.append("VALKEY_EXTRA_FLAGS ignored: it applies to valkey-server only")
        return plan
    if len(args) > 1 and args[1] in INFO_ARGS:
        plan = Plan(list(args), server=True)
        plan.notes.append(f"valkey-server {args[1]} reads no config: running it unchanged")
        return plan

    plan = Plan([], server=True)
    warnings, notes = plan.warnings, plan.notes
    aliases = {f.name.lower(): key for key, f in facts.items() if f.name}
    known = set(discovered) | set(facts)

    wanted = list(discovered) if env.modules is None else resolve_names(env.modules, known, aliases)
    disabled = resolve_names(env.disabled, known, aliases)
    from_config = {}
    for loaded in config.modules:
        first = from_config.setdefault(loaded.key, loaded)
        if first is not loaded:
            raise UsageError(
                f"{loaded.origin}: module {loaded.key} is already loaded by {first.origin}; "
                "valkey-server would abort (module name is busy): remove one of the two"
            )

    plan.cluster_enabled = config.is_yes("cluster-enabled")
    notes.append(
        "cluster mode: "
        + ("on" if plan.cluster_enabled else "off")
        + (f" ({config.settings['cluster-enabled'][1]})" if "cluster-enabled" in config.settings else " (default)")
    )

    for loaded in config.modules:
        plan.modules.append(PlannedModule(loaded.key, loaded.path, loaded.args, loaded.origin))
        notes.append(f"{loaded.key}: loaded by {loaded.origin} ({loaded.path}); the config wins")

    for key, loaded in from_config.items():
        # The config wins over the environment: say so rather than let a setting do nothing.
        if key in env.module_args:
            warnings.append(f"{key}_MODULE_ARGS ignored: {key} is loaded by {loaded.origin}, whose arguments win")
        if key in disabled:
            warnings.append(
                f"VALKEY_DISABLE_MODULES names {key}, but {loaded.origin} loads it: the config wins; "
                "remove that line to leave the module out"
            )
        elif env.modules is not None and key not in wanted:
            warnings.append(
                f"VALKEY_MODULES leaves {key} out, but {loaded.origin} loads it: the config wins; "
                "remove that line to leave the module out"
            )

    for key in wanted:
        if key in from_config:
            continue
        if key in disabled:
            notes.append(f"{key}: disabled by VALKEY_DISABLE_MODULES")
            continue
        if key not in discovered:
            raise UsageError(f"VALKEY_MODULES: module {key} is not in {env.modules_dir}")
        variable, tokens = env.module_args.get(key, (None, []))
        if variable:
            module_facts = facts.get(key)
            flags = module_facts.valueless_flags if module_facts else ()
            tokens = normalise_valueless(tokens, flags, variable, warnings)
        plan.modules.append(PlannedModule(key, discovered[key], tokens, "env"))

    for prefix, (variable, _) in sorted(env.module_args.items()):
        if not any(m.key == prefix for m in plan.modules):
            state = "disabled" if prefix in disabled else "not loaded"
            warnings.append(f"{variable} ignored: module {prefix} is {state}")

    _check_module_settings(plan, env, config, facts, discovered, wanted, disabled)
    _plan_coordinator(plan, env, facts)
    _check_cpu(plan, facts, machine, cpu_flags)
    module_defaults, reindex = _module_defaults(plan, env, config, facts, index_record)
    tls_args = _plan_tls(plan, env, config)
    _plan_index_guard(plan, env, config, reindex)

    _plan_user(plan, identity, config, data, capabilities)
    config_file, rest = split_server_args(final_server_args(args, env))
    generated = [loadmodule_arg(m.path, m.args) for m in plan.modules if m.source == "env"]
    generated += module_defaults
    generated += tls_args
    if cluster_vars_set(env) or (plan.cluster_enabled and (env.announce_ip or own_address)):
        from .cluster import plan_cluster

        generated += plan_cluster(plan, env, config, own_address)
    if plan.cluster_enabled and not env.cluster_nodes:
        # Nothing forms a cluster for this node: say how one is formed, if it has no peers yet.
        plan.lone_cluster = os.path.join(config.cwd, config.value("cluster-config-file") or "nodes.conf")
    if "protected-mode" not in config.settings:
        # As in the official image: a container's port is reachable only where it is
        # published, and with protected mode on, clients through a published port
        # (they come from the bridge, not loopback) would all be refused.
        generated.append("--protected-mode no")
        plan.notes.append("protected-mode: off (not set by the config or the command)")
    if env.password:
        from .password_plan import plan_password

        generated += plan_password(plan, env.password, config, runtime, identity)
    else:
        _warn_open_access(plan, config, plan.tls)
    if plan.coordinator and (env.password or has_password(config) or plan.tls.on):
        _warn_coordinator_without_auth(plan, config, facts)
    head = [args[0]] + ([config_file] if config_file is not None else [])
    plan.argv = head + generated + rest
    return plan


def _where(origin, directive, env):
    """Where a setting was made: its file and line, VALKEY_EXTRA_FLAGS, or the command line."""
    if origin == "the command line":
        flag = "--" + directive
        # An element may hold a whole directive (``--loadmodule /x.so --flag``): its first word counts.
        if any(t.split(" ", 1)[0].lower() == flag for t in env.extra_flags):
            return "VALKEY_EXTRA_FLAGS"
    return origin


def _check_module_settings(plan, env, config, facts, discovered, wanted, disabled):
    """Refuse what valkey-server would refuse only once it is starting (or after it started):

    - a value-less load flag with a value in a loadmodule line (``--use-coordinator yes``:
      the module fails to load), where the entrypoint cannot rewrite the line;
    - a value-less load flag as a server setting (``--use-coordinator`` on its own on the
      command line: Bad directive);
    - a module setting (``json.*``, ``bf.*``, ...) for a module that is not loaded (Unused
      Module Configuration).
    """
    for module in plan.modules:
        module_facts = facts.get(module.key)
        if module.source == "env" or not module_facts:
            continue
        for i, token in enumerate(module.args[:-1]):
            value = module.args[i + 1]
            if token in module_facts.valueless_flags and value.lower() in TRUE_WORDS + FALSE_WORDS:
                where = _where(module.source, "loadmodule", env)
                fix = (
                    f"write {token} alone"
                    if value.lower() in TRUE_WORDS
                    else f"remove {token} {value} (off is its default)"
                )
                raise UsageError(
                    f"{where}: {token} takes no value, and {module.key} fails to load with `{token} {value}`: {fix}"
                )
    owners = {}  # value-less flag -> key of the module it belongs to
    for key, module_facts in sorted(facts.items()):
        for flag in module_facts.valueless_flags:
            owners.setdefault(flag.lstrip("-").lower(), key)
    loaded = {m.key for m in plan.modules}
    by_name = {f.name.lower(): key for key, f in facts.items() if f.name}
    for directive, (_, origin) in config.settings.items():
        where = _where(origin, directive, env)
        if directive in owners:
            key = owners[directive]
            flag = "--" + directive
            module = next((m for m in plan.modules if m.key == key), None)
            if module is None or module.source == "env":
                auto = " (or nothing: it is added in cluster mode)" if facts[key].coordinator_flag == flag else ""
                fix = f"set {key}_MODULE_ARGS={flag}{auto}"
            elif module.source == "the command line":
                fix = f'pass it in the module\'s own argument: "--loadmodule {module.path} {flag}"'
            else:
                fix = f"add it to the loadmodule line, {module.source}"
            raise UsageError(
                f"{where}: {flag} is an argument of the {key} module's load, not a server setting "
                f"(valkey-server stops at it: Bad directive); {fix}"
            )
        prefix, dot, _ = directive.partition(".")
        key = by_name.get(prefix) if dot else None
        if key is None or key in loaded:
            continue
        if key in disabled:
            why = "VALKEY_DISABLE_MODULES names it"
        elif key not in discovered:
            why = f"it is not in {env.modules_dir}"
        elif env.modules is not None and key not in wanted:
            why = "VALKEY_MODULES leaves it out"
        else:
            why = "nothing loads it"
        raise UsageError(
            f"{where}: {directive} is a setting of the {prefix} module ({key}), which is not loaded ({why}): "
            f"valkey-server would refuse to start (Unused Module Configuration); remove the setting, or load {key}"
        )


def cluster_vars_set(env):
    """Whether any VALKEY_CLUSTER_* variable asks for something (POD_IP alone is any pod's)."""
    return bool(
        env.cluster_nodes
        or env.cluster_replicas is not None
        or env.bootstrap
        or env.announce_hostname
        or (env.announce_ip and env.announce_ip[1] != "POD_IP")
    )


def lone_cluster_line(nodes_conf):
    """The start line of a cluster node that has no peers and no VALKEY_CLUSTER_NODES."""
    return (
        f"cluster mode without VALKEY_CLUSTER_NODES, and {nodes_conf} lists no other node: this node stays "
        "cluster_state:fail until it is made part of a cluster (valkey-cli --cluster create, or CLUSTER MEET "
        "from a member); set VALKEY_CLUSTER_NODES on every member to have them form one by themselves"
    )


def has_password(config):
    """Whether the config or the command asks clients to authenticate."""
    return any(name in config.settings for name in ("requirepass", "aclfile", "user"))


def coordinator_port(config, offset, tls=None):
    """(port, what it is computed from) of search's coordinator: tls-port when set, else port, + offset
    (MODULE_COORDINATOR_PORT_OFFSET), as valkey-search asks the server (src/valkey_search.cc).
    ``tls``: the tls_plan.TlsPlan, whose TLS port may come from VALKEY_TLS_*.

    None when the config's port is not a number (the server refuses it and says why).
    """
    try:
        tls_port = tls.tls_port.value if tls is not None and tls.on else int(config.value("tls-port") or 0)
        base, name = (tls_port, "tls-port") if tls_port else (int(config.value("port") or 6379), "port")
    except ValueError:
        return None
    extra = 1 if base == 6378 else 0  # as valkey-search does (src/coordinator/util.h)
    return base + offset + extra, f"{name} {base} + {offset + extra}"


def _warn_coordinator_without_auth(plan, config, facts):
    """The coordinator's gRPC server takes no password and speaks no TLS: neither the password nor
    TLS on the client port covers it."""
    module = next(
        (m for m in plan.modules if m.key in facts and facts[m.key].coordinator_flag),
        None,
    )
    offset = facts[module.key].coordinator_port_offset if module else 0
    found = coordinator_port(config, offset, plan.tls)
    where = f"port {found[0]} ({found[1]})" if found else f"port + {offset}"
    if plan.tls is not None and plan.tls.on:
        version = facts[module.key].version if module else ""
        search = f"valkey-search {version}".strip()
        plan.warnings.append(
            f"the search coordinator listens on {where} in plaintext gRPC without authentication ({search} "
            "encrypts nothing there, whatever TLS the server speaks, and the password does not apply): whoever "
            "reaches it can run index queries and read documents; let only the cluster's members reach it, "
            "never publish it"
        )
        return
    plan.warnings.append(
        f"the search coordinator listens on {where} without authentication (the password does not apply "
        "there): whoever reaches it can run index queries and read documents; let only the cluster's members "
        "reach it, never publish it"
    )


def _warn_open_access(plan, config, tls):
    """No password: say so when clients from other hosts can (or, in a cluster, must) connect.
    TLS alone with client certificates demanded is an authentication of its own: quiet then."""
    if has_password(config):
        return
    if tls is not None and tls.on and tls.port == 0 and tls.auth_clients.value == "yes":
        return
    addresses = [a.lstrip("-") for a in config.settings.get("bind", (["*", "-::*"], None))[0]]
    if addresses and all(a.startswith("127.") or a in ("::1", "localhost") for a in addresses):
        return
    if (config.value("protected-mode") or "no").lower() == "no":
        plan.warnings.append(
            "no password and protected-mode is off: anyone who reaches this server's port can use it; "
            "set VALKEY_PASSWORD_FILE (or VALKEY_PASSWORD)"
        )
    elif plan.cluster_enabled:
        plan.warnings.append(
            "cluster mode without a password: protected-mode refuses clients from other hosts, and turning it "
            "off leaves the server open to anyone who reaches it; set VALKEY_PASSWORD_FILE (or VALKEY_PASSWORD)"
        )


def _plan_user(plan, identity, config, data, capabilities):
    """Started as root: hand the working directory to valkey and run as valkey.  Started as
    another uid: refuse a directory that uid cannot use where the server would exit."""
    from .data_dir import access_problems, capability_error, handover, missing_capabilities

    if identity is None:
        return
    euid, account = identity
    data_dir = plan.data_dir = config.cwd
    if euid != 0:
        plan.notes.append(f"running as uid {euid}, as started")
        errors, warnings = access_problems(data, euid, config.is_yes("appendonly"), plan.cluster_enabled)
        if errors:
            raise UsageError(errors[0])
        plan.warnings += warnings
    elif account is None:
        plan.warnings.append("started as root and there is no 'valkey' user: valkey-server runs as root")
    else:
        plan.run_as = tuple(account)
        if is_system_directory(data_dir):
            plan.data_dir = None
            plan.warnings.append(
                f"the server's directory is {data_dir}: not handing a system directory to valkey; "
                "run it in a data directory (WORKDIR /data, or `dir` in the config)"
            )
        else:
            # Not looked at (a caller without the snapshot): walk it if its top is not theirs, as apply checks.
            plan.handover = handover(data, account[0]) if data is not None else ([], [data_dir])
            chown, walks = plan.handover
            if walks == [data_dir]:
                what = f"{data_dir} goes to uid {account[0]}"
            elif chown or walks:
                what = f"in {data_dir}, {', '.join(chown + walks)} go to uid {account[0]}"
            else:
                what = f"{data_dir} and what sits in it belong to uid {account[0]}"
            plan.notes.append(f"started as root: {what}, then the server runs as it")
        switch, chown = missing_capabilities(capabilities, any(plan.handover))
        if switch or chown:
            raise UsageError(capability_error(switch, chown, data_dir, *account))


SYSTEM_TOP_DIRS = frozenset(["bin", "boot", "dev", "etc", "lib", "lib32", "lib64", "proc", "run", "sbin", "sys", "usr"])


def is_system_directory(path):
    """``/`` or a directory of the system itself: never chowned, even as asked."""
    parts = path.strip("/").split("/")
    return parts == [""] or parts[0] in SYSTEM_TOP_DIRS


def _plan_coordinator(plan, env, facts):
    """Search's coordinator: on in cluster mode (auto), or as VALKEY_SEARCH_COORDINATOR says.

    Outside cluster mode it has nothing to coordinate, yet it still opens its
    unauthenticated port (on every address, whatever ``bind`` says): a flag the user gave
    is dropped there unless VALKEY_SEARCH_COORDINATOR=yes asks for it."""
    for module in plan.modules:
        module_facts = facts.get(module.key)
        flag = module_facts.coordinator_flag if module_facts else ""
        if not flag:
            continue
        want = env.coordinator == "yes" or (env.coordinator == "auto" and plan.cluster_enabled)
        has = flag in module.args
        if module.source != "env":
            plan.coordinator = has
            if want and not has:
                plan.warnings.append(
                    f"{module.key} is loaded by {module.source} without {flag}: "
                    "cross-shard search stays off (the config wins; add the flag there)"
                )
            elif has and not plan.cluster_enabled and env.coordinator != "yes":
                plan.warnings.append(
                    f"{module.key} is loaded by {module.source} with {flag} outside cluster mode: it coordinates "
                    "nothing but opens its port without authentication; remove the flag there"
                )
            continue
        if want and not has:
            module.args = [*module.args, flag]
            plan.notes.append(f"{module.key}: added {flag} (VALKEY_SEARCH_COORDINATOR={env.coordinator})")
        elif has and env.coordinator == "no":
            module.args = [a for a in module.args if a != flag]
            plan.warnings.append(f"{module.key}_MODULE_ARGS: {flag} removed by VALKEY_SEARCH_COORDINATOR=no")
        elif has and not want:
            module.args = [a for a in module.args if a != flag]
            plan.warnings.append(
                f"{module.key}_MODULE_ARGS: {flag} removed: the server is not in cluster mode, where the "
                "coordinator has nothing to do but open its port without authentication "
                "(VALKEY_SEARCH_COORDINATOR=yes keeps it)"
            )
        plan.coordinator = flag in module.args


def _module_defaults(plan, env, config, facts, index_record):
    """The server settings a module wants beside its coordinator (MODULE_COORDINATOR_CONFIGS)
    and its reindex setting (MODULE_REINDEX_CONFIG, chosen from the data directory's record
    of its indexes, ``index_record``: index_state.reindex_choice), as generated args; a
    setting the config or the command makes is left to it. Also (name, value) of the
    reindex setting chosen here, for the index guard to keep right, or None."""
    generated = []
    chosen = None
    for module in plan.modules:
        module_facts = facts.get(module.key)
        if not module_facts:
            continue
        wanted = []
        if plan.coordinator and module_facts.coordinator_flag in module.args:
            wanted += [
                (name, value, "the image's default beside the coordinator")
                for name, value in module_facts.coordinator_configs
            ]
        name = module_facts.reindex_config
        if name and not env.index_guard:
            wanted.append((name, "yes", "VALKEY_SEARCH_INDEX_GUARD=no: every load indexes the keys again"))
        elif name:
            from .index_state import reindex_choice

            value, why = reindex_choice(index_record)
            wanted.append((name, value, f"chosen for this data directory: {why}"))
            if name not in config.settings:
                chosen = (name, value)
        for name, value, why in wanted:
            if name in config.settings:
                plan.notes.append(f"{name}: {' '.join(config.settings[name][0])} ({config.settings[name][1]})")
                continue
            generated.append(f"--{name} {value}")
            plan.notes.append(f"{name}: {value} ({why})")
    return generated, chosen


def _plan_tls(plan, env, config):
    """TLS from VALKEY_TLS_* and the config (tls_plan.py); the generated args."""
    from .tls_plan import resolve

    plan.tls, generated, warnings, notes = resolve(env, config)
    plan.warnings += warnings
    plan.notes += notes
    return generated


def _plan_index_guard(plan, env, config, reindex):
    """The index guard (index_guard.py), a helper beside the server. In cluster mode with
    search's coordinator on it rewrites the AOF after each index change: valkey-search 1.2.1
    writes no index into the AOF, so without it a member restarted from its AOF comes back
    without its indexes. Whenever the entrypoint chose the reindex setting (``reindex``:
    its name and value, from _module_defaults) it keeps that setting and the data
    directory's record of the indexes right while the server runs."""
    rewrite_aof = plan.coordinator and plan.cluster_enabled
    if not (rewrite_aof or reindex):
        return
    if not env.index_guard:
        plan.notes.append("search index guard: off (VALKEY_SEARCH_INDEX_GUARD=no)")
        if rewrite_aof and config.is_yes("appendonly"):
            plan.warnings.append(
                "VALKEY_SEARCH_INDEX_GUARD=no with appendonly yes: a member restarted from its AOF comes back "
                "without the search indexes created since its AOF was last rewritten"
            )
        return
    if plan.tls.on:
        port = plan.tls.client_port()
    else:
        try:
            port = int(config.value("port") or 6379)
        except ValueError:
            return  # the server refuses the port and says why
    from .index_state import RECORD_FILE

    record = os.path.join(config.cwd, RECORD_FILE) if reindex else None
    plan.index_guard = {
        "port": port,
        "rewrite_aof": rewrite_aof,
        "reindex_config": reindex[0] if reindex else None,
        "reindex": reindex[1] if reindex else None,
        "record": record,
    }
    duties = (["rewrites the AOF after index changes"] if rewrite_aof else []) + (
        [f"keeps {reindex[0]} and {record} up to date"] if reindex else []
    )
    plan.notes.append(f"search index guard: on, port {port} ({'; '.join(duties)})")


def _check_cpu(plan, facts, machine, cpu_flags):
    """Refuse a module this CPU cannot run (it would die with SIGILL at load)."""
    if machine is None or cpu_flags is None:
        return
    for module in plan.modules:
        module_facts = facts.get(module.key)
        needed = module_facts.cpu_features.get(machine, ()) if module_facts else ()
        missing = [f for f in needed if f not in cpu_flags]
        if missing:
            hint = (
                f"set VALKEY_DISABLE_MODULES={module.key}"
                if module.source == "env"
                else f"remove its loadmodule line ({module.source})"
            )
            raise UsageError(
                f"module {module.key} ({module.path}) needs CPU features this {machine} CPU lacks: "
                f"{' '.join(missing)}; {hint}"
            )
