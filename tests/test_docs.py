"""The README documents every environment variable the code reads (and the deployment sets),
and names the Valkey that is pinned."""

import re
from pathlib import Path

from valkey_bundle.module_files import parse_env_file

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
# Variables of the platform, not of the project.
GENERAL = {"PATH", "HOME", "POD_NAME", "POD_NAMESPACE"}


def documented(name):
    return f"`{name}`" in README


def test_every_variable_the_entrypoint_reads_is_in_the_readme():
    source = "\n".join(p.read_text() for p in (ROOT / "entrypoint").rglob("*.py"))
    names = set(re.findall(r'"((?:VALKEY|POD)_[A-Z0-9_]*[A-Z0-9]|DEBUG|TMPDIR)"', source))
    assert {"VALKEY_MODULES", "DEBUG", "VALKEY_PASSWORD_FILE"} <= names  # the scan finds them
    missing = sorted(n for n in names - GENERAL if not documented(n))
    assert not missing, f"read by the entrypoint, missing from README.md: {missing}"
    assert documented("<KEY>_MODULE_ARGS")


def test_every_variable_the_deployment_sets_is_in_the_readme():
    manifest = (ROOT / "deploy" / "k8s" / "base" / "statefulset.yaml").read_text()
    names = set(re.findall(r"- name: ([A-Z][A-Z0-9_]+)\n", manifest))
    assert "VALKEY_CLUSTER_NODES" in names
    missing = sorted(n for n in names - GENERAL if not documented(n))
    assert not missing, f"set in deploy/k8s, missing from README.md: {missing}"


# Ports only the cluster's members may reach: the cluster bus and search's coordinator,
# which takes no password (port + 10000 and port + 20294 for 6379).
MEMBER_ONLY_PORTS = (16379, 26673)


def shell_examples(path):
    """Every command in the ```sh blocks of a Markdown file, continuation lines joined."""
    commands, block = [], None
    for line in path.read_text().splitlines():
        if block is None:
            if line.strip().startswith("```sh"):
                block = []
        elif line.strip().startswith("```"):
            commands += "\n".join(block).replace("\\\n", " ").splitlines()
            block = None
        else:
            block.append(line)
    return commands


def published_ports(command):
    """(container port ranges published by a docker command, whether it publishes every exposed port)."""
    import shlex

    tokens = shlex.split(command, comments=True)
    ranges, every = [], False
    for i, token in enumerate(tokens):
        spec = None
        if token in ("-p", "--publish") and i + 1 < len(tokens):
            spec = tokens[i + 1]
        elif token.startswith("--publish="):
            spec = token.split("=", 1)[1]
        elif token.startswith("-p") and token[2:3].isdigit():
            spec = token[2:]
        elif token in ("-P", "--publish-all") or token.startswith("--publish-all="):
            every = True
        if spec:
            first, _, last = spec.split("/")[0].rsplit(":", 1)[-1].partition("-")
            ranges.append((int(first), int(last or first)))
    return ranges, every


def test_the_port_scan_sees_publishing():
    assert published_ports("docker run -d -p 6379:6379 -p 127.0.0.1:26000-27000:26000-27000/tcp x") == (
        [(6379, 6379), (26000, 27000)],
        False,
    )
    assert published_ports("docker run --publish=26673 -P x") == ([(26673, 26673)], True)
    commands = shell_examples(ROOT / "README.md")
    assert any("-p 127.0.0.1:6379:6379" in c and "SEARCH_MODULE_ARGS" in c for c in commands), "continuations joined"


def test_no_example_publishes_the_member_only_ports():
    """Published, 26673 would let anyone query the indexes without the password."""
    docs = [ROOT / "README.md", *sorted((ROOT / "deploy").rglob("*.md"))]
    for doc in docs:
        for command in shell_examples(doc):
            ranges, every = published_ports(command)
            assert not every, f"{doc.name}: -P publishes every exposed port, 26673 too: {command}"
            for first, last in ranges:
                for port in MEMBER_ONLY_PORTS:
                    assert not first <= port <= last, f"{doc.name}: publishes {port}: {command}"


# A release named in prose (9.0.5, v9.0.5; not inside 10.9.0.5 or 9.0.5.1), and the
# forms that name a minimum instead (">= 9.0.1", "≥ 9.0.1", "9.0.1 or newer"), as
# modules/update-pins reads them when it rewrites the README.
RELEASE = re.compile(r"(?<![\w.])v?(\d+)\.(\d+)\.(\d+)(?![\w]|\.\d)")
MINIMUM_BEFORE = re.compile(r"(?:>=|≥)\s*$")
MINIMUM_AFTER = re.compile(r"^\s+or (?:newer|later)\b")


def valkey_mentions(text, line):
    """(line number, version) of every release of Valkey's X.Y LINE the text names, minimums aside."""
    found = []
    for match in RELEASE.finditer(text):
        before, after = text[max(0, match.start() - 4) : match.start()], text[match.end() : match.end() + 12]
        if (match[1], match[2]) != line or MINIMUM_BEFORE.search(before) or MINIMUM_AFTER.match(after):
            continue
        found.append((text.count("\n", 0, match.start()) + 1, ".".join(match.group(1, 2, 3))))
    return found


def test_the_readme_names_the_pinned_valkey():
    """The image tags and examples name the Valkey of modules/valkey/module.env, which
    modules/update-pins rewrites them to: a release of that line written by hand
    elsewhere would fall behind the pin."""
    version = parse_env_file((ROOT / "modules" / "valkey" / "module.env").read_text())["VERSION"]
    major, minor, _ = version.split(".")
    assert valkey_mentions("valkey-bundle:9.0.3, v9.0.3, 10.9.0.3, >= 9.0.1, 9.0.1 or newer", ("9", "0")) == [
        (1, "9.0.3"),
        (1, "9.0.3"),
    ]
    mentions = valkey_mentions(README, (major, minor))
    assert f"`{version}`" in README and f"valkey-bundle:{version}" in README, "the tags table and examples"
    stale = [f"README.md:{number}: {found}" for number, found in mentions if found != version]
    assert not stale, f"not the pinned Valkey {version} (modules/valkey/module.env): {stale}"


# ------------------------------------------------------------------ the Troubleshooting table

# What the table quotes that the server prints, not this project's code.
SERVER_MESSAGES = {
    "Bad directive or wrong number of arguments ... 'use-coordinator'",
    "Module name is busy",
    "Unused Module Configuration",
    "Error moving temp append only file ... Permission denied",
    "Can't open the append-only file ... Permission denied",
    "MISCONF Errors writing to the AOF file: No space left on device",
    "Bad file format reading the append only file",
    # valkey-search's replies
    "Index with name 'NAME' not found",
    "Index NAME in database 0 already exists.",
    "Unable to contact all cluster members",
}
# Quoted in the symptom column but not messages: settings, states, commands.
NOT_MESSAGES = {"--use-coordinator yes", "fail", "./build.sh", "FT.SEARCH", "FT.CREATE", "FT.DROPINDEX"}
# What the project's programs put before a message: their names, the kind, the helper's name.
PREFIXES = re.compile(
    r"^(?:(?:bundle-docker-entrypoint|bundle-healthcheck|bundle-info|\./build\.sh|build\.sh|[\w/.-]+\.sh): )?"
    r"(?:(?:error|warning): )?(?:(?:cluster bootstrap|search index guard): )?"
)
SHARE = 0.4  # of a quote's characters, at least, the code's own text (the rest: example values)
WILD = None  # a value the code puts in (an f-string field, a shell expansion)
GAP = None  # "..." in a quote: text left out


def troubleshooting_quotes(text=README):
    """The backticked texts of the symptom column of the Troubleshooting table."""
    section = text.split("\n## Troubleshooting\n", 1)[1].split("\n## ", 1)[0]
    quotes = []
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith(("| symptom", "|---")):
            quotes += re.findall(r"`([^`]+)`", line[2:].split(" | ", 1)[0])
    return quotes


def _python_strings(node):
    """The text of a str constant, f-string or sum of them: a list of characters and WILD."""
    import ast

    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return list(node.value)
    if isinstance(node, ast.JoinedStr):
        out = []
        for value in node.values:
            part = _python_strings(value)
            out += part if part is not None else [WILD]
        return out
    if isinstance(node, ast.FormattedValue):
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _python_strings(node.left), _python_strings(node.right)
        if left is None and right is None:
            return None
        return (left if left is not None else [WILD]) + (right if right is not None else [WILD])
    return None


def code_messages():
    """Every string the entrypoint, build.sh and modules/*.sh can print, as characters and WILDs."""
    import ast

    found = []
    pins = [ROOT / "modules" / "update-pins", *sorted((ROOT / "modules" / "update_pins").glob("*.py"))]
    for path in sorted((ROOT / "entrypoint").rglob("*.py")) + pins:
        for node in ast.walk(ast.parse(path.read_text())):
            text = _python_strings(node)
            if text and any(c is not WILD for c in text):
                found.append(text)
    expansion = re.compile(r"\$\([^)]*\)|\$\{[^}]*\}|\$\w+|\$[@*#?]")
    for path in [ROOT / "build.sh", *sorted((ROOT / "scripts").glob("*.sh")), *sorted((ROOT / "modules").glob("*.sh"))]:
        for quoted in re.findall(r'"((?:[^"\\]|\\.)*)"', path.read_text()):
            pieces = expansion.split(quoted)
            text = []
            for i, piece in enumerate(pieces):
                text += [WILD] * bool(i) + list(piece.replace('\\"', '"'))
            found.append(text)
    return found


def explained(quote, messages):
    """How many characters of ``quote`` (after its program's prefixes; "..." left out) are the
    code's own text, aligned with what one message prints: the quote starts anywhere in it and
    stops anywhere; a value the code puts in takes the quote's example text (which neither
    starts nor ends with a blank: the code writes its own separators), or is another message,
    from its start (a message passed as a value); "..." skips the code's text.  None when no
    message accounts for every character of the quote."""
    body = PREFIXES.sub("", quote, count=1)
    doc = []
    for i, piece in enumerate(body.split("...")):
        doc += [GAP] * bool(i) + list(piece)
    shingles = {body[i : i + 8] for i in range(len(body) - 7)}
    candidates = []
    for message in {tuple(m) for m in messages}:
        runs = [r for r in "".join(c if c is not WILD else "\0" for c in message).split("\0") if r]
        if sum(map(len, runs)) >= 12:  # only messages with 8 characters in a row of the quote
            keep = any(r[i : i + 8] in shingles for r in runs for i in range(len(r) - 7))
        else:  # a joint such as "{a}: {b}", or a value of 4 characters or more: where the quote has it
            keep = all(r in body for r in runs) and (WILD in message or len(message) >= 4)
        if keep:
            candidates.append(message)
    targets = [sum(c is not WILD for c in m) >= 4 for m in candidates]
    minus = float("-inf")
    # Per message and position j: at j (fresh), or inside the value at j having taken text that
    # ends with a non-blank (may end there) or with a blank (may not).  The row of i + 1 first.
    nxt = [([0] * (len(m) + 1), [0] * (len(m) + 1), [0] * (len(m) + 1)) for m in candidates]
    for i in range(len(doc) - 1, -1, -1):
        d = doc[i]
        rows = []
        for k, message in enumerate(candidates):
            m = len(message)
            f_next, b_next, c_next = nxt[k]
            fresh, ends, blank = [minus] * (m + 1), [minus] * (m + 1), [minus] * (m + 1)
            for j in range(m, -1, -1):
                c = message[j] if j < m else ""
                if d is GAP:
                    fresh[j] = max(f_next[j], fresh[j + 1]) if j < m else f_next[j]
                    if c is WILD:
                        ends[j] = max(b_next[j], fresh[j + 1])
                        blank[j] = b_next[j]
                elif c is WILD:
                    took = b_next[j] if d != " " else c_next[j]
                    fresh[j] = max(fresh[j + 1], took if d != " " else minus)
                    ends[j] = max(took, fresh[j + 1])
                    blank[j] = took
                elif c == d:
                    fresh[j] = f_next[j + 1] + 1
            rows.append((fresh, ends, blank))
        # A value the code puts in may be another message: go on there, from its start (one with
        # text of its own: not a mere joint of values such as " {} ").
        jump = max((r[0][0] for r, whole in zip(rows, targets, strict=True) if whole), default=minus)
        for k, message in enumerate(candidates):
            fresh, ends, _ = rows[k]
            for j in range(len(message) - 1, -1, -1):
                if message[j] is WILD:
                    fresh[j] = max(fresh[j], jump, fresh[j + 1])
                    ends[j] = max(ends[j], fresh[j + 1])
                elif d is GAP:
                    fresh[j] = max(fresh[j], fresh[j + 1])
        nxt = rows
    score = max((max(r[0]) for r in nxt), default=minus)
    return None if score == minus else score


def literal_length(quote):
    return len(PREFIXES.sub("", quote, count=1).replace("...", ""))


def test_the_message_check_tells_printed_from_invented():
    messages = code_messages()
    invented = "warning: ... reachable without a password"  # the table's quote of what prints
    assert (explained(invented, messages) or 0) < SHARE * literal_length(invented)
    printed = "warning: no password and protected-mode is off: ..."
    assert explained(printed, messages) == literal_length(printed) == 39
    assert explained("error: VALKEY_MODULES: unknown module 'serch' ... did you mean SEARCH?", messages) >= 30
    assert explained("error: ...: unbalanced quotes", messages) == 19
    assert (explained("./build.sh: error: no such message anywhere in the code", messages) or 0) < 10


def test_every_message_the_troubleshooting_table_quotes_is_one_the_code_can_print():
    """A symptom is what users search for: quoted wrong, it finds nothing."""
    messages = code_messages()
    quotes = troubleshooting_quotes()
    assert len(quotes) > 20 and "Module name is busy" in quotes  # the scan sees the table
    wrong = []
    for quote in quotes:
        if quote in SERVER_MESSAGES | NOT_MESSAGES:
            continue
        score = explained(quote, messages)
        # Most of the quote must be the code's own text, not example values put in its place.
        if score is None or score < SHARE * literal_length(quote):
            wrong.append(f"{quote!r} (explained: {score} of {literal_length(quote)} characters)")
    assert not wrong, f"quoted in Troubleshooting, printed by no code: {wrong}"
    unused = (SERVER_MESSAGES | NOT_MESSAGES) - set(quotes)
    assert not unused, f"listed here as quoted, no longer in the table: {unused}"


# ------------------------------------------------------------------ examples a newcomer copies


def docs():
    return [ROOT / "README.md", *sorted((ROOT / "deploy").rglob("*.md"))]


def test_no_example_publishes_the_server_everywhere_without_a_password():
    """-p 6379:6379 listens on every address of the host; with protected mode off, a server
    without a password there is anyone's."""
    import shlex

    for doc in docs():
        for command in shell_examples(doc):
            if "docker run" not in command:
                continue
            tokens = shlex.split(command, comments=True)
            for i, token in enumerate(tokens[:-1]):
                if token in ("-p", "--publish") and tokens[i + 1].count(":") == 1:  # no host address
                    assert "VALKEY_PASSWORD" in command, f"{doc.name}: published everywhere, no password: {command}"


def test_no_example_puts_a_password_in_a_process_list():
    """valkey-cli -a, and docker -e NAME=value, show the secret to whoever lists processes."""
    leaks = re.compile(
        r"valkey-cli\b[^|;&]*\s-a\s|-e\s+(?:VALKEYCLI_AUTH|REDISCLI_AUTH|VALKEY_PASSWORD)=|--requirepass\b"
    )
    for doc in docs():
        for command in shell_examples(doc):
            assert not leaks.search(command), f"{doc.name}: a password on a command line: {command}"


def test_a_secret_goes_into_a_namespace_that_exists():
    created = {"valkey-bundle"}  # what `kubectl apply -k deploy/k8s` creates (base/namespace.yaml)
    assert "name: valkey-bundle\n" in (ROOT / "deploy" / "k8s" / "base" / "namespace.yaml").read_text()
    for doc in docs():
        namespaces = set()
        for command in shell_examples(doc):
            if re.search(r"kubectl (?:-n \S+ )?apply -k deploy/k8s", command):
                namespaces |= created
            found = re.search(r"kubectl create namespace (\S+)", command)
            if found:
                namespaces.add(found[1])
            secret = re.search(r"kubectl -n (\S+) create secret", command)
            if secret:
                assert secret[1] in namespaces, f"{doc.name}: the Secret comes before its namespace: {command}"


def readme_block_after(heading):
    """The first ```sh block of the README section ``heading`` (its lines, continuations kept)."""
    section = README.split(f"\n{heading}\n", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def test_the_cluster_example_waits_for_the_cluster():
    """Right after the last `docker run` the cluster cannot be formed yet: a lone readiness
    check would fail, and look like a broken example."""
    block = readme_block_after("### In a cluster")
    assert "VALKEY_CLUSTER_ANNOUNCE_IP" not in block  # the example as a newcomer runs it: Docker gives the address
    checks = [line for line in block.splitlines() if "bundle-healthcheck readiness" in line]
    assert checks and all(re.match(r"until docker exec \S+ bundle-healthcheck readiness; do sleep", c) for c in checks)


def test_what_a_newcomer_looks_for_is_in_the_readme():
    run_it = README.split("\n## Run it\n", 1)[1].split("\n## ", 1)[0]
    connect = run_it.split("\n### Connect\n", 1)[1].split("\n### ", 1)[0]
    for needed in ("docker exec -it valkey valkey-cli", "valkey-cli -h 127.0.0.1", "VALKEYCLI_AUTH", "bundle-info"):
        assert needed in connect, needed
    cluster = run_it.split("\n### In a cluster\n", 1)[1].split("\n### ", 1)[0]
    assert "docker run --network valkey" in cluster and "another" in cluster  # clients outside the network
    health = README.split("\n## Health checks\n", 1)[1].split("\n## ", 1)[0]
    assert "`(healthy)` in `docker ps`" in health and "liveness" in health
    assert "--cap-drop ALL --cap-add SETUID --cap-add SETGID" in README  # a hardened docker run
    assert "`redis-server ...`" in README.split("\n## The command\n", 1)[1]


# ------------------------------------------------------------------ the architecture map

ARCHITECTURE = ROOT / "docs" / "architecture.md"


def map_paths(text):
    """Every path the map names: a backquoted word with a slash, or a file at the top."""
    found = set()
    for word in re.findall(r"`([^`\s]+)`", text):
        if ("/" in word and not word.startswith("/")) or word in ("build.sh", "Dockerfile"):
            found.add(word.split("#", 1)[0].rstrip("/") or word)
    return found


def test_the_map_scan_sees_paths():
    assert map_paths("`a/b.py` and `build.sh`, not `VALKEY_X` or `--flag`") == {"a/b.py", "build.sh"}


def test_every_path_the_architecture_map_names_exists():
    text = ARCHITECTURE.read_text()
    paths = map_paths(text)
    assert len(paths) > 50 and "entrypoint/valkey_bundle/cluster/bootstrap.py" in paths
    missing = sorted(p for p in paths if not ((ROOT / p).exists() or any(ROOT.glob(p))))
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"
    assert "docs/architecture.md" in README  # the README points newcomers at it


def test_the_architecture_map_names_every_file_that_does_a_step():
    named = map_paths(ARCHITECTURE.read_text())
    code = [p for p in (ROOT / "entrypoint").rglob("*") if p.is_file() and p.suffix in ("", ".py")]
    code += [p for p in (ROOT / "scripts").glob("*") if p.is_file()]
    code += [p for p in (ROOT / "modules").glob("*") if p.is_file() and p.suffix in (".sh", "")]
    unnamed = sorted(
        str(p.relative_to(ROOT))
        for p in code
        if p.name not in ("__init__.py", "README.md", ".gitignore") or p.parent.name == "cluster"
        if str(p.relative_to(ROOT)) not in named and "__pycache__" not in p.parts
    )
    assert not unnamed, f"files the map in docs/architecture.md does not name: {unnamed}"
