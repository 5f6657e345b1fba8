# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Debian host images for the VM lab, built at test time from Debian packages and cached.

Why build instead of download: the machine reaches Debian's package archive and nothing else, and
an image made from packages is reproducible from its inputs. The cache key is a hash of every
input (suite, mirror, package list, this file's text), so a changed input rebuilds and an
unchanged one costs nothing. The image is a sparse raw ext4 file made with ``mkfs.ext4 -d`` (no
loop mount, no root-only block devices), a kernel and a small initramfs with only the virtio
drivers the VM needs (``MODULES=most`` would inspect the build machine, not the guest).

Run as a script to build (or find) an image: ``python tests/hostlab/image.py bookworm``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / "build" / "hostlab" / "images"

# What every host image carries: systemd, SSH, Python for Ansible, and the tools the bridge,
# ip_forward and netfilter modules drive, plus both persistence backends Debian has.
PACKAGES = (
    "systemd-sysv", "udev", "dbus", "kmod", "initramfs-tools", "linux-image-cloud-amd64",
    "openssh-server", "python3", "iproute2", "nftables", "iptables", "ifupdown", "iputils-ping",
    "procps",
    # what the roles' package tasks need to find their packages installed (ansible's apt module)
    "python3-apt",
)
# Packages one suite needs on top (none yet: trixie's archive still ships networkd in systemd).
SUITE_PACKAGES = {"bookworm": (), "trixie": ()}
DISK_SIZE = "2G"
# The first virtio drivers the kernel needs to find its root disk; everything else loads from it.
INITRAMFS_MODULES = ("virtio_pci", "virtio_blk", "ext4")

# Brings up the management NIC from the kernel command line (hostlab.addr=, hostlab.gw=), apart
# from whichever network manager a test is exercising, so SSH works whatever the test writes.
MGMT_SCRIPT = """#!/bin/sh
set -e
for word in $(cat /proc/cmdline); do
  case "$word" in
    hostlab.addr=*) addr=${word#hostlab.addr=} ;;
    hostlab.gw=*) gw=${word#hostlab.gw=} ;;
  esac
done
[ -n "$addr" ] || exit 0
ip link set dev eth0 up
ip addr replace "$addr" dev eth0
[ -z "$gw" ] || ip route replace default via "$gw" dev eth0
"""
MGMT_UNIT = """[Unit]
Description=hostlab management address on eth0 (test lab only)
DefaultDependencies=no
Wants=network-pre.target
Before=network-pre.target ssh.service
After=sys-subsystem-net-devices-eth0.device
BindsTo=sys-subsystem-net-devices-eth0.device

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/hostlab-mgmt

[Install]
WantedBy=sys-subsystem-net-devices-eth0.device multi-user.target
"""
# Units a test host never needs and that cost boot time under TCG.
MASKED_UNITS = ("apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "fstrim.timer",
                "systemd-timesyncd.service", "man-db.timer", "e2scrub_reap.service")


def apt_mirror():
    """The Debian mirror this machine is configured with (the only archive it may reach)."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*")) + [Path("/etc/apt/sources.list")]:
        if not path.is_file():
            continue
        text = path.read_text()
        found = re.search(r"^URIs:\s*(\S+/debian)\s*$", text, re.M) or re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)\s", text, re.M)
        if found:
            return found.group(1)
    return "http://deb.debian.org/debian"


def packages(suite):
    return tuple(PACKAGES) + tuple(SUITE_PACKAGES.get(suite, ()))


# Raise when the build steps change in a way the inputs below do not show.
BUILD_VERSION = "1"


def cache_key(suite, mirror):
    """A hash of everything that goes into the image, and nothing else (editing a comment here
    does not cost a rebuild)."""
    digest = hashlib.sha256()
    for part in (BUILD_VERSION, suite, mirror, ",".join(packages(suite)), DISK_SIZE, " ".join(INITRAMFS_MODULES),
                 MGMT_SCRIPT, MGMT_UNIT, " ".join(MASKED_UNITS)):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:16]


class Image:
    """A built image: kernel, initrd, root disk and the SSH key that opens it."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.kernel = self.dir / "vmlinuz"
        self.initrd = self.dir / "initrd.img"
        self.disk = self.dir / "root.img"
        self.key = self.dir / "id_ed25519"
        self.suite = (self.dir / "suite").read_text().strip()

    def complete(self):
        return all(p.exists() for p in (self.kernel, self.initrd, self.disk, self.key))


def _run(argv, log, **kw):
    log.write("+ %s\n" % " ".join(argv))
    log.flush()
    subprocess.run(argv, check=True, stdout=log, stderr=subprocess.STDOUT, **kw)


def _chroot(root, script, log):
    _run(["chroot", str(root), "/bin/sh", "-ec", script], log, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C"))


def _configure(root, key_pub, log):
    """Everything the VM needs on top of the packages: SSH key, fstab, hostname, the
    management unit, a small initramfs."""
    (root / "etc/hostname").write_text("hostlab\n")
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n127.0.1.1 hostlab\n")
    (root / "etc/fstab").write_text("/dev/vda / ext4 rw,errors=remount-ro 0 1\n")
    (root / "etc/machine-id").write_text("")  # each VM makes its own on first boot
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(key_pub)
    os.chmod(ssh_dir / "authorized_keys", 0o600)
    (root / "etc/ssh/sshd_config.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/ssh/sshd_config.d/hostlab.conf").write_text("PermitRootLogin prohibit-password\nUseDNS no\n")
    (root / "usr/local/sbin/hostlab-mgmt").write_text(MGMT_SCRIPT)
    os.chmod(root / "usr/local/sbin/hostlab-mgmt", 0o755)
    (root / "etc/systemd/system/hostlab-mgmt.service").write_text(MGMT_UNIT)
    (root / "etc/initramfs-tools/modules").write_text("".join(m + "\n" for m in INITRAMFS_MODULES))
    (root / "etc/initramfs-tools/conf.d/hostlab").write_text("MODULES=list\nCOMPRESS=gzip\n")
    (root / "etc/network/interfaces").write_text("source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n")
    (root / "etc/resolv.conf").unlink(missing_ok=True)
    (root / "etc/resolv.conf").write_text("nameserver 198.51.100.1\n")  # the lab's upstream side
    masks = " ".join(MASKED_UNITS)
    _chroot(root, "systemctl enable hostlab-mgmt.service\n"
                  "for u in %s; do ln -sf /dev/null /etc/systemd/system/$u; done\n"
                  "passwd -d root\n"
                  "update-initramfs -u -k all\n"
                  "apt-get clean\nrm -rf /var/lib/apt/lists/*" % masks, log)


def build(suite="bookworm", cache=CACHE, log_to=None):
    """Return the cached Image for ``suite``, building it first when no image has this key."""
    mirror = apt_mirror()
    target = Path(cache) / ("%s-%s" % (suite, cache_key(suite, mirror)))
    Path(cache).mkdir(parents=True, exist_ok=True)
    with open(Path(cache) / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs build one image, not two
        if (target / "suite").exists() and Image(target).complete():
            return Image(target)
        work = Path(tempfile.mkdtemp(prefix="build-%s-" % suite, dir=str(cache)))
        log = open(log_to or (work / "build.log"), "a")
        root = work / "rootfs"
        mounted = []
        try:
            started = time.monotonic()
            _run(["debootstrap", "--variant=minbase", "--include=" + ",".join(packages(suite)), suite, str(root), mirror], log)
            (root / "etc/resolv.conf").unlink(missing_ok=True)
            shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
            for sub in ("proc", "sys", "dev"):
                _run(["mount", "--bind", "/" + sub, str(root / sub)], log)
                mounted.append(root / sub)
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hostlab", "-f", str(work / "id_ed25519")], log)
            _configure(root, (work / "id_ed25519.pub").read_text(), log)
            for path in reversed(mounted):
                _run(["umount", "-l", str(path)], log)
            mounted = []
            boot = root / "boot"
            shutil.copy(sorted(boot.glob("vmlinuz-*"))[-1], work / "vmlinuz")
            shutil.copy(sorted(boot.glob("initrd.img-*"))[-1], work / "initrd.img")
            _run(["truncate", "-s", DISK_SIZE, str(work / "root.img")], log)
            _run(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(root), str(work / "root.img")], log)
            shutil.rmtree(root)
            (work / "suite").write_text(suite + "\n")
            log.write("built in %.0f s\n" % (time.monotonic() - started))
            log.close()
            if target.exists():
                shutil.rmtree(target)
            work.rename(target)
            return Image(target)
        finally:
            for path in reversed(mounted):
                subprocess.run(["umount", "-l", str(path)], check=False)
            if not log.closed:
                log.close()
            if work.exists() and not (work / "suite").exists():
                shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    image = build(sys.argv[1] if len(sys.argv) > 1 else "bookworm", log_to="/dev/stderr")
    print(image.dir)
