#!/usr/bin/env bash
# packaging/check.sh - build the .deb and .rpm (packaging/build.sh) and check what they hold:
# the daemon, the product drivers (and no test driver), the header (in -dev/-devel), the config
# as a conffile, the systemd units, the man pages, the console pages; then run the packaged
# binary against the packaged drivers. packaging/install-test.sh installs them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "packaging: FAILED: $*" >&2; exit 1; }

mapfile -t built < <("$here/build.sh" "$out")
deb=${built[0]:-}; rpm=${built[1]:-}; devdeb=${built[2]:-}; develrpm=${built[3]:-}
[ -f "$deb" ] || fail "no .deb built"
[ -f "$rpm" ] || fail "no .rpm built"
[ -f "$devdeb" ] || fail "no -dev .deb built"
[ -f "$develrpm" ] || fail "no -devel .rpm built"

expect=(usr/bin/consolegate
        usr/lib/consolegate/drivers/libconsolegate_noop.so
        usr/lib/consolegate/drivers/libconsolegate_vencrypt.so
        usr/lib/consolegate/drivers/libconsolegate_spice_tls.so
        usr/lib/consolegate/drivers/libconsolegate_sasl_gssapi.so
        etc/consolegate/consolegate.conf
        etc/consolegate/tokens
        usr/lib/systemd/system/consolegate.service
        usr/lib/systemd/system/consolegate.socket
        usr/share/man/man8/consolegate.8.gz
        usr/share/man/man5/consolegate.conf.5.gz
        usr/share/consolegate/web/vnc.html
        usr/share/doc/consolegate/copyright
        usr/share/doc/consolegate/examples/tokens.example)
deb_list=$(dpkg-deb -c "$deb")
rpm_list=$(rpm -qlp "$rpm" 2>/dev/null)
header=usr/include/consolegate/consolegate_driver.h
grep -q " ./$header\$" <<<"$(dpkg-deb -c "$devdeb")" || fail "$header missing from $(basename "$devdeb")"
grep -qx "/$header" <<<"$(rpm -qlp "$develrpm" 2>/dev/null)" || fail "$header missing from $(basename "$develrpm")"

for f in "${expect[@]}"; do
  grep -q " ./$f\$" <<<"$deb_list" || fail "$f missing from $(basename "$deb")"
  grep -qx "/$f" <<<"$rpm_list" || fail "$f missing from $(basename "$rpm")"
done
for test_driver in fault cecho; do
  grep -q "libconsolegate_$test_driver" <<<"$deb_list$rpm_list" && fail "test driver $test_driver is packaged"
done
dpkg-deb -f "$deb" Package Version Architecture | grep -q '^Package: consolegate' || fail "bad control"
dpkg-deb -e "$deb" "$out/control" && grep -qx /etc/consolegate/consolegate.conf "$out/control/conffiles" \
  || fail "consolegate.conf is not a conffile"
rpm_config=$(rpm -qcp "$rpm" 2>/dev/null)
grep -qx /etc/consolegate/consolegate.conf <<<"$rpm_config" || fail "rpm: config not %config"

# The packaged binary loads the packaged drivers.
dpkg-deb -x "$deb" "$out/root"
cat > "$out/check.conf" <<CONF
listen = 127.0.0.1:1
listen_insecure = true
console_proxy_security_driver = noop, sasl_gssapi
connect_insecure = true
driver_dir = $out/root/usr/lib/consolegate/drivers
token_source = file:$out/root/etc/consolegate/tokens
CONF
report=$("$out/root/usr/bin/consolegate" --check-config --config "$out/check.conf" 2>&1) \
  || fail "packaged binary rejects a valid config: $report"
grep -q "configuration OK" <<<"$report" || fail "no 'configuration OK': $report"
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify "$out/root/usr/lib/systemd/system/consolegate.service" \
    "$out/root/usr/lib/systemd/system/consolegate.socket" 2>&1 \
    | grep -v -e 'consolegate.service: Command /usr/bin/consolegate is not executable' \
              -e 'not found' -e "Command 'man consolegate" || true
fi
echo "packaging: OK ($(basename "$deb"), $(basename "$rpm"); ${#expect[@]} files checked in each)"
