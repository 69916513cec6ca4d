# Shared by scripts/*: install what a command needs, once, on a fresh machine.
# Sourced, not run.

PYTHON="${PYTHON:-$(command -v python3 || command -v python)}"

# need_apt_package COMMAND PACKAGE: install PACKAGE from Debian if COMMAND is missing.
need_apt_package() {
    local command_name="$1" package="$2"
    command -v "$command_name" >/dev/null 2>&1 && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "$command_name is missing: install the $package package (apt-get install $package)." >&2
        exit 1
    fi
    echo "installing $package ..." >&2
    if [ -z "${_MAGEFLOW_APT_UPDATED:-}" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        _MAGEFLOW_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
}

# install_python_package SPEC: editable install of this project with extras.
install_python_package() {
    "$PYTHON" -m pip install --quiet --disable-pip-version-check \
        --root-user-action=ignore -e "$1"
}
