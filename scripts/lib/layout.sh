# shellcheck shell=bash
# The one list of what Herarx installs and where: sourced by scripts/build-deb.sh (stages the
# package root), scripts/install.sh (stages into /) and scripts/uninstall.sh (removes it again),
# so the .deb and the from-source install cannot drift apart. Sourced, never run.
#
# Needs HERARX_ROOT (the checkout). Release artefacts come from $HERARX_ROOT/target/release.
# HERARX_ALLOW_MISSING=1 skips sources that are missing (with a warning) instead of failing:
# for development only, never for a package you ship.

herarx_multiarch() {
  dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch
}

# One line per installed file: MODE DEST KIND SOURCE
#   bin   SOURCE   built artefact in target/release, installed stripped
#   so    SOURCE   built shared object in target/release, installed stripped (--strip-unneeded)
#   file  SOURCE   file of the checkout, copied
#   conf  SOURCE   file of the checkout, a conffile: never overwritten on a live system
#   gz    SOURCE   file of the checkout, gzip -9n (man pages, changelog)
#   comp  SHELL    output of the built `herarxctl completions SHELL`
herarx_layout() {
  local ma
  ma=$(herarx_multiarch)
  cat <<LAYOUT
0755 /usr/sbin/herarxd bin herarxd
0755 /usr/bin/herarxctl bin herarxctl
0644 /usr/lib/$ma/security/pam_herarx.so so libpam_herarx.so
0644 /lib/systemd/system/herarxd.service file packaging/systemd/herarxd.service
0644 /usr/share/dbus-1/system.d/org.herarx.Herarx1.conf file packaging/dbus/org.herarx.Herarx1.conf
0644 /usr/share/dbus-1/system-services/org.herarx.Herarx1.service file packaging/dbus/org.herarx.Herarx1.service
0644 /usr/share/pam-configs/herarx file packaging/pam-configs/herarx
0644 /etc/herarx/herarx.toml conf packaging/herarx.toml
0644 /usr/share/man/man1/herarxctl.1.gz gz packaging/man/herarxctl.1
0644 /usr/share/man/man5/herarx.toml.5.gz gz packaging/man/herarx.toml.5
0644 /usr/share/man/man8/herarxd.8.gz gz packaging/man/herarxd.8
0644 /usr/share/man/man8/pam_herarx.8.gz gz packaging/man/pam_herarx.8
0644 /usr/share/bash-completion/completions/herarxctl comp bash
0644 /usr/share/zsh/vendor-completions/_herarxctl comp zsh
0644 /usr/share/fish/vendor_completions.d/herarxctl.fish comp fish
0644 /usr/share/doc/herarx/copyright file packaging/debian/copyright
0644 /usr/share/doc/herarx/examples/herarxd-delivery.conf file packaging/systemd/herarxd-delivery.conf
0644 /usr/share/doc/herarx/changelog.Debian.gz gz packaging/debian/changelog
0644 /usr/share/lintian/overrides/herarx file packaging/debian/lintian-overrides
LAYOUT
}

# Directories that belong to Herarx alone (removed by uninstall when empty).
herarx_own_dirs() {
  printf '%s\n' /usr/share/doc/herarx/examples /usr/share/doc/herarx /etc/herarx
}

# Every destination path, one a line.
herarx_paths() {
  herarx_layout | awk '{ print $2 }'
}

# The workspace version (Cargo.toml [workspace.package] version).
herarx_version() {
  sed -n '/^\[workspace.package\]/,/^\[/ s/^version *= *"\(.*\)"/\1/p' "$HERARX_ROOT/Cargo.toml" | head -n1
}

# Checks that every source exists (and that herarxctl can write completions). Prints one line
# per missing piece and returns 1 if any is missing.
herarx_check_sources() {
  local mode dest kind src missing=0 ctl="$HERARX_ROOT/target/release/herarxctl"
  while read -r mode dest kind src; do
    case "$kind" in
      bin | so)
        [ -f "$HERARX_ROOT/target/release/$src" ] || { echo "missing: target/release/$src (cargo build --release --workspace)"; missing=1; } ;;
      file | conf | gz)
        [ -f "$HERARX_ROOT/$src" ] || { echo "missing: $src (needed for $dest)"; missing=1; } ;;
      comp)
        if ! [ -x "$ctl" ] || ! "$ctl" completions "$src" 2>/dev/null | grep -q .; then
          echo "missing: \`herarxctl completions $src\` does not work (needed for $dest)"; missing=1
        fi ;;
    esac
  done < <(herarx_layout)
  return "$missing"
}

# Installs one file atomically: written beside DEST and renamed over it, so a login loading the
# PAM module, or the daemon starting, never sees half a file.
_herarx_put() { # MODE DEST KIND SOURCE
  local mode=$1 dest=$2 kind=$3 src=$4 tmp
  tmp="$(dirname "$dest")/.$(basename "$dest").herarx-new"
  install -d -m 0755 "$(dirname "$dest")"
  case "$kind" in
    bin)
      install -m "$mode" "$HERARX_ROOT/target/release/$src" "$tmp"
      strip --remove-section=.comment --remove-section=.note "$tmp" ;;
    so)
      install -m "$mode" "$HERARX_ROOT/target/release/$src" "$tmp"
      strip --remove-section=.comment --remove-section=.note --strip-unneeded "$tmp" ;;
    file | conf)
      install -m "$mode" "$HERARX_ROOT/$src" "$tmp" ;;
    gz)
      gzip -9nc "$HERARX_ROOT/$src" > "$tmp"
      chmod "$mode" "$tmp" ;;
    comp)
      "$HERARX_ROOT/target/release/herarxctl" completions "$src" > "$tmp"
      chmod "$mode" "$tmp" ;;
  esac
  mv -f "$tmp" "$dest"
}

# herarx_stage ROOT MODE: installs every file under ROOT ("/" for the live system).
# MODE "package": everything as listed. MODE "system": an existing conffile is kept (an admin's
# configuration is never overwritten).
herarx_stage() {
  local root=${1%/} how=$2 mode dest kind src
  herarx_check_sources >&2 || {
    if [ "${HERARX_ALLOW_MISSING:-}" = 1 ]; then
      echo "warning: HERARX_ALLOW_MISSING=1: the pieces above are left out" >&2
    else
      echo "error: the pieces above are missing" >&2
      return 1
    fi
  }
  while read -r mode dest kind src; do
    case "$kind" in
      bin | so) [ -f "$HERARX_ROOT/target/release/$src" ] || continue ;;
      file | conf | gz) [ -f "$HERARX_ROOT/$src" ] || continue ;;
      comp) "$HERARX_ROOT/target/release/herarxctl" completions "$src" >/dev/null 2>&1 || continue ;;
    esac
    if [ "$kind" = conf ] && [ "$how" = system ] && [ -e "$root$dest" ]; then
      if ! cmp -s "$HERARX_ROOT/$src" "$root$dest"; then
        echo "kept your $dest (the shipped default is $src)" >&2
      fi
      continue
    fi
    _herarx_put "$mode" "$root$dest" "$kind" "$src"
  done < <(herarx_layout)
}

# Lines of /etc/pam.d that load the installed module (by name or by an installed path), as
# "FILE: LINE". The same test as the package's prerm.
herarx_pam_references() {
  local f
  for f in /etc/pam.d/*; do
    [ -f "$f" ] || continue
    awk -v file="$f" '
      /^[[:space:]]*#/ { next }
      {
        for (i = 1; i <= NF; i++)
          if ($i == "pam_herarx.so" || $i ~ /^\/(usr\/)?lib(64)?\/([^\/]+\/)?security\/pam_herarx\.so$/) {
            print file ": " $0
            next
          }
      }' "$f"
  done
}

# Whether the Debian package is installed (then apt/dpkg own these files, not the scripts).
herarx_package_installed() {
  dpkg-query -W -f='${Status}' herarx 2>/dev/null | grep -q 'install ok installed'
}

# Whether a system bus answers (a socket file alone may be left over from a killed bus).
herarx_bus_runs() {
  [ -S /run/dbus/system_bus_socket ] &&
    dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
      org.freedesktop.DBus.GetId >/dev/null 2>&1
}

# The system bus: reload its configuration if it runs (new or removed policy files).
herarx_reload_bus() {
  if [ -S /run/dbus/system_bus_socket ]; then
    dbus-send --system --type=method_call --dest=org.freedesktop.DBus \
      /org/freedesktop/DBus org.freedesktop.DBus.ReloadConfig >/dev/null 2>&1 || true
  fi
}

# Stops a herarxd started without systemd: by install.sh (/run/herarxd.pid) or by D-Bus
# activation. Waits until it is gone.
herarx_stop_direct() {
  local pid
  if [ -f /run/herarxd.pid ]; then
    pid=$(cat /run/herarxd.pid)
    if [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null | sed 's/ (deleted)$//')" = /usr/sbin/herarxd ]; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f /run/herarxd.pid
  fi
  start-stop-daemon --stop --quiet --oknodo --retry 5 --exec /usr/sbin/herarxd >/dev/null 2>&1 || true
}
