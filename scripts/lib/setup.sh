# Shared by scripts/*: install what a command needs, once, on a fresh machine.
# Sourced, not run.
#
# Python packages go into the project's own virtual environment, .venv (set
# MAGEFLOW_VENV for another place), never into the system interpreter: two
# checkouts on one machine must not re-point each other's `mageflow`, and two
# concurrent runs must not write into one site-packages at once.

_MAGEFLOW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${MAGEFLOW_VENV:-$_MAGEFLOW_ROOT/.venv}"
PYTHON="$VENV/bin/python"

# The interpreter the virtual environment is made from: Python 3.10 or newer.
_base_python() {
    local candidate
    for candidate in "${MAGEFLOW_BASE_PYTHON:-}" python3 python; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    echo "no Python 3.10 or newer found: install python3 (apt-get install python3)." >&2
    return 1
}

# need_apt_package COMMAND PACKAGE: install PACKAGE from Debian if COMMAND is missing.
need_apt_package() {
    local command_name="$1" package="$2"
    command -v "$command_name" >/dev/null 2>&1 && return 0
    _apt_install "$package"
}

_apt_install() {
    if [ "$(id -u)" != 0 ]; then
        echo "missing: install the $* package(s) (apt-get install $*)." >&2
        exit 1
    fi
    echo "installing $* ..." >&2
    if [ -z "${_MAGEFLOW_APT_UPDATED:-}" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        _MAGEFLOW_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

_make_venv() {
    local base
    base=$(_base_python) || exit 1
    if ! "$base" -m venv "$VENV" >/dev/null 2>&1; then
        # Debian's own python3 ships venv separately.
        rm -rf "$VENV"
        _apt_install python3-venv
        "$base" -m venv "$VENV"
    fi
}

# install_python_package SPEC: editable install of this project (with extras)
# into .venv. Skipped when neither the spec nor pyproject.toml changed since
# the last install into this environment: the code itself is editable, so
# only the dependency list can make a reinstall necessary.
install_python_package() {
    local spec="$1"
    mkdir -p "$(dirname "$VENV")"
    # One installer at a time per environment; the others wait, then find
    # the work done.
    exec 9>"$VENV.lock"
    flock 9
    if [ ! -x "$PYTHON" ] || ! "$PYTHON" -c 'import sys' >/dev/null 2>&1; then
        rm -rf "$VENV"
        _make_venv
    fi
    local stamp_file stamp
    stamp_file="$VENV/.mageflow-installed-$(printf '%s' "$spec" | tr -c 'A-Za-z0-9' '_')"
    stamp="$(cd "$_MAGEFLOW_ROOT" && cat pyproject.toml | sha256sum | cut -d' ' -f1) $_MAGEFLOW_ROOT"
    if [ "$(cat "$stamp_file" 2>/dev/null)" != "$stamp" ] \
        || ! "$PYTHON" -c 'import mageflow' >/dev/null 2>&1; then
        (cd "$_MAGEFLOW_ROOT" && "$PYTHON" -m pip install --quiet \
            --disable-pip-version-check -e "$spec")
        printf '%s' "$stamp" >"$stamp_file"
    fi
    flock -u 9
    exec 9>&-
}
