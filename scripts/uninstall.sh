#!/usr/bin/env bash
# Undoes scripts/install.sh: stops herarxd and removes every file it installed (the list in
# scripts/lib/layout.sh). Keeps /etc/herarx (your configuration) and /var/lib/herarx (the factor
# store: every enrolment) unless --purge.
#   sudo ./scripts/uninstall.sh [--purge]
# If the pam-auth-update profile was enabled it is removed first, so no PAM stack ever loads a
# missing module; if another PAM file still loads pam_herarx.so, nothing is removed.
set -euo pipefail
HERARX_ROOT=$(cd "$(dirname "$0")/.." && pwd)
export HERARX_ROOT
# shellcheck source=scripts/lib/layout.sh
. "$HERARX_ROOT/scripts/lib/layout.sh"
purge=no
for a in "$@"; do
  case "$a" in
    --purge) purge=yes ;;
    -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--purge]" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" != 0 ]; then echo "run as root: sudo $0" >&2; exit 1; fi
if herarx_package_installed; then
  echo "the herarx Debian package is installed: use 'apt remove herarx' (or purge) instead" >&2
  exit 1
fi

refuse() {
  echo "these PAM files still load pam_herarx.so:" >&2
  echo "$1" >&2
  echo "remove those lines first (keep a root shell open); nothing was uninstalled" >&2
  exit 1
}
refs=$(herarx_pam_references | grep -v '^/etc/pam.d/common-' || true)
[ -z "$refs" ] || refuse "$refs"
if [ -n "$(herarx_pam_references)" ] && command -v pam-auth-update >/dev/null; then
  pam-auth-update --package --remove herarx
fi
refs=$(herarx_pam_references || true)
[ -z "$refs" ] || refuse "$refs"

if [ -d /run/systemd/system ]; then
  systemctl disable --now herarxd.service 2>/dev/null || true
fi
herarx_stop_direct

herarx_paths | while read -r p; do
  [ "$purge" = no ] && [ "$p" = /etc/herarx/herarx.toml ] && continue
  rm -f "$p" "$(dirname "$p")/.$(basename "$p").herarx-new"
  # Directories this left empty, unless a package owns them (e.g. /usr/share/zsh).
  d=$(dirname "$p")
  while [ "$d" != / ] && [ -d "$d" ] && [ -z "$(ls -A "$d")" ] && ! dpkg -S "$d" >/dev/null 2>&1; do
    case "$d" in /usr | /usr/share | /usr/lib | /usr/bin | /usr/sbin | /lib | /etc | /var | /var/lib) break ;; esac
    rmdir "$d"
    d=$(dirname "$d")
  done
done
if [ "$purge" = yes ]; then
  rm -rf /etc/herarx /var/lib/herarx
  rm -f /var/log/herarxd.log
  # pam-auth-update's memory of the profile, if it ever saw it.
  if [ -f /var/lib/pam/seen ] && grep -qx herarx /var/lib/pam/seen && command -v pam-auth-update >/dev/null; then
    pam-auth-update --package --remove herarx
  fi
fi
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
herarx_reload_bus
echo "herarx uninstalled$([ "$purge" = yes ] && echo ", configuration and factor store deleted" || echo "; kept /etc/herarx and /var/lib/herarx (--purge deletes them)")"
