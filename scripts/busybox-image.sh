#!/usr/bin/env bash
# Builds the busybox test image as a rootfs tarball (FROM scratch + Debian's busybox-static +
# its applet links), for `berth import` / `docker import`.
# Usage: scripts/busybox-image.sh OUT.tar
set -euo pipefail
out=${1:?usage: busybox-image.sh OUT.tar}
bb=${BUSYBOX:-/bin/busybox}
[ -x "$bb" ] || { echo "busybox-static is not installed ($bb); run scripts/setup.sh" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"/{bin,etc,tmp,root,home,var/spool/mail,var/www,usr/bin,usr/sbin,sbin,proc,sys,dev}
cp "$bb" "$tmp/bin/busybox"
for applet in $("$bb" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$tmp/bin/$applet"
done
cat > "$tmp/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
P
cat > "$tmp/etc/group" <<'G'
root:x:0:
daemon:x:1:
tty:x:5:
users:x:100:
nogroup:x:65534:
G
chmod 755 "$tmp"
chmod 1777 "$tmp/tmp"
chmod 700 "$tmp/root"
tar --numeric-owner --owner=0 --group=0 --sort=name --mtime='2026-01-01 00:00:00Z' \
    -C "$tmp" -cf "$out" .
