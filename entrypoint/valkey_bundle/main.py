"""bundle-docker-entrypoint: discover -> read env -> read config -> plan -> apply."""

import os
import sys

from .command import normalise_command
from .errors import PROG, UsageError, print_error, warn


def read_cpu_flags():
    """Return this CPU's feature flags from /proc/cpuinfo, or None when unknown."""
    try:
        with open("/proc/cpuinfo", "rb") as f:
            for line in f:
                if line.startswith((b"flags", b"Features")):
                    return frozenset(line.partition(b":")[2].decode("utf-8", "replace").split())
    except OSError:
        pass
    return None


def valkey_account():
    import pwd

    try:
        entry = pwd.getpwnam("valkey")
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def own_address(hosts="/etc/hosts"):
    """This container's address, from /etc/hosts under its host name (no DNS), or None."""
    from .addresses import hosts_address

    try:
        with open(hosts, encoding="utf-8", errors="replace") as f:
            return hosts_address(f.read(), os.uname().nodename)
    except OSError:
        return None


def effective_capabilities():
    """The capabilities the entrypoint may use as root (data_dir.CAPABILITY_BITS), or None when unknown."""
    from .data_dir import read_capabilities

    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            return read_capabilities(f.read())
    except OSError:
        return None


def gather_runtime(environ):
    """Where a private runtime file can go: $TMPDIR, /tmp, /dev/shm (a read-only root still has that)."""
    from .password_plan import Runtime

    candidates = []
    for directory in (environ.get("TMPDIR", ""), "/tmp", "/dev/shm"):
        if directory and directory not in [d for d, _ in candidates]:
            usable = os.path.isdir(directory) and os.access(directory, os.W_OK | os.X_OK)
            candidates.append((directory, usable))
    return Runtime(os.getpid(), os.geteuid(), candidates)


def read_index_record(config, facts):
    """The text of the data directory's record of its search indexes (index_state.py), or
    None when there is none or it cannot be read (the plan then takes the safe choice)."""
    if not any(f.reindex_config for f in facts.values()):
        return None
    from .index_state import RECORD_FILE

    try:
        with open(os.path.join(config.cwd, RECORD_FILE), encoding="utf-8", errors="replace") as record:
            return record.read(1 << 20)
    except OSError:
        return None


def build_plan(argv, environ):
    from .module_files import discover_modules, read_module_facts
    from .plan import final_server_args, make_plan
    from .server_config import INFO_ARGS, read_server_config
    from .settings import read_bundle_env

    env = read_bundle_env(environ)
    args, server_mode = normalise_command(argv)
    if not server_mode or (len(args) > 1 and args[1] in INFO_ARGS):
        return env, make_plan(args, server_mode, env, {}, {}, None)
    if "VALKEY_PASSWORD" in environ or "VALKEY_PASSWORD_FILE" in environ:
        from .secret import read_password

        try:
            env.password = read_password(environ)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    discovered, warnings = discover_modules(env.modules_dir)
    facts = read_module_facts()
    config = read_server_config(final_server_args(args, env), os.getcwd())
    machine = os.uname().machine
    needs_cpu = any(f.cpu_features.get(machine) for f in facts.values())
    cpu_flags = read_cpu_flags() if needs_cpu else None
    euid = os.geteuid()
    identity = (euid, valkey_account() if euid == 0 else None)
    runtime = gather_runtime(environ) if env.password else None
    announce = config.is_yes("cluster-enabled") and env.announce_ip is None
    from .data_dir import look

    plan = make_plan(
        args,
        server_mode,
        env,
        discovered,
        facts,
        config,
        machine,
        cpu_flags,
        identity,
        runtime,
        own_address=own_address() if announce else None,
        capabilities=effective_capabilities() if euid == 0 else None,
        data=look(config, with_access=euid != 0),
        index_record=read_index_record(config, facts),
    )
    if plan.run_as:
        # Read here as root, the config is opened again by the server after the drop.
        from .file_access import unreadable_config

        problem = unreadable_config(config, *plan.run_as)
        if problem:
            raise UsageError(problem)
    if plan.tls is not None and plan.tls.on:
        from .tls_files import CertificateProblem, check_server_files

        try:
            plan.warnings += check_server_files(plan.tls, plan.run_as)
        except CertificateProblem as exc:
            raise UsageError(str(exc)) from None
    plan.warnings[:0] = warnings
    return env, plan


def print_debug(plan):
    from .settings import redact_args
    from .tokens import join_config_args, split_config_args

    def debug(message):
        print(f"{PROG}: debug: {message}", file=sys.stderr)

    for note in plan.notes:
        debug(note)
    for module in plan.modules:
        debug(f"module {module.key}: {module.path} {join_config_args(redact_args(module.args))} [{module.source}]")
    shown = []
    for arg in plan.argv:
        if arg.startswith("--") and " " in arg:
            arg = join_config_args(redact_args(split_config_args(arg)))
        shown.append(arg)
    shown = redact_args(shown)
    debug("exec: " + " ".join(repr(a) if (" " in a or not a) else a for a in shown))


def main(argv, environ=None):
    environ = os.environ if environ is None else environ
    try:
        env, plan = build_plan(argv, environ)
    except UsageError as exc:
        print_error(str(exc))
        return exc.exit_status
    for message in plan.warnings:
        warn(message)
    if env.debug:
        print_debug(plan)
    if env.dry_run:
        import json

        json.dump(plan.as_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    sys.stderr.flush()
    from .apply import run

    return run(plan)
