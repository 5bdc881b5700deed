#!/usr/bin/env bash
# Builds Herarx from this checkout, installs it, and starts the daemon. It switches NO PAM service
# to two-factor: that is a deliberate step of yours (README: "Protecting a PAM service").
#   sudo ./scripts/install.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "run as root: sudo $0" >&2; exit 1; fi

# Build needs: a C compiler (bundled SQLite), libpam headers, the bus daemon.
need=(gcc pkg-config libpam0g-dev dbus-daemon dbus-bin)
miss=(); for p in "${need[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || miss+=("$p"); done
if [ ${#miss[@]} -gt 0 ]; then apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${miss[@]}" >/dev/null; fi
command -v cargo >/dev/null || { echo "cargo is missing: install Rust (https://rustup.rs) first" >&2; exit 1; }

cargo build --release --workspace --quiet

# The directory where this system's PAM modules live (pam_unix.so is always there).
pamdir=$(dirname "$(find /lib /usr/lib /lib64 /usr/lib64 -name pam_unix.so -path '*security*' 2>/dev/null | head -n1)")
[ -d "$pamdir" ] || { echo "cannot find the PAM module directory (pam_unix.so)" >&2; exit 1; }

install -m 0755 target/release/herarxd /usr/sbin/herarxd
install -m 0755 target/release/herarxctl /usr/bin/herarxctl
install -m 0644 target/release/libpam_herarx.so "$pamdir/pam_herarx.so"
install -D -m 0644 packaging/dbus/org.herarx.Herarx1.conf /usr/share/dbus-1/system.d/org.herarx.Herarx1.conf
install -d -m 0755 /etc/herarx
# Never overwrite an admin's config.
[ -e /etc/herarx/herarx.toml ] || install -m 0644 packaging/herarx.toml /etc/herarx/herarx.toml
install -d -m 0700 /var/lib/herarx

if [ -d /run/systemd/system ]; then
  install -m 0644 packaging/systemd/herarxd.service /etc/systemd/system/herarxd.service
  systemctl daemon-reload
  systemctl reload dbus 2>/dev/null || true
  systemctl enable --now herarxd.service
  systemctl restart herarxd.service
else
  # No systemd (containers, minimal hosts): run the system bus and the daemon directly.
  if [ ! -S /run/dbus/system_bus_socket ]; then
    mkdir -p /run/dbus
    dbus-daemon --system --fork
  else
    dbus-send --system --type=method_call --dest=org.freedesktop.DBus / org.freedesktop.DBus.ReloadConfig || true
  fi
  if [ -f /run/herarxd.pid ] && kill -0 "$(cat /run/herarxd.pid)" 2>/dev/null; then
    kill "$(cat /run/herarxd.pid)"; sleep 0.5
  fi
  nohup /usr/sbin/herarxd --config /etc/herarx/herarx.toml >>/var/log/herarxd.log 2>&1 &
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
