#!/usr/bin/env bash
# What the test suite and the benchmark need on a Debian/Ubuntu machine: real components only.
# Installs only what is missing, so a second run costs nothing.
set -euo pipefail
needed=(dbus-daemon dbus-bin pamtester oathtool libpam0g-dev libpam-google-authenticator
        libpam-modules passwd util-linux pkg-config gcc
        # The packaging test: build the .deb (dpkg-deb, dpkg-shlibdeps, strip, readelf), check it,
        # and install it with D-Bus activation (dbus: system.conf and the launch helper) and
        # pam-auth-update (libpam-runtime).
        dpkg-dev binutils lintian dbus libpam-runtime
        # The man page tests (man --warnings, groff -ww), `rpmspec -P` on the RPM spec, and the
        # unit tests: systemd-analyze, and the sandbox test's seccomp filter (python3, libseccomp).
        man-db groff-base rpm systemd python3 libseccomp2)
missing=()
for p in "${needed[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install a Rust toolchain (https://rustup.rs) and run this again" >&2
  exit 1
fi
