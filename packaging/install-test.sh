#!/usr/bin/env bash
# packaging/install-test.sh - what an operator does with the packages, on this machine (as
# root, with the real dpkg; test.sh runs it), bounded to 15 minutes:
#   1. dpkg -i the .debs; the modes of /etc/consolegate, no live token, the examples, the man
#      pages (man consolegate.conf shows every key), the system user, the header in -dev;
#   2-3. tests/tests/installed_package.rs: --check-config refuses the packaged configuration
#      until a test PKI is in /etc/consolegate/pki, then the installed binary and drivers serve
#      a QEMU VeNCrypt console over wss and the installed console pages;
#   4. upgrade to a newer build: an edited conffile is kept, the service is restarted on
#      upgrade when systemd runs it (debhelper's try-restart), no example token becomes live;
#   5. dpkg -r keeps the edited configuration; dpkg -P removes it and the system user;
#   6. lintian: no errors;
#   7. the .rpm (rpm -qp): the same paths as the .deb, user creation, %config(noreplace), the
#      systemd scriptlets; rpmlint: no errors.
# Refuses to run if consolegate is already installed (it purges what it installs).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
if [ -z "${CONSOLEGATE_INSTALL_TEST_BOUNDED:-}" ]; then
  CONSOLEGATE_INSTALL_TEST_BOUNDED=1 exec timeout --kill-after=30s 900 "$0" "$@"
fi
fail() { echo "install-test: FAILED: $*" >&2; exit 1; }
step() { echo "install-test: $*"; }
[ "$(id -u)" = 0 ] || fail "run as root: it installs and removes packages with dpkg"
for tool in dpkg dpkg-shlibdeps lintian rpm rpmbuild rpmlint man setpriv systemd-analyze; do
  command -v "$tool" >/dev/null || fail "$tool is missing: run .ci/install-peers"
done
if dpkg-query -W -f '${db:Status-Status}' consolegate 2>/dev/null | grep -qv '^not-installed$'; then
  fail "consolegate is already installed here: this test installs and purges it; dpkg -P consolegate consolegate-dev first"
fi

out=$(mktemp -d)
cleanup() {
  dpkg -P consolegate consolegate-dev >/dev/null 2>&1 || true
  rm -rf "$out"
}
trap cleanup EXIT

mapfile -t r1 < <("$here/build.sh" "$out/r1")
mapfile -t r2 < <(CONSOLEGATE_PKG_RELEASE=2 "$here/build.sh" "$out/r2")
deb=${r1[0]} rpm=${r1[1]} devdeb=${r1[2]} develrpm=${r1[3]}
for f in "${r1[@]}" "${r2[@]}"; do [ -f "$f" ] || fail "not built: $f"; done

mode() { stat -c '%a %U:%G' "$1"; }
expect_mode() { [ "$(mode "$1")" = "$2" ] || fail "$1 is $(mode "$1"), expected $2"; }
live_tokens() { grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' /etc/consolegate/tokens || true; }

# --- 1. install ---
step "1. dpkg -i $(basename "$deb") $(basename "$devdeb")"
dpkg -i "$deb" "$devdeb" </dev/null
getent passwd consolegate >/dev/null || fail "no consolegate user"
getent group consolegate >/dev/null || fail "no consolegate group"
expect_mode /etc/consolegate "750 root:consolegate"
expect_mode /etc/consolegate/pki "750 root:consolegate"
expect_mode /etc/consolegate/consolegate.conf "640 root:consolegate"
expect_mode /etc/consolegate/tokens "640 root:consolegate"
[ -z "$(live_tokens)" ] || fail "live tokens in /etc/consolegate/tokens: $(live_tokens)"
[ -z "$(find /etc/consolegate -name '*.example')" ] || fail "examples in /etc/consolegate"
for f in tokens.example tokens.json.example vencrypt.conf.example; do
  [ -f "/usr/share/doc/consolegate/examples/$f" ] || fail "no examples/$f"
done
[ -f /usr/share/consolegate/web/vnc.html ] || fail "no /usr/share/consolegate/web/vnc.html"
grep -qx 'web = /usr/share/consolegate/web' /etc/consolegate/consolegate.conf || fail "web does not point at the installed pages"
[ -f /usr/include/consolegate/consolegate_driver.h ] || fail "no header from consolegate-dev"
[ -f /usr/share/doc/consolegate/copyright ] || fail "no copyright"
man -w consolegate >/dev/null && man -w consolegate.conf >/dev/null || fail "man pages not found"
page=$(MANWIDTH=200 man -P cat 5 consolegate.conf 2>/dev/null)
keys=$(sed -n 's/^#\{0,1\} \{0,1\}\([a-z_]*\) =.*/\1/p' "$root/conf/consolegate.conf" | sort -u)
for key in $keys; do
  grep -qw -- "$key" <<<"$page" || fail "man consolegate.conf does not show $key"
done
grep -q -- '--check-config' <<<"$(MANWIDTH=200 man -P cat 8 consolegate 2>/dev/null)" || fail "man consolegate lacks --check-config"
step "   modes, user, no live token, examples, pages, header, man pages ($(wc -w <<<"$keys") keys): OK"

# --- 2, 3. check-config, serve ---
step "2-3. the installed binary: --check-config, a VeNCrypt console over wss, /vnc.html"
(cd "$root" && cargo test -q -p consolegate-tests --test installed_package -- --ignored) \
  || fail "the installed package does not serve (tests/tests/installed_package.rs)"

# --- 4. upgrade ---
step "4. upgrade to $(basename "${r2[0]}")"
echo "# edited by install-test" >> /etc/consolegate/consolegate.conf
dpkg --force-confdef --force-confold -i "${r2[0]}" "${r2[2]}" </dev/null
[ "$(dpkg-query -W -f '${Version}' consolegate)" = "$(dpkg-deb -f "${r2[0]}" Version)" ] || fail "not upgraded"
tail -1 /etc/consolegate/consolegate.conf | grep -qx '# edited by install-test' || fail "the edited conffile was replaced"
[ -z "$(live_tokens)" ] || fail "the upgrade made tokens live: $(live_tokens)"
expect_mode /etc/consolegate "750 root:consolegate"
[ -f /etc/consolegate/pki/server-key.pem ] || fail "the upgrade lost /etc/consolegate/pki"
# No systemd runs here (PID 1 is $(ps -p 1 -o comm=)): check the debhelper convention that
# restarts a running service on upgrade is what the installed postinst does.
postinst=$(dpkg-query --control-path consolegate postinst)
grep -A3 'if \[ -n "\$2" \]; then' "$postinst" | grep -q "deb-systemd-invoke try-restart 'consolegate.socket' 'consolegate.service'" \
  || fail "the postinst does not try-restart the service on upgrade"
step "   edited conffile kept, no live token, try-restart on upgrade: OK"

# --- 5. remove, purge ---
step "5. dpkg -r, dpkg -P"
dpkg -r consolegate consolegate-dev </dev/null
[ ! -e /usr/bin/consolegate ] || fail "dpkg -r left /usr/bin/consolegate"
tail -1 /etc/consolegate/consolegate.conf | grep -qx '# edited by install-test' || fail "dpkg -r removed the edited configuration"
getent passwd consolegate >/dev/null || fail "dpkg -r removed the user (purge should)"
dpkg -P consolegate </dev/null
[ ! -e /etc/consolegate ] || fail "dpkg -P left /etc/consolegate: $(ls -la /etc/consolegate)"
! getent passwd consolegate >/dev/null || fail "dpkg -P left the consolegate user"
! getent group consolegate >/dev/null || fail "dpkg -P left the consolegate group"
! dpkg-statoverride --list | grep -q /etc/consolegate || fail "dpkg -P left statoverrides"
step "   remove keeps the configuration, purge removes it and the user: OK"

# --- 6. lintian ---
step "6. lintian"
lintian --fail-on error --tag-display-limit 0 "$deb" "$devdeb" | tee "$out/lintian.txt" || fail "lintian reports errors"
step "   lintian: $(grep -c '^E:' "$out/lintian.txt" || true) errors, $(grep -c '^W:' "$out/lintian.txt" || true) warnings"

# --- 7. rpm ---
step "7. rpm -qp"
files_deb() { for d in "$@"; do dpkg-deb -c "$d"; done | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }' \
  | grep -v -e '^/usr/share/doc/consolegate/changelog.Debian.gz$' -e '^/usr/share/doc/consolegate-dev/' -e '^/usr/share/lintian/' \
  | sed 's|^/lib/systemd/|/usr/lib/systemd/|' | sort; }
files_rpm() { for r in "$@"; do rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' "$r"; done | awk '$1 !~ /^d/ { print $2 }' | sort; }
diff <(files_deb "$deb" "$devdeb") <(files_rpm "$rpm" "$develrpm") > "$out/paths.diff" \
  || fail "the .rpm and the .deb install different files (< deb, > rpm):\n$(cat "$out/paths.diff")"
scripts=$(rpm -qp --scripts "$rpm")
for needle in 'useradd -r -g consolegate' 'groupadd -r consolegate' 'systemctl --no-reload preset consolegate.service consolegate.socket' \
              'systemctl --no-reload disable --now consolegate.service consolegate.socket' 'systemctl try-restart consolegate.service consolegate.socket'; do
  grep -qF -- "$needle" <<<"$scripts" || fail "rpm scripts lack '$needle':\n$scripts"
done
attrs=$(rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]' "$rpm")
for line in 'cn -rw-r----- root:consolegate /etc/consolegate/consolegate.conf' 'cn -rw-r----- root:consolegate /etc/consolegate/tokens' \
            ' drwxr-x--- root:consolegate /etc/consolegate' ' drwxr-x--- root:consolegate /etc/consolegate/pki'; do
  grep -qF -- "$line" <<<"$attrs" || fail "rpm lacks '$line':\n$attrs"
done
grep -q cyrus-sasl-gssapi <<<"$(rpm -qp --recommends "$rpm")" || fail "rpm does not recommend cyrus-sasl-gssapi"
step "   same paths as the .deb ($(files_rpm "$rpm" "$develrpm" | wc -l) files), user creation, %config(noreplace), systemd scriptlets: OK"
rpmlint -c "$here/rpm/rpmlint.toml" "$rpm" "$develrpm" | tee "$out/rpmlint.txt" || true
grep -Eq '[0-9]+ packages and [0-9]+ specfiles checked; 0 errors' "$out/rpmlint.txt" || fail "rpmlint reports errors"

echo "install-test: OK (install, check-config, serve, upgrade, remove, purge, lintian, rpm)"
