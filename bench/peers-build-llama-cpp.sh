#!/usr/bin/env bash
# Builds llama.cpp from the source distribution of the PyPI package `llama-cpp-python` (pinned below by version and
# sha256; its vendor/llama.cpp is llama.cpp's whole tree) into a cache folder outside git, for `npm run bench:peers`:
#   - llama-mtmd-cli, llama-bench, llama-quantize (Release, CMake + Ninja, static);
#   - a Python venv for llama.cpp's converter (convert_hf_to_gguf.py + its vendored gguf-py).
# Prints the cache folder on its last line. A second run finds the stamp file and rebuilds nothing.
#
#   bench/peers-build-llama-cpp.sh            # STITCH_CACHE (default ~/.cache/stitch) decides where
#
# Instruction sets: GGML_NATIVE=OFF and exactly the x86 extensions /proc/cpuinfo lists, except AMX, which stays off:
# a GGML_NATIVE build on a VM of this kind died with "Illegal instruction" (issue 29), and a VM may list AMX yet not
# grant its tile state. STITCH_LLAMA_AMX=1 turns it on for a machine where it is known to run.
#
# One patch, to mtmd-cli, checked: llama.cpp's common log is written by a thread that nobody drains at exit (its
# common/log.cpp says so: "this design may cause logs to be lost if not flushed before the program exits", upstream
# issue 22142), so mtmd-cli's closing perf lines were lost in some runs here, in most of them under load. The patch
# pauses (drains and joins) that thread right after the perf lines are queued; it changes no timing.
#
# The converter's venv: llama.cpp's converter needs torch + transformers + safetensors only to read the checkpoint.
# The exporter's venv (.venv-export, model-export/setup-venv.sh) already holds pinned copies of those (about 7 GB with
# torch's CUDA libraries); this venv reads them through a .pth file instead of installing another copy, and installs
# only what the converter adds (pinned below). Nothing is installed into .venv-export.
set -euo pipefail

VERSION=0.3.36
SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
SENTENCEPIECE=0.2.1 # requirements-convert_legacy_llama.txt: sentencepiece>=0.1.98,<0.3.0
PROTOBUF=4.25.8     # same file: protobuf>=4.21.0,<5.0.0 (sentencepiece's model format)

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exporter="$root/.venv-export/bin/python"
cache="${STITCH_CACHE:-$HOME/.cache/stitch}/llama.cpp/$VERSION"
log() { echo "[build-llama-cpp] $*" >&2; }

# The x86 extensions this CPU lists, as ggml's CMake options.
cpu_options() {
  local flags
  flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  local pair
  for pair in sse4_2:SSE42 avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx_vnni:AVX_VNNI avx512f:AVX512 \
    avx512vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
    if [[ $flags == *" ${pair%%:*} "* ]]; then echo "-DGGML_${pair#*:}=ON"; else echo "-DGGML_${pair#*:}=OFF"; fi
  done
  local amx=OFF
  if [[ ${STITCH_LLAMA_AMX:-0} == 1 && $flags == *" amx_int8 "* ]]; then amx=ON; fi
  echo "-DGGML_AMX_TILE=$amx" "-DGGML_AMX_INT8=$amx" "-DGGML_AMX_BF16=$amx"
}

options="$(cpu_options | tr '\n' ' ')"
PATCH="log drained at exit"
stamp="$cache/build.stamp"
if [[ -f $stamp ]] && grep -qxF "options: $options" "$stamp" && grep -qxF "patch: $PATCH" "$stamp"; then
  log "reusing $cache ($(grep '^last build' "$stamp"))"
  echo "$cache"
  exit 0
fi

if [[ ! -x $exporter ]]; then
  log "needs the exporter's venv first: model-export/setup-venv.sh"
  exit 2
fi
mkdir -p "$cache"
start=$SECONDS
sdist="$cache/llama_cpp_python-$VERSION.tar.gz"
if [[ ! -f $sdist ]] || ! echo "$SHA256  $sdist" | sha256sum -c --quiet - 2>/dev/null; then
  log "downloading llama-cpp-python $VERSION (source distribution)"
  "$exporter" -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$cache"
fi
echo "$SHA256  $sdist" | sha256sum -c --quiet -
if [[ ! -f $cache/src/.unpacked ]]; then # kept once whole, so that a rebuild (other options) is incremental
  rm -rf "$cache/src"
  mkdir -p "$cache/src"
  tar -xzf "$sdist" -C "$cache/src" --strip-components=3 --exclude=.git "llama_cpp_python-$VERSION/vendor/llama.cpp"
  touch "$cache/src/.unpacked"
fi
cli="$cache/src/tools/mtmd/mtmd-cli.cpp"
if ! grep -q "bench:peers" "$cli"; then
  sed -i 's|^    llama_perf_context_print(ctx.lctx);$|&\n    common_log_pause(common_log_main()); // bench:peers: drain the log thread before exit|' "$cli"
  grep -q "bench:peers" "$cli" || { log "the mtmd-cli patch did not apply"; exit 3; }
fi

log "configuring: $options"
# shellcheck disable=SC2086 # options are separate words
cmake -S "$cache/src" -B "$cache/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE=OFF $options -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF >"$cache/cmake.log"
log "building llama-mtmd-cli llama-bench llama-quantize ($(nproc) jobs)"
ninja -C "$cache/build" -j "$(nproc)" llama-mtmd-cli llama-bench llama-quantize >"$cache/ninja.log"

if [[ ! -x $cache/venv/bin/python ]]; then
  log "converter venv"
  base="$("$exporter" -c 'import sys; print(sys.base_prefix)')/bin/python3"
  "$base" -m venv "$cache/venv"
  "$exporter" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' \
    >"$("$cache/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/stitch-exporter.pth"
  "$cache/venv/bin/pip" install --quiet --disable-pip-version-check "sentencepiece==$SENTENCEPIECE" "protobuf==$PROTOBUF"
fi
"$cache/venv/bin/python" -c 'import torch, transformers, safetensors, sentencepiece; print("converter venv: torch", torch.__version__, "transformers", transformers.__version__)' >&2

{
  echo "version: llama-cpp-python $VERSION ($SHA256)"
  echo "options: $options"
  echo "patch: $PATCH"
  echo "last build: $((SECONDS - start)) s on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
} >"$stamp"
log "built in $((SECONDS - start)) s"
echo "$cache"
