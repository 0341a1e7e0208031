#!/usr/bin/env bash
# web/build.sh OUTDIR - STUB, replaced by issue 12's web/build.sh at merge: writes minimal
# console pages (vnc.html, spice.html, serial.html) into OUTDIR so that the packages have
# pages to install under /usr/share/consolegate/web.
set -euo pipefail
out=${1:?usage: web/build.sh OUTDIR}
mkdir -p "$out"
for kind in vnc spice serial; do
  cat > "$out/$kind.html" <<HTML
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>consolegate $kind console</title></head>
<body><p>consolegate $kind console page (placeholder).</p></body></html>
HTML
done
