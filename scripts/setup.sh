#!/usr/bin/env bash
# Idempotent setup: Debian packages (when missing), the virtual environment, the project install.
# A second run with nothing changed does no work: the install is keyed on a hash of pyproject.toml
# and requirements.lock, stored in .venv/.wonderforge-install.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
EXTRAS=${EXTRAS:-dev,s3,viewer}
DEB_PACKAGES=(libusb-1.0-0 libgomp1 chromium chromium-driver)  # chromium: the browser UI test

# pip, minus the warnings this machine's pip config prints for each missing local index folder.
quiet_pip() {
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" 2>&1 \
    | { grep -v "^WARNING: Location 'file://" || true; }
  return "${PIPESTATUS[0]}"
}

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for c in python3.11 python3.12 python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(not ((3,11) <= sys.version_info[:2] <= (3,12)))'; then
      PY=$c; break
    fi
  done
fi
[ -n "$PY" ] || { echo "[setup] error: Python 3.11 or 3.12 is required (set PYTHON=...)" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtual environment $VENV with $($PY --version)"
  "$PY" -m venv "$VENV"
fi

want=$(cat pyproject.toml requirements.lock 2>/dev/null | sha256sum | cut -d' ' -f1)-$EXTRAS
have=$(cat "$VENV/.wonderforge-install" 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  say "installing wonderforge[$EXTRAS] into $VENV (a few minutes on a fresh machine)"
  quiet_pip pip==26.0.1 --upgrade
  constraint=(); [ -f requirements.lock ] && constraint=(-c requirements.lock)
  quiet_pip "${constraint[@]}" -e ".[$EXTRAS]"
  echo "$want" > "$VENV/.wonderforge-install"
else
  say "environment up to date ($VENV)"
fi
