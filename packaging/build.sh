#!/usr/bin/env bash
# packaging/build.sh [OUTDIR] - build consolegate's .deb and .rpm from a release build.
#
# Stages the files once (binary, driver .so files, header, config, systemd unit, docs), then
# packs them with dpkg-deb and rpmbuild. Needs: cargo, dpkg-deb (Debian), rpmbuild (apt-get
# install rpm). Prints the paths of the packages it wrote.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
out=${1:-$root/target/packages}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)
arch_deb=$(dpkg --print-architecture 2>/dev/null || echo amd64)
arch_rpm=$(uname -m)

cargo build --release --workspace --manifest-path "$root/Cargo.toml" >&2
rm -rf "$out/stage" && mkdir -p "$out/stage"
stage=$out/stage
install -Dm755 "$root/target/release/consolegate" "$stage/usr/bin/consolegate"
# Product drivers only: test drivers (fault, cecho) are not shipped.
for so in "$root"/target/release/libconsolegate_*.so; do
  name=$(basename "$so" .so); name=${name#libconsolegate_}
  case $name in fault|cecho) continue ;; esac
  install -Dm755 "$so" "$stage/usr/lib/consolegate/drivers/$(basename "$so")"
done
install -Dm644 "$root/driver-api/include/consolegate_driver.h" "$stage/usr/include/consolegate/consolegate_driver.h"
install -Dm640 "$root/conf/consolegate.conf" "$stage/etc/consolegate/consolegate.conf"
install -Dm640 "$root/conf/tokens.example" "$stage/etc/consolegate/tokens"
install -Dm644 "$here/systemd/consolegate.service" "$stage/usr/lib/systemd/system/consolegate.service"
for doc in README.md docs/*.md conf/*.example; do
  [ -e "$root/$doc" ] && install -Dm644 "$root/$doc" "$stage/usr/share/doc/consolegate/$(basename "$doc")"
done

# --- .deb ---
deb=$out/deb && rm -rf "$deb" && mkdir -p "$deb"
cp -a "$stage/." "$deb/"
mkdir -p "$deb/DEBIAN"
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch_deb/" "$here/debian/control" > "$deb/DEBIAN/control"
cp "$here/debian/conffiles" "$here/debian/postinst" "$here/debian/prerm" "$here/debian/postrm" "$deb/DEBIAN/"
chmod 755 "$deb/DEBIAN/postinst" "$deb/DEBIAN/prerm" "$deb/DEBIAN/postrm"
dpkg-deb --root-owner-group --build "$deb" "$out/consolegate_${version}_${arch_deb}.deb" >&2
echo "$out/consolegate_${version}_${arch_deb}.deb"

# --- .rpm ---
if command -v rpmbuild >/dev/null; then
  top=$out/rpmbuild && rm -rf "$top" && mkdir -p "$top"/{BUILD,RPMS,SPECS,BUILDROOT}
  rpmbuild -bb --quiet \
    --define "_topdir $top" --define "_stage $stage" --define "_version $version" \
    --target "$arch_rpm" "$here/rpm/consolegate.spec" >&2
  rpm=$(find "$top/RPMS" -name '*.rpm' | head -1)
  cp "$rpm" "$out/" && echo "$out/$(basename "$rpm")"
else
  echo "rpmbuild not found (apt-get install rpm): no .rpm built" >&2
  exit 1
fi
