#!/usr/bin/env sh
# The operating-system libraries the reports need (WeasyPrint: Pango, HarfBuzz with its subset
# library, fontconfig; the DejaVu fonts the stylesheet names; poppler-utils for `pdfdetach`,
# which the reports tell recipients to use). Debian/Ubuntu (apt-get).
#
# Idempotent: checks first and does nothing when everything is present. Uses sudo only when
# not root and sudo exists; otherwise says what to install and exits 1.
# Usage: bash scripts/install-system-packages.sh [--check]   (--check: report only, exit 1 if missing)
set -eu

PACKAGES="libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core poppler-utils"

has_library() {  # soname stem, e.g. pango-1.0
  if command -v ldconfig >/dev/null 2>&1 && ldconfig -p 2>/dev/null | grep -q "lib$1\.so"; then
    return 0
  fi
  python3 -c "import ctypes.util, sys; sys.exit(0 if ctypes.util.find_library(sys.argv[1]) else 1)" "$1" 2>/dev/null
}

has_fonts() {
  if command -v fc-list >/dev/null 2>&1; then
    fc-list 2>/dev/null | grep -q "DejaVu Sans Mono" && fc-list 2>/dev/null | grep -q "DejaVuSans.ttf"
  else
    [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]
  fi
}

missing=""
has_library pango-1.0 || missing="$missing libpango-1.0-0"
has_library pangoft2-1.0 || missing="$missing libpangoft2-1.0-0"
has_library harfbuzz-subset || missing="$missing libharfbuzz-subset0"
has_fonts || missing="$missing fonts-dejavu-core"
command -v pdfdetach >/dev/null 2>&1 || missing="$missing poppler-utils"

if [ -z "$missing" ]; then
  echo "system packages: present (Pango, HarfBuzz subset, DejaVu fonts, poppler-utils)"
  exit 0
fi
echo "system packages: missing:$missing"
if [ "${1:-}" = "--check" ]; then
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "No apt-get here: install the equivalents of '$PACKAGES' with this system's package manager" >&2
  echo "(e.g. macOS: brew install pango harfbuzz poppler; fonts: DejaVu)." >&2
  exit 1
fi
if [ "$(id -u)" = "0" ]; then
  run=""
elif command -v sudo >/dev/null 2>&1; then
  run="sudo"
else
  echo "Not root and no sudo: ask an administrator to run: apt-get install -y$missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086  # the package list is meant to split into words
$run apt-get update -q
# shellcheck disable=SC2086
$run apt-get install -y -q --no-install-recommends $missing
echo "system packages: installed$missing"
