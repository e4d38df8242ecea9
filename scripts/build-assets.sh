#!/usr/bin/env bash
# Front-end libraries for the web pages, from npm (package.json pins exact versions): three.js
# for the 3D part viewer, htmx for the live forms and Chart.js for the manager dashboard.
# `make install` runs this; it copies the
# module files the pages load into microfactory/static/vendor/ (git-ignored), which Django
# serves like any other static file. No page loads anything from a CDN.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v npm >/dev/null; then
    # A fresh Debian or Ubuntu machine: Node.js and npm from the distribution, as root.
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "build-assets: installing nodejs and npm (Debian packages)"
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq nodejs npm
    else
        echo "build-assets: npm is needed (Node.js 18 or later): sudo apt-get install nodejs npm" >&2
        exit 1
    fi
fi
npm ci --no-audit --no-fund --loglevel=error

out=microfactory/static/vendor
rm -rf "$out"
mkdir -p "$out/three/build" "$out/three/addons/controls" "$out/three/addons/loaders" \
         "$out/three/addons/utils" "$out/htmx"
three=node_modules/three
cp "$three/build/three.module.js" "$three/build/three.core.js" "$out/three/build/"
cp "$three/examples/jsm/controls/OrbitControls.js" "$out/three/addons/controls/"
cp "$three/examples/jsm/loaders/STLLoader.js" "$three/examples/jsm/loaders/GLTFLoader.js" \
   "$out/three/addons/loaders/"
cp "$three/examples/jsm/utils/BufferGeometryUtils.js" "$three/examples/jsm/utils/SkeletonUtils.js" \
   "$out/three/addons/utils/"
cp "$three/LICENSE" "$out/three/"
cp node_modules/htmx.org/dist/htmx.min.js "$out/htmx/"
cp node_modules/htmx.org/LICENSE "$out/htmx/"
# Chart.js for the manager dashboard (production/dashboards): its one-file UMD build.
mkdir -p "$out/chartjs"
# With its source map: the file names it, and collectstatic (manifest storage) refuses a
# missing reference.
cp node_modules/chart.js/dist/chart.umd.min.js node_modules/chart.js/dist/chart.umd.min.js.map \
   node_modules/chart.js/LICENSE.md "$out/chartjs/"
echo "build-assets: three $(node -p "require('./$three/package.json').version"), htmx $(node -p "require('./node_modules/htmx.org/package.json').version") -> $out"
