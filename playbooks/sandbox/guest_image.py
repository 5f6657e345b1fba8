#!/usr/bin/env python
"""Build the sandbox's QEMU guest: a Debian cloud kernel and a busybox initramfs.

Nothing is downloaded but two Debian packages through apt (``apt-get download``): the cloud
kernel (``linux-image-*-cloud-amd64``, unpacked with ``dpkg -x``) and, when the machine has no
``busybox-static``, that one. The initramfs holds busybox, the virtio network modules and an
``/init`` that gets a DHCP lease, runs the sandbox's checks from inside the guest, prints them on
the serial console as ``HNCHECK <name> PASS|FAIL <detail>`` lines and then serves
``guest=<name>`` over HTTP on port 80 for the inbound port-forward check.

Usage: guest_image.py OUTDIR   (prints the paths of vmlinuz and initrd.img as JSON; cached)
"""

from __future__ import annotations

import glob
import hashlib
import json
import lzma
import os
import shutil
import subprocess
import sys
import tempfile

# virtio is modular in the Debian cloud kernel; load order matters.
MODULES = ["virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci",
           "failover", "net_failover", "virtio_net"]

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^hn\.$1=//p"; }
NAME=$(arg name); PRIVATE=$(arg private); PUBLIC=$(arg public); HTTP=$(arg http)
hostname "$NAME"
for m in %(modules)s; do insmod /lib/modules/$m.ko 2>/dev/null; done
ip link set lo up
ip link set eth0 up
say() { echo "HNCHECK $*"; }
LEASE=$(udhcpc -i eth0 -n -q -f -t 15 -T 2 -s /udhcpc.sh 2>/dev/null | grep '^LEASE ')
IP=$(echo "$LEASE" | sed -n 's/.* ip=\([^ ]*\).*/\1/p')
GW=$(echo "$LEASE" | sed -n 's/.* router=\([^ ]*\).*/\1/p')
DNS=$(echo "$LEASE" | sed -n 's/.* dns=\([^ ]*\).*/\1/p')
if [ -n "$IP" ]; then say dhcp PASS "ip=$IP router=$GW dns=$DNS"; else say dhcp FAIL "no lease"; fi
retry() { i=0; while [ $i -lt 10 ]; do "$@" && return 0; i=$((i+1)); sleep 1; done; return 1; }
if retry ping -c 1 -W 2 "$GW" >/dev/null 2>&1; then say ping_gateway PASS "$GW"; else say ping_gateway FAIL "$GW"; fi
lookup() { nslookup "$1" "$DNS" 2>&1 | sed -n '/^Name:/,$p' | sed -n 's/^Address[^:]*: *\([0-9.]*\).*/\1/p' | head -n 1; }
A=""; i=0; while [ -z "$A" ] && [ $i -lt 10 ]; do A=$(lookup "$PRIVATE"); i=$((i+1)); [ -z "$A" ] && sleep 1; done
if [ -n "$A" ]; then say dns_private PASS "$PRIVATE=$A"; else say dns_private FAIL "$PRIVATE: $(nslookup "$PRIVATE" "$DNS" 2>&1 | tail -n 1)"; fi
A=""; i=0; while [ -z "$A" ] && [ $i -lt 10 ]; do A=$(lookup "$PUBLIC"); i=$((i+1)); [ -z "$A" ] && sleep 1; done
if [ -n "$A" ]; then say dns_public PASS "$PUBLIC=$A"; else say dns_public FAIL "$PUBLIC: $(nslookup "$PUBLIC" "$DNS" 2>&1 | tail -n 1)"; fi
# (busybox-static's wget segfaults here; nc speaks HTTP/1.0 well enough)
get() { printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 "$1" "$2" 2>/dev/null | tail -n 1; }
OUT=""; i=0; while [ -z "$OUT" ] && [ $i -lt 10 ]; do OUT=$(get "$HTTP" 80); i=$((i+1)); [ -z "$OUT" ] && sleep 1; done
if [ -n "$OUT" ]; then say nat_out PASS "$OUT"; else say nat_out FAIL "no answer from http://$HTTP/"; fi
mkdir -p /www
echo "guest=$NAME" > /www/index.html
httpd -p 80 -h /www
say done PASS "$NAME"
while true; do sleep 3600; done
"""

UDHCPC = r"""#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    for r in $router; do ip route replace default via "$r"; break; done
    set -- $dns
    echo "LEASE ip=$ip mask=$mask router=$router dns=$1"
    ;;
esac
"""


def run(argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)


def apt_update_once(_done=[]):  # pylint: disable=dangerous-default-value
    """Fresh machines (CI images) may have no package lists yet: fetch them once, then retry."""
    if _done:
        return False
    _done.append(True)
    run(["apt-get", "update", "-qq"])
    return True


def kernel_package():
    while True:
        proc = subprocess.run(["apt-cache", "depends", "linux-image-cloud-amd64"], capture_output=True, text=True,
                              check=False)
        for line in proc.stdout.splitlines():
            line = line.strip()
            if line.startswith("Depends:") and "linux-image-" in line:
                return line.split()[-1]
        if not apt_update_once():
            raise SystemExit("no linux-image-*-cloud-amd64 package known to apt")


def download(package, into):
    proc = subprocess.run(["apt-get", "download", package], cwd=into, capture_output=True, text=True, check=False)
    if proc.returncode != 0 and apt_update_once():
        proc = subprocess.run(["apt-get", "download", package], cwd=into, capture_output=True, text=True, check=False)
    debs = glob.glob(os.path.join(into, package + "_*.deb"))
    if not debs:
        raise SystemExit("apt-get download %s failed: %s" % (package, proc.stderr.strip()))
    return debs[0]


def busybox_binary(work):
    """A static busybox: the machine's busybox-static, or that package unpacked."""
    installed = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "busybox-static"], capture_output=True, text=True, check=False)
    if "install ok installed" in installed.stdout and os.path.exists("/bin/busybox"):
        return "/bin/busybox"
    deb_dir = os.path.join(work, "bb")
    os.makedirs(deb_dir)
    deb = download("busybox-static", deb_dir)
    run(["dpkg", "-x", deb, os.path.join(deb_dir, "x")])
    return os.path.join(deb_dir, "x", "bin", "busybox")


def build(out):
    vmlinuz, initrd = os.path.join(out, "vmlinuz"), os.path.join(out, "initrd.img")
    stamp = hashlib.sha256((INIT + UDHCPC + " ".join(MODULES)).encode()).hexdigest()[:16]
    stamp_file = os.path.join(out, "stamp")
    if os.path.exists(vmlinuz) and os.path.exists(initrd) and os.path.exists(stamp_file):
        with open(stamp_file) as handle:
            if handle.read().strip() == stamp:
                return vmlinuz, initrd
    os.makedirs(out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="hn-guest-", dir=out)
    try:
        deb = download(kernel_package(), work)
        kroot = os.path.join(work, "k")
        run(["dpkg", "-x", deb, kroot])
        kernel = sorted(glob.glob(os.path.join(kroot, "boot", "vmlinuz-*")))[0]
        version = os.path.basename(kernel)[len("vmlinuz-"):]
        root = os.path.join(work, "root")
        for sub in ("bin", "proc", "sys", "dev", "lib/modules", "www", "tmp"):
            os.makedirs(os.path.join(root, sub), exist_ok=True)
        shutil.copy(busybox_binary(work), os.path.join(root, "bin", "busybox"))
        os.chmod(os.path.join(root, "bin", "busybox"), 0o755)
        os.symlink("busybox", os.path.join(root, "bin", "sh"))
        moddir = os.path.join(kroot, "lib", "modules", version)
        for name in MODULES:
            found = list(glob.glob(os.path.join(moddir, "**", name + ".ko*"), recursive=True))
            if not found:
                continue  # built in
            src, dst = found[0], os.path.join(root, "lib", "modules", name + ".ko")
            if src.endswith(".xz"):
                with lzma.open(src) as handle, open(dst, "wb") as target:
                    target.write(handle.read())
            else:
                shutil.copy(src, dst)
        with open(os.path.join(root, "init"), "w") as handle:
            handle.write(INIT % {"modules": " ".join(MODULES)})
        with open(os.path.join(root, "udhcpc.sh"), "w") as handle:
            handle.write(UDHCPC)
        os.chmod(os.path.join(root, "init"), 0o755)
        os.chmod(os.path.join(root, "udhcpc.sh"), 0o755)
        files = subprocess.run("find . | cpio -o -H newc --quiet | gzip -1", shell=True, cwd=root,
                               check=True, capture_output=True).stdout
        with open(initrd + ".tmp", "wb") as handle:
            handle.write(files)
        shutil.copy(kernel, vmlinuz + ".tmp")
        os.replace(initrd + ".tmp", initrd)
        os.replace(vmlinuz + ".tmp", vmlinuz)
        with open(stamp_file, "w") as handle:
            handle.write(stamp + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return vmlinuz, initrd


if __name__ == "__main__":
    kernel_path, initrd_path = build(os.path.abspath(sys.argv[1]))
    print(json.dumps({"kernel": kernel_path, "initrd": initrd_path}))
