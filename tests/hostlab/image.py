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

The roles' packages are not in the image: ``build_repo`` downloads them, with every dependency
the image lacks, into a local package repository (per suite, cached like the images), which the
lab serves to its VMs over HTTP from inside its namespace (``HostLab.serve_packages``), so the
roles' install tasks really install, and no VM reaches anything outside our namespaces.

Run as a script to build (or find) an image: ``python tests/hostlab/image.py bookworm``; its
package repository: ``python tests/hostlab/image.py --repo bookworm``.
"""

from __future__ import annotations

import fcntl
import gzip
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
# The unit does not wait on eth0's device unit: under load (a Debian 13 reboot with a load of 8
# on the 2 cores) udev announced neither eth0 nor ttyS0 within systemd's 90 s device timeout,
# the unit failed as a dependency and the VM never got its address; the script waits instead.
MGMT_SCRIPT = """#!/bin/sh
set -e
for word in $(cat /proc/cmdline); do
  case "$word" in
    hostlab.addr=*) addr=${word#hostlab.addr=} ;;
    hostlab.gw=*) gw=${word#hostlab.gw=} ;;
  esac
done
[ -n "$addr" ] || exit 0
# eth0 appears when udev has loaded virtio_net; under TCG on a loaded machine that took longer
# than systemd's 90 s device timeout, so the wait is here (10 min), not on the device unit.
i=0
until [ -e /sys/class/net/eth0 ]; do
  i=$((i+1)); [ $i -le 600 ] || { echo "hostlab-mgmt: no eth0 after 600 s" >&2; exit 1; }
  sleep 1
done
ip link set dev eth0 up
ip addr replace "$addr" dev eth0
[ -z "$gw" ] || ip route replace default via "$gw" dev eth0
"""
MGMT_UNIT = """[Unit]
Description=hostlab management address on eth0 (test lab only)
DefaultDependencies=no
Wants=network-pre.target
Before=network-pre.target ssh.service

[Service]
Type=oneshot
RemainAfterExit=yes
TimeoutStartSec=infinity
ExecStart=/usr/local/sbin/hostlab-mgmt

[Install]
WantedBy=multi-user.target
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
BUILD_VERSION = "2"


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
    # Each VM makes its own machine-id on first boot. systemd takes D-Bus's machine ID when
    # /etc/machine-id is empty, and dbus's postinst wrote one into the image: every VM had the
    # same machine-id, so udev gave bridges of the same name the same MAC on every VM (two VMs'
    # brv on one trunk could not reach each other). Debian links the D-Bus file to ours.
    (root / "etc/machine-id").write_text("")
    dbus_id = root / "var/lib/dbus/machine-id"
    if dbus_id.exists() or dbus_id.is_symlink():
        dbus_id.unlink()
        dbus_id.symlink_to("/etc/machine-id")
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
    if (target / "suite").exists() and Image(target).complete():
        return Image(target)  # built images appear whole (renamed into place): no wait for another build
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


# -- the local package repository ------------------------------------------------------------------

# Packages the VMs may install on top of the image, beyond what the roles' vars/main.yml name
# (read at build time, so a package a role adds is downloaded without touching this file): Docker
# for port_forward's coexistence with a real dockerd, NetworkManager for the bridge's third
# persistence backend, and the DHCP client of the guest checks (dhclient, in guest namespaces;
# busybox would do too, but installing it regenerates the initramfs, minutes under TCG).
REPO_EXTRA_PACKAGES = ("docker.io", "network-manager", "isc-dhcp-client")
# The roles' package lists for Debian, as "role:variable" in roles/<role>/vars/main.yml.
REPO_ROLE_LISTS = ("kvm_host:kvm_host_packages_by_family", "bridge_host:bridge_host_packages_by_family",
                   "bridge_host:bridge_host_dnsmasq_package_by_family")
# Raise when the repository's build steps change in a way its inputs do not show.
REPO_VERSION = "1"
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def repo_packages():
    """The packages the local repository offers, with their dependencies: the roles' Debian lists
    and REPO_EXTRA_PACKAGES, sorted."""
    import yaml  # the venv's (Ansible needs it); the image build itself needs only the stdlib
    names = set(REPO_EXTRA_PACKAGES)
    for item in REPO_ROLE_LISTS:
        role, variable = item.split(":")
        data = yaml.safe_load((REPO / "roles" / role / "vars" / "main.yml").read_text()) or {}
        names.update(data.get(variable, {}).get("Debian", ()))
    return tuple(sorted(names))


class PackageRepo:
    """A flat apt repository (``Packages``, ``Packages.gz``, ``Release`` and the .debs in one
    folder) for one suite, made for one image."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.suite = (self.dir / "suite").read_text().strip() if (self.dir / "suite").exists() else None

    def complete(self):
        return all((self.dir / name).exists() for name in ("suite", "Packages", "Packages.gz", "Release"))

    def debs(self):
        return sorted(self.dir.glob("*.deb"))


def _apt_config(work, mirror, suite, status):
    """An apt configuration of its own (none of this machine's apt.conf.d, sources, preferences
    or state) that resolves against the image's dpkg status and the suite's archive."""
    for sub in ("parts", "lists/partial", "archives/partial", "cache", "log"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    (work / "sources.list").write_text("deb [arch=amd64 signed-by=%s] %s %s main\n" % (DEBIAN_KEYRING, mirror, suite))
    (work / "preferences").write_text("")
    conf = work / "apt.conf"
    conf.write_text("\n".join((
        'Dir::Etc::Parts "%s";' % (work / "parts"),
        'Dir::Etc::SourceList "%s";' % (work / "sources.list"),
        'Dir::Etc::SourceParts "%s";' % (work / "parts"),
        'Dir::Etc::Preferences "%s";' % (work / "preferences"),
        'Dir::Etc::PreferencesParts "%s";' % (work / "parts"),
        'Dir::State "%s";' % work,
        'Dir::State::Lists "%s";' % (work / "lists"),
        'Dir::State::status "%s";' % status,
        'Dir::State::extended_states "%s";' % (work / "extended_states"),
        'Dir::Cache "%s";' % (work / "cache"),
        'Dir::Cache::Archives "%s";' % (work / "archives"),
        'Dir::Log "%s";' % (work / "log"),
        'APT::Architecture "amd64";',
        'APT::Architectures { "amd64"; };',
        'APT::Sandbox::User "root";',
        'APT::Install-Recommends "true";',  # what the VM's apt (and Ansible's apt module) installs
        'Debug::NoLocking "true";',
        'Acquire::Languages "none";',
        "")))
    return dict(os.environ, APT_CONFIG=str(conf), DEBIAN_FRONTEND="noninteractive", LC_ALL="C")


def _index(folder):
    """Write Packages, Packages.gz and Release for the .debs in ``folder`` (a flat repository)."""
    stanzas = []
    for deb in sorted(folder.glob("*.deb")):
        control = subprocess.run(["dpkg-deb", "--field", str(deb)], check=True, capture_output=True, text=True).stdout.rstrip("\n")
        data = deb.read_bytes()
        stanzas.append("%s\nFilename: ./%s\nSize: %d\nMD5sum: %s\nSHA256: %s\n" % (
            control, deb.name, len(data), hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest()))
    packages = "\n".join(stanzas).encode()
    (folder / "Packages").write_bytes(packages)
    with gzip.GzipFile(folder / "Packages.gz", "wb", mtime=0) as out:
        out.write(packages)
    lines = ["Origin: hostlab", "Label: hostlab", "Suite: hostlab", "Codename: hostlab", "Architectures: amd64 all",
             "Date: %s" % time.strftime("%a, %d %b %Y %H:%M:%S UTC", time.gmtime()), "MD5Sum:"]
    for name in ("Packages", "Packages.gz"):
        data = (folder / name).read_bytes()
        lines.append(" %s %d %s" % (hashlib.md5(data).hexdigest(), len(data), name))
    lines.append("SHA256:")
    for name in ("Packages", "Packages.gz"):
        data = (folder / name).read_bytes()
        lines.append(" %s %d %s" % (hashlib.sha256(data).hexdigest(), len(data), name))
    (folder / "Release").write_text("\n".join(lines) + "\n")


def build_repo(suite="bookworm", cache=CACHE, log_to=None):
    """Return the cached PackageRepo of ``suite``'s image, downloading it first when none has this
    key. apt resolves the packages against the image's own dpkg status (read from its disk with
    debugfs, no mount) and the suite's archive on the machine's mirror, so the repository holds
    exactly what a VM of that image lacks to install any of ``repo_packages()``."""
    image = build(suite, cache=cache, log_to=log_to)
    mirror = apt_mirror()
    names = repo_packages()
    digest = hashlib.sha256()
    for part in (REPO_VERSION, image.dir.name, mirror, ",".join(names)):
        digest.update(part.encode() + b"\0")
    target = Path(cache) / ("repo-%s-%s" % (suite, digest.hexdigest()[:16]))
    if PackageRepo(target).complete():
        return PackageRepo(target)
    with open(Path(cache) / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if PackageRepo(target).complete():
            return PackageRepo(target)
        work = Path(tempfile.mkdtemp(prefix="repo-%s-" % suite, dir=str(cache)))
        try:
            with open(log_to or (work / "build.log"), "a") as log:
                started = time.monotonic()
                status = work / "status"
                _run(["debugfs", "-R", "dump /var/lib/dpkg/status %s" % status, str(image.disk)], log)
                if not status.stat().st_size:
                    raise RuntimeError("no dpkg status in %s" % image.disk)
                env = _apt_config(work / "apt", mirror, suite, status)
                _run(["apt-get", "-q", "update"], log, env=env)
                _run(["apt-get", "-q", "-y", "--download-only", "install"] + list(names), log, env=env)
                out = work / "repo"
                out.mkdir()
                for deb in (work / "apt" / "archives").glob("*.deb"):
                    deb.rename(out / deb.name)
                _index(out)
                (out / "packages").write_text("".join(n + "\n" for n in names))
                (out / "suite").write_text(suite + "\n")
                log.write("repository of %d .debs for %s in %.0f s\n" % (len(list(out.glob("*.deb"))), suite, time.monotonic() - started))
            if target.exists():
                shutil.rmtree(target)
            (work / "repo").rename(target)
            return PackageRepo(target)
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--repo"]:
        print(build_repo(args[1] if len(args) > 1 else "bookworm", log_to="/dev/stderr").dir)
    else:
        print(build(args[0] if args else "bookworm", log_to="/dev/stderr").dir)
