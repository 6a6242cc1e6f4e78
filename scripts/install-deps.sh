#!/usr/bin/env bash
# Installs every Debian package Sonde needs to build, test and run its
# end-to-end suite. Idempotent: does nothing when all are present.
set -euo pipefail

PACKAGES=(
  # build
  cmake make pkg-config clang-14 llvm-14 libclang-rt-14-dev libfuzzer-14-dev
  libbpf-dev bpftool libelf-dev zlib1g-dev
  libspdlog-dev libfmt-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libre2-dev
  libgtest-dev libgmock-dev libbenchmark-dev clang-format
  libprotobuf-dev protobuf-compiler protobuf-compiler-grpc libgrpc++-dev libcurl4-openssl-dev
  libnghttp2-dev  # HPACK decoding for HTTP/2 and gRPC
  # end-to-end peers
  nginx golang-go openjdk-17-jdk-headless nodejs python3 curl prometheus wrk hey libcap2-bin
  python3-grpcio python3-grpc-tools golang-google-grpc-dev nghttp2-client  # HTTP/2 and gRPC peers
  openssl  # the TLS tests make throwaway certificates with the openssl CLI
  # benchmarks
  valgrind  # bench/callgrind.py counts instructions per request with callgrind
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages (${missing[*]}); run as root to install them" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The OTLP receiver the end-to-end tests export to (npm packages, pinned).
"$(dirname "$0")/install-otlp-receiver.sh"
