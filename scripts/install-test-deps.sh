#!/usr/bin/env bash
# What the test suite and the benchmark need on a Debian/Ubuntu machine: real components only.
# Installs only what is missing, so a second run costs nothing.
set -euo pipefail
needed=(dbus-daemon dbus-bin pamtester oathtool libpam0g-dev libpam-google-authenticator
        libpam-modules passwd util-linux pkg-config gcc g++
        # The packaging test: build the .deb (dpkg-deb, dpkg-shlibdeps, strip, readelf), check it,
        # and install it with D-Bus activation (dbus: system.conf and the launch helper) and
        # pam-auth-update (libpam-runtime).
        dpkg-dev binutils lintian dbus libpam-runtime
        # The man page tests (man --warnings, groff -ww), `rpmspec -P` on the RPM spec, and the
        # unit tests: systemd-analyze, and the sandbox test's seccomp filter (python3, libseccomp).
        man-db groff-base rpm systemd python3 libseccomp2
        # The SSH tests: OpenSSH's own server under a private PAM service, and two real clients
        # (the stock ssh, and paramiko run by Debian's /usr/bin/python3).
        openssh-server openssh-client python3-paramiko
        # Test hosts of their own (network namespaces): remote clients from non-loopback addresses.
        iproute2
        # The email tests: a real SMTP server on loopback.
        python3-aiosmtpd
        # The SMS tests: curl, an independent HTTP client for the loopback HTTP sink.
        curl
        # FIDO2: the daemon reaches security keys through ctap-hid-fido2 and hidapi (libudev);
        # the virtual-key tests build the software authenticator (bindgen needs libclang).
        libudev-dev libclang-dev)
missing=()
for p in "${needed[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  apt-get update -qq
  # Start no service while installing (openssh-server would start the machine's own sshd on
  # port 22 where no systemd runs): Debian's policy-rc.d convention, only if none is in place.
  policy=/usr/sbin/policy-rc.d
  ours=no
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 0755 "$policy"
    ours=yes
    trap 'rm -f "$policy"' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  if [ "$ours" = yes ]; then
    rm -f "$policy"
    trap - EXIT
  fi
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install a Rust toolchain (https://rustup.rs) and run this again" >&2
  exit 1
fi
# The fuzz targets (scripts/fuzz.sh): cargo-fuzz from crates.io, built with the stable toolchain.
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing: cargo-fuzz (cargo install cargo-fuzz --locked)" >&2
  cargo install cargo-fuzz --locked --quiet
fi
