#!/usr/bin/env bash
# packaging/build.sh [OUTDIR] - build consolegate's packages from one release build:
#   consolegate_<version>-<release>_<arch>.deb, consolegate-dev_<version>-<release>_all.deb,
#   consolegate-<version>-<release>.<arch>.rpm, consolegate-devel-<version>-<release>.noarch.rpm
# and print their paths, one a line, in that order (default OUTDIR target/packages).
#
# Stages the files once (binary, driver .so files, header, configuration, systemd units, man
# pages, console pages from web/build.sh, docs, examples), then packs them: the .debs with
# dpkg-shlibdeps (computed library dependencies), dpkg-gencontrol (control, Installed-Size) and
# dpkg-deb; the .rpms with rpmbuild. Needs cargo, dpkg-dev, rpm (.ci/install-peers).
#
# CONSOLEGATE_PKG_RELEASE=N (default 1) sets the Debian revision and rpm release: a newer build
# of the same version, which packaging/install-test.sh upgrades to. SOURCE_DATE_EPOCH is set
# from the Debian changelog unless given.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
out=${1:-$root/target/packages}
mkdir -p "$out" && out=$(cd "$out" && pwd)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)
release=${CONSOLEGATE_PKG_RELEASE:-1}
[[ $release =~ ^[1-9][0-9]*$ ]] || { echo "build.sh: CONSOLEGATE_PKG_RELEASE must be a positive whole number, not '$release'" >&2; exit 2; }
arch_deb=$(dpkg --print-architecture)
arch_rpm=$(uname -m)
release_dir=${CARGO_TARGET_DIR:-$root/target}/release

cargo build --release --workspace --manifest-path "$root/Cargo.toml" >&2
# Only for packing (dpkg-deb, rpmbuild, gzip): exported before cargo it would rebuild ring and
# all above it (the cc crate's build scripts watch it).
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(dpkg-parsechangelog -l "$here/debian/changelog" -S Timestamp)}

# --- the staged tree (the rpm's layout; the .debs are cut from it) ---
stage=$out/stage
rm -rf "$stage" && mkdir -p "$stage"
# As dh_strip: the packages carry no debug information.
install_elf() { install -Dm"$1" "$2" "$3" && strip --strip-unneeded --remove-section=.comment --remove-section=.note "$3"; }
install_elf 755 "$release_dir/consolegate" "$stage/usr/bin/consolegate"
# Product drivers only: test drivers (fault, cecho) are not shipped.
for so in "$release_dir"/libconsolegate_*.so; do
  name=$(basename "$so" .so); name=${name#libconsolegate_}
  case $name in fault|cecho) continue ;; esac
  install_elf 644 "$so" "$stage/usr/lib/consolegate/drivers/$(basename "$so")"
done
install -Dm644 "$root/driver-api/include/consolegate_driver.h" "$stage/usr/include/consolegate/consolegate_driver.h"
# Configuration: /etc/consolegate and pki/ 0750, files 0640; the group is set at install
# (postinst's dpkg-statoverride, the spec's %attr). The token file holds no token.
install -d -m750 "$stage/etc/consolegate" "$stage/etc/consolegate/pki"
install -m640 "$root/conf/consolegate.conf" "$stage/etc/consolegate/consolegate.conf"
install -m640 "$here/tokens" "$stage/etc/consolegate/tokens"
install -Dm644 "$here/systemd/consolegate.service" "$stage/usr/lib/systemd/system/consolegate.service"
install -Dm644 "$here/systemd/consolegate.socket" "$stage/usr/lib/systemd/system/consolegate.socket"
# Man pages: consolegate(8) generated from the command line, consolegate.conf(5) by hand.
mkdir -p "$stage/usr/share/man/man8" "$stage/usr/share/man/man5"
"$release_dir/consolegate-man" | gzip -9n > "$stage/usr/share/man/man8/consolegate.8.gz"
gzip -9n < "$here/man/consolegate.conf.5" > "$stage/usr/share/man/man5/consolegate.conf.5.gz"
# The console pages.
"$root/web/build.sh" "$stage/usr/share/consolegate/web" >&2
find "$stage/usr/share/consolegate/web" -type d -exec chmod 755 {} + -o -type f -exec chmod 644 {} +
# Documentation and examples (never live in /etc).
doc=$stage/usr/share/doc/consolegate
install -Dm644 "$root/README.md" "$doc/README.md"
for f in "$root"/docs/*.md; do install -Dm644 "$f" "$doc/$(basename "$f")"; done
install -Dm644 "$here/debian/copyright" "$doc/copyright"
for f in "$root"/conf/*.example; do install -Dm644 "$f" "$doc/examples/$(basename "$f")"; done

# --- .deb: consolegate and consolegate-dev ---
src=$out/deb && rm -rf "$src" && mkdir -p "$src/debian"
cp "$here/debian/control" "$here/debian/copyright" "$src/debian/"
changelog=$src/debian/changelog
if [ "$release" = 1 ]; then
  cp "$here/debian/changelog" "$changelog"
else
  { printf 'consolegate (%s-%s) unstable; urgency=medium\n\n  * Rebuild %s of %s.\n\n -- %s  %s\n\n' \
      "$version" "$release" "$release" "$version" "$(dpkg-parsechangelog -l "$here/debian/changelog" -S Maintainer)" \
      "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
    cat "$here/debian/changelog"; } > "$changelog"
fi
[ "$(dpkg-parsechangelog -l "$changelog" -S Version)" = "$version-$release" ] \
  || { echo "build.sh: packaging/debian/changelog's top entry is not $version-1 (Cargo.toml says $version)" >&2; exit 1; }
main=$src/debian/consolegate dev=$src/debian/consolegate-dev
cp -a "$stage" "$main"
rm -rf "$main/usr/include"
mkdir -p "$dev/usr" "$dev/usr/share/doc/consolegate-dev"
cp -a "$stage/usr/include" "$dev/usr/"
install -m644 "$here/debian/copyright" "$dev/usr/share/doc/consolegate-dev/copyright"
for pkg in "$main" "$dev"; do
  gzip -9n < "$changelog" > "$pkg/usr/share/doc/$(basename "$pkg")/changelog.Debian.gz"
  chmod 644 "$pkg/usr/share/doc/$(basename "$pkg")/changelog.Debian.gz"
done
install -Dm644 "$here/debian/consolegate.lintian-overrides" "$main/usr/share/lintian/overrides/consolegate"
install -Dm644 "$here/debian/consolegate-dev.lintian-overrides" "$dev/usr/share/lintian/overrides/consolegate-dev"
(
  cd "$src"
  mkdir -p debian/consolegate/DEBIAN debian/consolegate-dev/DEBIAN
  dpkg-shlibdeps -Tdebian/consolegate.substvars \
    debian/consolegate/usr/bin/consolegate debian/consolegate/usr/lib/consolegate/drivers/*.so
  for p in consolegate consolegate-dev; do
    echo 'misc:Depends=' >> "debian/$p.substvars"
    dpkg-gencontrol -p"$p" -P"debian/$p" -T"debian/$p.substvars"
    ( cd "debian/$p" && find . -type f ! -path './DEBIAN/*' ! -path './etc/*' -printf '%P\0' \
        | LC_ALL=C sort -z | xargs -0 md5sum > DEBIAN/md5sums )
  done
  install -m644 "$here/debian/conffiles" debian/consolegate/DEBIAN/conffiles
  install -m755 "$here/debian/postinst" "$here/debian/prerm" "$here/debian/postrm" debian/consolegate/DEBIAN/
)
debs=()
for p in consolegate consolegate-dev; do
  a=$arch_deb; [ "$p" = consolegate-dev ] && a=all
  deb=$out/${p}_${version}-${release}_$a.deb
  dpkg-deb --root-owner-group -Zxz --build "$src/debian/$p" "$deb" >&2
  debs+=("$deb")
done

# --- .rpm: consolegate and consolegate-devel ---
top=$out/rpmbuild && rm -rf "$top" && mkdir -p "$top"/{BUILD,RPMS,SPECS,BUILDROOT}
rpmbuild -bb --quiet \
  --define "_topdir $top" --define "_stage $stage" --define "_version $version" \
  --define "_release $release" --define "_build_id_links none" \
  --target "$arch_rpm" "$here/rpm/consolegate.spec" >&2
rpm_main=$(find "$top/RPMS" -name "consolegate-$version-$release.*.rpm")
rpm_devel=$(find "$top/RPMS" -name "consolegate-devel-$version-$release.*.rpm")
cp "$rpm_main" "$rpm_devel" "$out/"
printf '%s\n' "${debs[0]}" "$out/$(basename "$rpm_main")" "${debs[1]}" "$out/$(basename "$rpm_devel")"
