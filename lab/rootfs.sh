#!/usr/bin/env bash
# Builds (once) a Debian sid root filesystem holding Asterisk 22 for the lab (lab/asterisk.ts).
# Debian 12 ships no asterisk package; sid does. The result is cached in .cache/asterisk-root.
set -euo pipefail
root="${ASTERISK_ROOT:-$(cd "$(dirname "$0")/.." && pwd)/.cache/asterisk-root}"
if [ -x "$root/usr/sbin/asterisk" ]; then
  echo "asterisk rootfs: $root (cached)"
  exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
rm -rf "$root.partial"
mkdir -p "$(dirname "$root")"
debootstrap --variant=minbase --include=asterisk,asterisk-modules sid "$root.partial" http://deb.debian.org/debian
mv "$root.partial" "$root"
echo "asterisk rootfs: $root (built)"
