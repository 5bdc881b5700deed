#!/usr/bin/env bash
# Builds Herarx from this checkout, installs it, and starts the daemon. It switches NO PAM service
# to two-factor: that is a deliberate step of yours (README: "Protecting a PAM service").
#   sudo ./scripts/install.sh          (undo: sudo ./scripts/uninstall.sh [--purge])
# It installs the same files in the same places as the Debian package (scripts/build-deb.sh):
# both take the list from scripts/lib/layout.sh. Running it again upgrades in place and keeps
# /etc/herarx/herarx.toml and the factor store. The daemon runs through systemd where systemd
# runs; else directly (pid in /run/herarxd.pid), with the system bus started if none runs.
set -euo pipefail
HERARX_ROOT=$(cd "$(dirname "$0")/.." && pwd)
export HERARX_ROOT
cd "$HERARX_ROOT"
# shellcheck source=scripts/lib/layout.sh
. scripts/lib/layout.sh
if [ "$(id -u)" != 0 ]; then echo "run as root: sudo $0" >&2; exit 1; fi
if herarx_package_installed; then
  echo "the herarx Debian package is installed: upgrade it with apt/dpkg instead" >&2
  exit 1
fi

# Build needs: a C compiler (bundled SQLite), libpam headers, strip, dpkg-architecture, the bus.
need=(gcc pkg-config libpam0g-dev binutils dpkg-dev dbus-daemon dbus-bin)
miss=(); for p in "${need[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || miss+=("$p"); done
if [ ${#miss[@]} -gt 0 ]; then apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${miss[@]}" >/dev/null; fi
command -v cargo >/dev/null || { echo "cargo is missing: install Rust (https://rustup.rs) first" >&2; exit 1; }

cargo build --release -p herarxd -p herarxctl -p pam_herarx --quiet
herarx_check_sources >&2 || [ "${HERARX_ALLOW_MISSING:-}" = 1 ] || { echo "nothing was installed" >&2; exit 1; }

umask 022
systemd=no
[ -d /run/systemd/system ] && systemd=yes
# The running daemon goes first: it is restarted on the new binary below.
if [ $systemd = yes ]; then
  systemctl stop herarxd.service 2>/dev/null || true
else
  herarx_stop_direct
fi

herarx_stage / system
install -d -m 0700 /var/lib/herarx
pamdir=/usr/lib/$(herarx_multiarch)/security

if [ $systemd = yes ]; then
  if [ -f /etc/systemd/system/herarxd.service ]; then
    # An earlier install.sh put the unit there; it would hide the one installed now.
    echo "note: /etc/systemd/system/herarxd.service overrides /lib/systemd/system/herarxd.service; remove it unless you mean it (use 'systemctl edit herarxd' for local changes)" >&2
  fi
  systemctl daemon-reload
  herarx_reload_bus
  systemctl enable herarxd.service
  systemctl start herarxd.service
else
  # No systemd (containers, minimal hosts): run the system bus and the daemon directly.
  if herarx_bus_runs; then
    herarx_reload_bus
  else
    # A bus killed earlier leaves its socket and pid file behind; dbus-daemon refuses to start
    # over a pid file.
    rm -f /run/dbus/system_bus_socket /run/dbus/pid
    mkdir -p /run/dbus
    dbus-daemon --system --fork  # writes /run/dbus/pid
  fi
  nohup /usr/sbin/herarxd --config /etc/herarx/herarx.toml >>/var/log/herarxd.log 2>&1 </dev/null &
  echo $! > /run/herarxd.pid
fi

for _ in $(seq 50); do
  if dbus-send --system --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.NameHasOwner string:org.herarx.Herarx1 2>/dev/null | grep -q true; then
    echo "herarx installed: herarxd is running; PAM module at $pamdir/pam_herarx.so"
    echo "next: enrol with 'herarxctl totp add' (as each user), then see README 'Protecting a PAM service'"
    exit 0
  fi
  sleep 0.1
done
echo "herarx installed, but herarxd did not come up: see /var/log/herarxd.log or 'journalctl -u herarxd'" >&2
exit 1
