#!/usr/bin/env bash
# Install what bindery needs on a Debian 12 machine (run as root from anywhere; idempotent).
#
#   - apt packages, only those missing (podman, registry, debootstrap, chromium for UI tests, ...)
#   - Debian's docker-registry service stopped and disabled (bindery runs its own registries)
#   - <project>/.venv with `pip install -e '.[stack,test]'`, only when pyproject.toml changed (the
#     hub's authenticators and the sign-in tests' OpenID Connect provider, django-oauth-toolkit, too)
#   - node_modules with `npm ci` (or `npm install`), only when package(-lock).json changed
#
# Environment: BINDERY_VENV (default <project>/.venv), PYTHON (default python3),
# BINDERY_SKIP_APT=1 to skip the apt step (e.g. unprivileged CI re-runs).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BINDERY_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
APT_PACKAGES=(podman buildah skopeo runc docker-registry debootstrap iproute2 git chromium uidmap
              haproxy redis-server
              slirp4netns fuse-overlayfs containernetworking-plugins nftables
              python3 python3-venv python3-pip ca-certificates tar
              prometheus
              systemd e2fsprogs)  # systemd-analyze checks the unit `bindery systemd-unit` writes; mkfs.ext4

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# Prefer the host's CA bundle (it holds any TLS-intercepting proxy's CA) for pip and npm.
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
  export PIP_CERT="${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}"
  export NODE_EXTRA_CA_CERTS="${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}"
fi

hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1; }

# -- apt ---------------------------------------------------------------------------------------
install_apt() {
  if [[ "${BINDERY_SKIP_APT:-0}" == 1 ]]; then say "apt: skipped (BINDERY_SKIP_APT=1)"; return; fi
  local missing=() pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
  if ((${#missing[@]} == 0)); then say "apt: all packages present"; return; fi
  if [[ $EUID -ne 0 ]]; then
    echo "missing apt packages (${missing[*]}); run as root or install them" >&2; exit 1
  fi
  say "apt: installing ${missing[*]}"
  # Keep package scripts from starting services (docker-registry would take port 5000).
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 755 "$policy"; created_policy=1
  fi
  local rc=0
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq "${missing[@]}"; } || rc=$?
  if [[ $created_policy == 1 ]]; then rm -f "$policy"; fi
  return $rc
}

# -- Debian's registry service must not occupy port 5000 ---------------------------------------
quiet_registry_service() {
  dpkg-query -W -f='${Status}' docker-registry 2>/dev/null | grep -q "install ok installed" || return 0
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
    if systemctl is-enabled --quiet docker-registry 2>/dev/null \
       || systemctl is-active --quiet docker-registry 2>/dev/null; then
      say "stopping and disabling the docker-registry system service"
      systemctl disable --now docker-registry >/dev/null 2>&1 || true
    fi
  elif [[ -x /etc/init.d/docker-registry ]]; then
    if /etc/init.d/docker-registry status >/dev/null 2>&1; then
      say "stopping the docker-registry system service"
      /etc/init.d/docker-registry stop >/dev/null 2>&1 || true
    fi
    command -v update-rc.d >/dev/null && update-rc.d docker-registry disable >/dev/null 2>&1 || true
  fi
}

# -- Python ------------------------------------------------------------------------------------
install_python() {
  if [[ ! -x "$VENV/bin/python" ]]; then
    say "python: creating $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  local stamp="$VENV/.bindery-pyproject.sha256" want
  want="$(hash_of "$ROOT/pyproject.toml")"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] \
     && "$VENV/bin/python" -c "import bindery" 2>/dev/null; then
    say "python: up to date"; return
  fi
  say "python: pip install -e '.[stack,test]'"
  (cd "$ROOT" && "$VENV/bin/python" -m pip install -q -e '.[stack,test]')
  echo "$want" >"$stamp"
}

# -- node ----------------------------------------------------------------------------------------
install_node() {
  local stamp="$ROOT/node_modules/.bindery-package.sha256" want
  want="$(hash_of "$ROOT/package.json" "$ROOT/package-lock.json")"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" \
        && -x "$ROOT/node_modules/.bin/configurable-http-proxy" ]]; then
    say "node: up to date"; return
  fi
  if [[ -f "$ROOT/package-lock.json" ]]; then
    say "node: npm ci"; (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
  else
    say "node: npm install"; (cd "$ROOT" && npm install --no-audit --no-fund --loglevel=error)
  fi
  echo "$want" >"$stamp"
}

install_apt
quiet_registry_service
install_python
install_node
"$VENV/bin/bindery" --help >/dev/null
say "done: $VENV/bin/bindery up  (state in \${BINDERY_DATA_DIR:-~/.bindery})"
