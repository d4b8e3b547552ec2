#!/usr/bin/env bash
# Installs the Debian packages joinguard's tests and attester need. Idempotent: does nothing when
# everything is present. Needs root (or sudo) on Debian/Ubuntu.
set -euo pipefail

packages=(swtpm swtpm-tools tpm2-tools libtss2-dev nats-server libhogweed6 libgmp10)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages present: ${packages[*]}"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "installed: ${missing[*]}"
