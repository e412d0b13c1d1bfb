#!/bin/sh
# Builds the Debian package of antenne from a staged tree with
# `dpkg-deb --build` (no cargo-deb to install): the binary, the systemd
# unit (packaging/antenne.service), /etc/default/antenne and the
# maintainer scripts (packaging/debian/).
#
# Usage: scripts/package-deb.sh [OUT_DIR]
#   OUT_DIR      where the .deb goes (default: target/debian)
#   ANTENNE_BIN  an already built binary to package (default: build one
#                with `cargo build --release -p antenne`)
# Prints the path of the .deb on its last line.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/target/debian}

if [ -z "${ANTENNE_BIN:-}" ]; then
    cargo build --release --locked -p antenne --manifest-path "$root/Cargo.toml" >&2
    ANTENNE_BIN=$root/target/release/antenne
fi
[ -x "$ANTENNE_BIN" ] || { echo "package-deb: $ANTENNE_BIN is not an executable" >&2; exit 1; }

version=$("$ANTENNE_BIN" --version | awk '{print $2}')
[ -n "$version" ] || { echo "package-deb: $ANTENNE_BIN --version printed no version" >&2; exit 1; }
arch=$(dpkg --print-architecture)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT INT TERM
pkg=$root/packaging

install -D -m 0755 "$ANTENNE_BIN" "$stage/usr/bin/antenne"
strip --strip-unneeded "$stage/usr/bin/antenne"
install -D -m 0644 "$pkg/antenne.service" "$stage/usr/lib/systemd/system/antenne.service"
install -D -m 0644 "$pkg/antenne.default" "$stage/etc/default/antenne"
install -D -m 0644 "$root/README.md" "$stage/usr/share/doc/antenne/README.md"

mkdir -p "$stage/DEBIAN"
size=$(du -sk "$stage" | awk '{print $1}')
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
    "$pkg/debian/control" >"$stage/DEBIAN/control"
install -m 0644 "$pkg/debian/conffiles" "$stage/DEBIAN/conffiles"
for script in postinst prerm postrm; do
    install -m 0755 "$pkg/debian/$script" "$stage/DEBIAN/$script"
done

mkdir -p "$out"
deb=$out/antenne_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >&2
echo "$deb"
