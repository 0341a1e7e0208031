#!/usr/bin/env bash
# web/build.sh OUTDIR - assemble the directory consolegate serves as its `web` directory:
#   OUTDIR/{vnc,spice,serial}.html, OUTDIR/js/, OUTDIR/css/ (the pages, from this directory), and
#   OUTDIR/lib/<name>-<version>/ (the pinned npm libraries: only the files the pages load, with
#   their licence files). Versioned paths never change content, so they can be cached for good.
# The libraries come from `npm ci` (package-lock.json pins them by version and integrity) into
# target/web-npm/, with npm's cache under target/npm-cache/. Nothing is fetched at run time.
set -euo pipefail
out=${1:?usage: web/build.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
target=${CARGO_TARGET_DIR:-$root/target}
npm_dir=$target/web-npm
command -v npm >/dev/null || { echo "web/build.sh: npm is missing (apt-get install npm)" >&2; exit 1; }

# npm ci again only when the lock file changed; one build at a time (tests run in parallel).
mkdir -p "$npm_dir"
exec 9>"$npm_dir.lock"
flock 9
# installed-lock.json is written only after npm ci succeeded, so a failed one is run again.
if ! cmp -s "$here/package-lock.json" "$npm_dir/installed-lock.json"; then
  rm -f "$npm_dir/installed-lock.json"
  cp "$here/package.json" "$here/package-lock.json" "$npm_dir/"
  (cd "$npm_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error --cache "$target/npm-cache")
  cp "$here/package-lock.json" "$npm_dir/installed-lock.json"
fi
modules=$npm_dir/node_modules

version() { node -p "require('$modules/$1/package.json').version"; }

mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -rf "$out/lib" "$out/js" "$out/css"
mkdir -p "$out/lib" "$out/js" "$out/css"

# lib NAME PACKAGE FILE... : copy FILEs (paths inside the package) to lib/NAME-VERSION/.
lib() {
  local name=$1 package=$2 dir v
  shift 2
  v=$(version "$package")
  dir=$out/lib/$name-$v
  mkdir -p "$dir"
  for f in "$@"; do
    mkdir -p "$dir/$(dirname "$f")"
    cp -R "$modules/$package/$f" "$dir/$f"
  done
  # The page sources name a library by its bare name (lib/NAME/); the copy names the version.
  sed -i -E "s#(\.\./|\")lib/$name/#\1lib/$name-$v/#g" "$out"/js/*.js "$out"/*.html
}

cp "$here"/*.html "$out/"
cp "$here"/js/*.js "$out/js/"
cp "$here"/css/*.css "$out/css/"
lib novnc @novnc/novnc core vendor LICENSE.txt
lib spice-html5 @spice-project/spice-html5 src COPYING COPYING.LESSER
lib xterm @xterm/xterm lib/xterm.mjs css/xterm.css LICENSE
lib addon-fit @xterm/addon-fit lib/addon-fit.mjs LICENSE
# The source maps the modules name are not shipped: drop the comment, so no 404 is asked for.
sed -i '/^\/\/# sourceMappingURL=/d' "$out"/lib/xterm-*/lib/*.mjs "$out"/lib/addon-fit-*/lib/*.mjs

# Every library a page imports must now exist under its versioned name.
missing=0
for ref in $(grep -hoE "(\.\./|\")lib/[^'\"]*" "$out"/js/*.js "$out"/*.html | sed -E 's#^(\.\./|")##' | sort -u); do
  [ -e "$out/$ref" ] || { echo "web/build.sh: $ref is loaded by a page but not built" >&2; missing=1; }
done
exit "$missing"
