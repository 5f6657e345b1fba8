"""A bootable QEMU guest without an image download: Debian's cloud kernel plus a busybox initramfs.

    kernel, initrd = build_guest_image(init_snippet=MY_SHELL_SNIPPET)
    xml = domain_xml("vm1", kernel, initrd, network="default", serial_log="/tmp/vm1.log")

The one builder of the sandbox's QEMU guest (sandbox.py, behind make demo and the Molecule
scenarios) and of the tests' guests (tests/integration/test_libvirt_guest.py).

Nothing is downloaded but Debian packages through apt (``apt-get download``): the cloud kernel
(``linux-image-*-cloud-amd64``, unpacked with ``dpkg-deb -x``) and, when the machine has no
``busybox-static``, that one. The initramfs holds busybox, the virtio network modules (insmod in
dependency order) and an ``/init`` that brings up lo and eth0, runs ``init_snippet`` (busybox sh)
and powers off; a snippet that never returns keeps the guest running. ``/etc/udhcpc.sh`` in the
guest configures eth0 from a lease and prints ``GUEST-LEASE ip=... mask=... router=... dns=...``.
Output goes to the serial console, so boot the guest with ``console=ttyS0`` and a serial log file
(``domain_xml`` does both), and read the log.

Everything is cached under build/guest-image/<kernel version>/: the kernel once, one initrd per
distinct snippet and extra files, so later runs (and the other callers) reuse them. Writes are
atomic, so parallel runs can share the cache.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = REPO / "build" / "guest-image"
KERNEL_METAPACKAGE = "linux-image-cloud-amd64"
# virtio is modular in Debian's cloud kernel; each module needs the ones before it.
VIRTIO_NET_MODULES = (
    "virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci",
    "failover", "net_failover", "virtio_net",
)

UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    for r in $router; do ip route replace default via "$r"; break; done
    : > /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    echo "GUEST-LEASE ip=$ip mask=$mask router=$router dns=$dns"
    ;;
esac
"""

INIT_TEMPLATE = """#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /tmp /etc
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
for m in {modules}; do insmod /lib/modules/$m.ko || echo "GUEST-INSMOD-FAILED $m"; done
ip link set lo up
ip link set eth0 up
echo GUEST-BOOTED
{snippet}
echo GUEST-DONE
sync
poweroff -f
"""

# What a guest does when the caller gives no snippet: get a lease and show it.
DEFAULT_SNIPPET = "udhcpc -i eth0 -n -q -t 10 -T 1 -s /etc/udhcpc.sh"


def _run(argv, cwd=None):
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError("%s failed (rc=%s): %s" % (" ".join(argv), proc.returncode, proc.stderr.strip()))
    return proc.stdout


def apt_update_once(_done=[]):  # pylint: disable=dangerous-default-value
    """Fresh machines (CI images) may have no package lists yet: fetch them once, then retry."""
    if _done:
        return False
    _done.append(True)
    _run(["apt-get", "update", "-qq"])
    return True


def kernel_package(metapackage=KERNEL_METAPACKAGE):
    """The versioned kernel package the metapackage points at, e.g. linux-image-6.1.0-56-cloud-amd64."""
    while True:
        proc = subprocess.run(["apt-cache", "depends", metapackage], capture_output=True, text=True, check=False)
        for line in proc.stdout.splitlines():
            name = line.split(":", 1)[-1].strip()
            if line.strip().startswith("Depends:") and name.startswith("linux-image-"):
                return name
        if not apt_update_once():
            raise RuntimeError("apt knows no kernel behind %s" % metapackage)


def download(package, into):
    """``apt-get download`` one package into the directory ``into``; return the .deb's path."""
    os.chmod(into, 0o755)  # apt's _apt user downloads into it
    proc = subprocess.run(["apt-get", "download", "-q", package], cwd=into, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0 and apt_update_once():
        proc = subprocess.run(["apt-get", "download", "-q", package], cwd=into, capture_output=True, text=True,
                              check=False)
    deb = next(Path(into).glob(package + "_*.deb"), None)
    if deb is None:
        raise RuntimeError("apt-get download %s failed: %s" % (package, proc.stderr.strip()))
    return deb


def fetch_kernel(cache_dir=DEFAULT_CACHE):
    """Download and unpack the kernel package once; return its cache directory
    (holding vmlinuz and modules/<name>.ko for those virtio network modules that are not built in)."""
    package = kernel_package()
    version = package[len("linux-image-"):]
    target = Path(cache_dir) / version
    vmlinuz = target / "vmlinuz"
    if vmlinuz.exists():
        return target
    with tempfile.TemporaryDirectory(prefix="guest-kernel-") as tmp:
        deb = download(package, tmp)
        unpacked = Path(tmp) / "root"
        _run(["dpkg-deb", "-x", str(deb), str(unpacked)])
        (target / "modules").mkdir(parents=True, exist_ok=True)
        modules_root = unpacked / "lib" / "modules" / version
        for module in VIRTIO_NET_MODULES:
            found = next(modules_root.rglob("%s.ko*" % module), None)
            if found is not None:  # else built into this kernel
                _install(found, target / "modules" / ("%s.ko" % module))
        _install(unpacked / "boot" / ("vmlinuz-%s" % version), vmlinuz)  # last: marks the cache complete
    return target


def _install(source, dest):
    """Copy (unpacking a .xz module) then rename, so another run reading the cache never sees half a file."""
    partial = dest.with_name(dest.name + ".%d.tmp" % os.getpid())
    opener = lzma.open if source.suffix == ".xz" else open
    with opener(source, "rb") as src, open(partial, "wb") as out:
        shutil.copyfileobj(src, out)
    partial.rename(dest)


def busybox_binary(work):
    """A static busybox: the machine's busybox-static, or that package unpacked under ``work``."""
    installed = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "busybox-static"], capture_output=True,
                               text=True, check=False)
    if "install ok installed" in installed.stdout and os.path.exists("/bin/busybox"):
        return Path("/bin/busybox")
    unpacked = Path(work) / "busybox-static"
    _run(["dpkg-deb", "-x", str(download("busybox-static", work)), str(unpacked)])
    return unpacked / "bin" / "busybox"


def build_initrd(kernel_dir, init_snippet=DEFAULT_SNIPPET, extra_files=None):
    """An initramfs (gzip'd newc cpio) whose /init runs ``init_snippet``; cached by content."""
    modules_dir = Path(kernel_dir) / "modules"
    modules = [m for m in VIRTIO_NET_MODULES if (modules_dir / ("%s.ko" % m)).exists()]
    init = INIT_TEMPLATE.format(modules=" ".join(modules), snippet=init_snippet)
    extra_files = dict(extra_files or {})
    extra_files.setdefault("etc/udhcpc.sh", UDHCPC_SCRIPT)
    digest = hashlib.sha256((init + repr(sorted(extra_files.items()))).encode()).hexdigest()[:16]
    initrd = Path(kernel_dir) / ("initrd-%s.img" % digest)
    if initrd.exists():
        return initrd
    with tempfile.TemporaryDirectory(prefix="guest-initrd-") as tmp:
        root = Path(tmp) / "root"
        for sub in ("bin", "lib/modules", "etc", "proc", "sys", "dev", "tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy(busybox_binary(tmp), root / "bin" / "busybox")
        (root / "bin" / "busybox").chmod(0o755)
        (root / "bin" / "sh").symlink_to("busybox")
        for module in modules:
            shutil.copy2(modules_dir / ("%s.ko" % module), root / "lib" / "modules")
        (root / "init").write_text(init)
        (root / "init").chmod(0o755)
        for relative, content in extra_files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            path.chmod(0o755)
        files = subprocess.run(["find", "."], cwd=root, capture_output=True, text=True, check=True).stdout
        archive = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=root, input=files.encode(),
                                 capture_output=True, check=True).stdout
        partial = initrd.with_name(initrd.name + ".%d.tmp" % os.getpid())
        partial.write_bytes(gzip.compress(archive, compresslevel=6))
        partial.rename(initrd)  # atomic, so a concurrent reader never sees half an image
    return initrd


def build_guest_image(dest_dir=DEFAULT_CACHE, init_snippet=DEFAULT_SNIPPET, extra_files=None):
    """Return (kernel_path, initrd_path) of a guest whose init runs ``init_snippet`` (busybox sh).

    ``extra_files`` maps paths inside the initramfs to their content (made executable).
    """
    kernel_dir = fetch_kernel(dest_dir)
    return kernel_dir / "vmlinuz", build_initrd(kernel_dir, init_snippet, extra_files)


def domain_xml(name, kernel, initrd, network, serial_log, mac="52:54:00:aa:00:01", memory_mib=256, queues=None,
               cmdline=""):
    """A TCG (``type='qemu'``) domain booting ``kernel``/``initrd`` with one virtio NIC on ``network``
    and the serial console written to ``serial_log``; ``cmdline`` is appended to the kernel command
    line (the guest's init reads its parameters from /proc/cmdline). Nested KVM hangs on this kind
    of host."""
    driver = "<driver queues='%d'/>" % queues if queues else ""
    return """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>{memory}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <interface type='network'>
      <source network='{network}'/>
      <mac address='{mac}'/>
      <model type='virtio'/>
      {driver}
    </interface>
    <serial type='file'>
      <source path='{log}'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
""".format(name=name, memory=memory_mib, kernel=kernel, initrd=initrd, network=network, log=serial_log, mac=mac,
           driver=driver, cmdline=" ".join(filter(None, ("console=ttyS0 panic=-1 quiet", cmdline))))
