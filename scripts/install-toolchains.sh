#!/usr/bin/env bash
# Installs the Debian packages the cross-compilation tests need, when any is missing:
# the Arm cross compilers, qemu-user and the aarch64 cross libc. Needs root (or sudo).
set -euo pipefail
packages=(g++-aarch64-linux-gnu g++-arm-linux-gnueabihf qemu-user libc6-arm64-cross)
tools=(aarch64-linux-gnu-g++ arm-linux-gnueabihf-g++ qemu-aarch64)
missing=0
for tool in "${tools[@]}"; do command -v "$tool" >/dev/null || missing=1; done
[ -d /usr/aarch64-linux-gnu/lib ] || missing=1
[ "$missing" = 0 ] && exit 0
if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else
  echo "install-toolchains: need root to run: apt-get install ${packages[*]}" >&2
  exit 1
fi
echo "installing cross toolchains and qemu: ${packages[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
