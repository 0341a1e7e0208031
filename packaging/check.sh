#!/usr/bin/env bash
# packaging/check.sh - build the .deb and .rpm (packaging/build.sh) and check what they hold:
# the daemon, the product drivers (and no test driver), the header, the config as a conffile,
# the systemd unit; then run the packaged binary against the packaged drivers.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "packaging: FAILED: $*" >&2; exit 1; }

mapfile -t built < <("$here/build.sh" "$out")
deb=${built[0]:-}; rpm=${built[1]:-}
[ -f "$deb" ] || fail "no .deb built"
[ -f "$rpm" ] || fail "no .rpm built"

expect=(usr/bin/consolegate
        usr/lib/consolegate/drivers/libconsolegate_noop.so
        usr/lib/consolegate/drivers/libconsolegate_vencrypt.so
        usr/lib/consolegate/drivers/libconsolegate_spice_tls.so
        usr/lib/consolegate/drivers/libconsolegate_sasl_gssapi.so
        usr/include/consolegate/consolegate_driver.h
        etc/consolegate/consolegate.conf
        usr/lib/systemd/system/consolegate.service)
deb_list=$(dpkg-deb -c "$deb")
rpm_list=$(rpm -qlp "$rpm" 2>/dev/null)
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
rpm -qcp "$rpm" 2>/dev/null | grep -qx /etc/consolegate/consolegate.conf || fail "rpm: config not %config"

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
  systemd-analyze verify "$out/root/usr/lib/systemd/system/consolegate.service" 2>&1 \
    | grep -v -e 'consolegate.service: Command /usr/bin/consolegate is not executable' \
              -e 'not found' || true
fi
echo "packaging: OK ($(basename "$deb"), $(basename "$rpm"); ${#expect[@]} files checked in each)"
