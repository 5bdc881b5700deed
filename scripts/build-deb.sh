#!/usr/bin/env bash
# Builds the Debian package from this checkout:
#   ./scripts/build-deb.sh        ->  target/debian/herarx_<version>_<arch>.deb
# Runs `cargo build --release` of the shipped crates, stages the files listed in scripts/lib/layout.sh
# (the same list scripts/install.sh installs) and packs them with dpkg-deb. No root needed.
# Needs: cargo, dpkg-dev (dpkg-architecture, dpkg-shlibdeps), binutils (strip), gzip.
# HERARX_ALLOW_MISSING=1 builds even when a man page or completions are missing (development
# only: such a package is incomplete and the packaging test rejects it).
set -euo pipefail
HERARX_ROOT=$(cd "$(dirname "$0")/.." && pwd)
export HERARX_ROOT
cd "$HERARX_ROOT"
# shellcheck source=scripts/lib/layout.sh
. scripts/lib/layout.sh

for tool in cargo dpkg-deb strip gzip; do
  command -v "$tool" >/dev/null || { echo "build-deb: $tool is missing" >&2; exit 1; }
done

cargo build --release -p herarxd -p herarxctl -p pam_herarx --quiet

upstream=$(herarx_version)
# The Debian revision comes from the top entry of packaging/debian/changelog, which must be
# about this upstream version.
version=$(sed -n '1s/^herarx (\([^)]*\)).*/\1/p' packaging/debian/changelog)
case "$version" in
  "$upstream"-*) ;;
  *) echo "build-deb: packaging/debian/changelog starts with version '$version', but Cargo.toml says $upstream: add a changelog entry '$upstream-1'" >&2
     exit 1 ;;
esac
arch=$(dpkg --print-architecture)

out=target/debian
root=$out/herarx_${version}_$arch
deb=$out/herarx_${version}_$arch.deb
rm -rf "$root"
mkdir -p "$root"
umask 022
herarx_stage "$root" package

# Control area.
mkdir -m 0755 "$root/DEBIAN"
for f in postinst prerm postrm; do
  install -m 0755 "packaging/debian/$f" "$root/DEBIAN/$f"
done
install -m 0644 packaging/debian/conffiles "$root/DEBIAN/conffiles"

# Depends: the shared libraries the binaries link (dpkg-shlibdeps), then what the scripts and
# the design need: a system bus, and pam-auth-update (libpam-runtime >= 1.0.1-6).
shlibs=""
if command -v dpkg-shlibdeps >/dev/null; then
  tmp=$(mktemp -d)
  mkdir "$tmp/debian"
  printf 'Source: herarx\n\nPackage: herarx\nArchitecture: any\n' > "$tmp/debian/control"
  objs=()
  while read -r _ dest kind _; do
    case "$kind" in bin | so) objs+=("$PWD/$root$dest") ;; esac
  done < <(herarx_layout)
  shlibs=$(cd "$tmp" && dpkg-shlibdeps -O "${objs[@]}" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
  rm -rf "$tmp"
fi
[ -n "$shlibs" ] || shlibs="libc6 (>= 2.34), libgcc-s1 (>= 4.2), libpam0g (>= 0.99.7.1)"
depends="$shlibs, dbus-system-bus | dbus, libpam-runtime (>= 1.0.1-6)"

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
    -e "s/@DEPENDS@/$depends/" packaging/debian/control.in > "$root/DEBIAN/control"
chmod 0644 "$root/DEBIAN/control"

(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
  xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"

# Reproducible: every file dated like the changelog entry.
epoch=$(date -d "$(sed -n 's/^ -- .*>  //p' packaging/debian/changelog | head -n1)" +%s)
find "$root" -exec touch -h -d "@$epoch" {} +
SOURCE_DATE_EPOCH=$epoch dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
rm -rf "$root"
echo "$deb"
