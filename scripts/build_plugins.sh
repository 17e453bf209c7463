#!/usr/bin/env bash
# Build the RRSR custom-op libraries (today: librrsr_ort_ops.so, the ONNX Runtime custom-op library).
#
#   bash scripts/build_plugins.sh
#
# Unattended (CI, root, no stdin). Steps:
#   1. ONNX Runtime C/C++ headers: no pip wheel has them, so take Debian trixie's libonnxruntime-dev .deb (headers
#      only, ~85 KB) through a private apt configuration derived from this machine's own Debian source entry, and
#      unpack it under build/ (cached: later runs skip this). RRSR_ORT_INCLUDE_DIR=<dir> skips the download.
#   2. cmake configure + build into build/plugins.
#   3. Print the library path.
#
# Environment:
#   RRSR_ORT_INCLUDE_DIR  directory holding onnxruntime_cxx_api.h (skips step 1)
#   RRSR_WITH_CUDA=1      also build the CUDA kernels (needs nvcc; not needed for the CPU library)
#   RRSR_BUILD_DIR        build folder (default: <repo>/build/plugins)
#   PYTHON                interpreter for the op-header generator (default: python3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${RRSR_BUILD_DIR:-$ROOT/build/plugins}"
ORT_CACHE="$ROOT/build/onnxruntime-headers"
PYTHON="${PYTHON:-python3}"
export DEBIAN_FRONTEND=noninteractive

log() { echo "[build_plugins] $*" >&2; }
die() { echo "[build_plugins] error: $*" >&2; exit 1; }

find_ort_header_dir() {  # prints the directory under $1 that holds onnxruntime_cxx_api.h
  local h
  h="$(find "$1" -name onnxruntime_cxx_api.h -print -quit 2>/dev/null || true)"
  [ -n "$h" ] && dirname "$h"
}

write_trixie_source() {  # $1: output file stem; prints the source file written
  local out="$1" src822="/etc/apt/sources.list.d/debian.sources" srclist="/etc/apt/sources.list"
  if [ -f "$src822" ]; then
    # deb822 entry: keep the main-archive stanza(s) (not security), suite switched to trixie; its mirror and keyring
    # stay the machine's own.
    awk -v RS= -v ORS='\n\n' '/URIs:/ && !/security/' "$src822" | sed -E 's/^Suites:.*/Suites: trixie/' > "$out.sources"
    grep -q '^URIs:' "$out.sources" || return 1
    echo "$out.sources"
  elif [ -f "$srclist" ]; then
    # one-line format: the first main-archive mirror
    local uri
    uri="$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$srclist")"
    [ -n "$uri" ] || return 1
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri trixie main" > "$out.list"
    echo "$out.list"
  else
    return 1
  fi
}

fetch_ort_headers() {
  local apt_dir="$ORT_CACHE/apt" debs="$ORT_CACHE/debs" srcfile
  command -v apt-get >/dev/null || die "apt-get not found; set RRSR_ORT_INCLUDE_DIR to a folder with the ONNX Runtime headers"
  command -v dpkg-deb >/dev/null || die "dpkg-deb not found; set RRSR_ORT_INCLUDE_DIR"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$debs"
  srcfile="$(write_trixie_source "$apt_dir/trixie")" \
    || die "no Debian main-archive entry in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list; set RRSR_ORT_INCLUDE_DIR"
  # A private apt state: nothing of the system's lists, caches or status is read or written.
  local opts=(-q -o "Dir::Etc::sourcelist=$srcfile" -o "Dir::Etc::sourceparts=-"
              -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::State::status=/dev/null"
              -o "Dir::Cache=$apt_dir/cache" -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
              -o "APT::Sandbox::User=root" -o "Acquire::Retries=3" -o "Debug::NoLocking=1")
  log "fetching Debian trixie's libonnxruntime-dev (ONNX Runtime headers)"
  apt-get "${opts[@]}" update >&2 || die "apt-get update of the trixie source list failed"
  rm -f "$debs"/*.deb
  (cd "$debs" && apt-get "${opts[@]}" download libonnxruntime-dev >&2) || die "apt-get download libonnxruntime-dev failed"
  local deb
  deb="$(ls -1 "$debs"/libonnxruntime-dev_*.deb 2>/dev/null | head -n1)"
  [ -n "$deb" ] || die "libonnxruntime-dev .deb not downloaded"
  rm -rf "$ORT_CACHE/root"
  dpkg-deb -x "$deb" "$ORT_CACHE/root"
  rm -rf "$apt_dir/lists" "$apt_dir/cache"  # ~10 MB of package lists, not needed once the headers are out
}

# ---- 1. ONNX Runtime headers
if [ -n "${RRSR_ORT_INCLUDE_DIR:-}" ]; then
  ORT_INC="$RRSR_ORT_INCLUDE_DIR"
  [ -f "$ORT_INC/onnxruntime_cxx_api.h" ] || die "RRSR_ORT_INCLUDE_DIR=$ORT_INC has no onnxruntime_cxx_api.h"
else
  ORT_INC="$(find_ort_header_dir "$ORT_CACHE/root" || true)"
  if [ -z "$ORT_INC" ]; then
    fetch_ort_headers
    ORT_INC="$(find_ort_header_dir "$ORT_CACHE/root" || true)"
    [ -n "$ORT_INC" ] || die "the libonnxruntime-dev package held no onnxruntime_cxx_api.h"
  else
    log "using cached ONNX Runtime headers in $ORT_INC"
  fi
fi

# ---- 2. configure + build
command -v cmake >/dev/null || die "cmake not found"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found (needed to generate the op header)"
CUDA_FLAG=OFF
case "${RRSR_WITH_CUDA:-0}" in 1|ON|on|true|yes) CUDA_FLAG=ON ;; esac
JOBS="$(nproc 2>/dev/null || echo 2)"
log "configuring $BUILD_DIR (CUDA: $CUDA_FLAG)"
cmake -S "$ROOT/plugins" -B "$BUILD_DIR" \
  -DCMAKE_BUILD_TYPE=Release \
  -DONNXRUNTIME_INCLUDE_DIR="$ORT_INC" \
  -DRRSR_WITH_CUDA="$CUDA_FLAG" \
  -DPython3_EXECUTABLE="$(command -v "$PYTHON")" >&2
cmake --build "$BUILD_DIR" --parallel "$JOBS" >&2

# ---- 3. report
LIB="$BUILD_DIR/librrsr_ort_ops.so"
[ -f "$LIB" ] || die "build finished but $LIB is missing"
log "ONNX Runtime custom-op library: $LIB"
echo "$LIB"
