"""A real libvirtd (with its dnsmasq) inside a test namespace, isolated from the machine's libvirt.

libvirtd's socket, pid files and state live at global paths, so each LibvirtHost gets a private
mount namespace in which per-host temp directories are bind-mounted over /etc/libvirt,
/var/lib/libvirt, /var/cache/libvirt, /var/log/libvirt, /run and /etc/resolv.conf. Clients (virsh,
the modules) enter both the network and the mount namespace of the running libvirtd with nsenter.
Every process libvirt started (virtlogd, libvirtd, dnsmasq, qemu) is stopped at teardown by the PID
in its pid file, never by name.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import time

from netlab import REPO, Lab, sh
from sandbox import libvirt_bind_mounts, prepare_libvirt_tree

URI = "qemu:///system"
CAPS_CACHE = REPO / "build" / "libvirt-cache"


class LibvirtHost:
    """One libvirtd in namespace ``ns`` of ``lab``; call start() then use virsh()/module()."""

    def __init__(self, lab: Lab, ns: str, resolv_conf: str = "nameserver 127.0.0.1\n"):
        self.lab = lab
        self.ns = ns
        self.root = lab.tmp / ("libvirt-" + ns)
        self.resolv_conf = resolv_conf
        self.libvirtd_pid = None

    # -- paths inside the host's private mount namespace, as seen from outside -----------------
    @property
    def run_dir(self):
        return self.root / "run"

    def _prepare_tree(self):
        prepare_libvirt_tree(self.root, subdirs=("lib", "log", "run/libvirt"))
        if CAPS_CACHE.is_dir():
            shutil.copytree(CAPS_CACHE, self.root / "cache", symlinks=True)
        else:
            (self.root / "cache").mkdir()
        (self.root / "resolv.conf").write_text(self.resolv_conf)

    def start(self, timeout=60):
        self._prepare_tree()
        root = self.root
        script = "\n".join(
            ["set -e"] + libvirt_bind_mounts(root)
            + ["mount --bind %s /etc/resolv.conf" % (root / "resolv.conf"), "virtlogd -d -p /run/virtlogd.pid", "libvirtd -d -p /run/libvirtd.pid"]
        )
        sh(["ip", "netns", "exec", self.ns, "unshare", "-m", "--propagation", "private", "sh", "-c", script])
        self.libvirtd_pid = self._wait_pid("libvirtd.pid", timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.virsh(["version"], check=False).returncode == 0:
                self._save_caps_cache()
                return self
            time.sleep(0.2)
        raise AssertionError("libvirtd in %s did not answer within %ss" % (self.ns, timeout))

    def _save_caps_cache(self):
        """Keep libvirtd's probe of the QEMU binaries for the next host (a few seconds each start).
        libvirt re-probes by itself when QEMU or libvirt changed, so a stale copy is harmless."""
        probed = self.root / "cache" / "qemu" / "capabilities"
        if CAPS_CACHE.is_dir() or not probed.is_dir() or not any(probed.iterdir()):
            return
        partial = CAPS_CACHE.with_name(CAPS_CACHE.name + ".%d.tmp" % os.getpid())
        shutil.copytree(self.root / "cache", partial, symlinks=True)
        try:
            partial.rename(CAPS_CACHE)
        except OSError:  # another run saved it first
            shutil.rmtree(partial, ignore_errors=True)

    def _wait_pid(self, name, timeout):
        path = self.run_dir / name
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if path.exists() and path.read_text().strip():
                return int(path.read_text().strip())
            time.sleep(0.05)
        raise AssertionError("%s did not appear" % path)

    # -- clients --------------------------------------------------------------------------------
    def enter(self):
        """argv prefix that runs a command in this host's network and mount namespaces."""
        return ["nsenter", "-t", str(self.libvirtd_pid), "-n", "-m"]

    def run(self, argv, check=True, input=None, timeout=60):
        return sh(self.enter() + list(argv), check=check, input=input, timeout=timeout)

    def virsh(self, argv, check=True, input=None, timeout=60):
        return self.run(["virsh", "-q", "-c", URI] + list(argv), check=check, input=input, timeout=timeout)

    def module(self, name, args, check_mode=False, diff=False, expect_fail=False):
        return self.lab.module(
            None, name, args, check_mode=check_mode, diff=diff, expect_fail=expect_fail, wrapper=self.enter()
        )

    def bridge_ports(self, bridge):
        out = self.lab.run(self.ns, ["ip", "-o", "link", "show", "master", bridge], check=False).stdout
        return sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line)

    # -- teardown -------------------------------------------------------------------------------
    def _pid_files(self):
        # driver.pid files are libvirtd's own per-driver locks, holding libvirtd's PID
        return sorted(p for p in self.run_dir.rglob("*.pid") if p.name != "driver.pid")

    def stop(self, grace=10.0):
        """Stop every process that wrote a pid file here (libvirtd, virtlogd, dnsmasq, qemu):
        SIGTERM to all at once, then SIGKILL to whatever is left after ``grace`` seconds."""
        pids = []
        for path in self._pid_files():
            try:
                pids.append(int(path.read_text().strip()))
            except (OSError, ValueError):
                continue
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
            time.sleep(0.05)
        for pid in pids:
            _signal(pid, signal.SIGKILL)


def _signal(pid, signum):
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as gone
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@contextlib.contextmanager
def holding_host_lock(host: LibvirtHost):
    """Hold the collection's per-host lock as a module inside ``host`` takes it (the lock file of
    its network namespace, under its private /run); yields a function that waits until another
    process has that file open, i.e. a module is waiting for the lock."""
    netns = host.run(["stat", "-L", "-c", "%i", "/proc/self/ns/net"]).stdout.strip()
    name = "netns-%s.lock" % netns
    path = host.run_dir / "hypervisor-network" / name
    path.parent.mkdir(parents=True, exist_ok=True)

    def wait_for_waiter(future, timeout=120):
        deadline = time.monotonic() + timeout
        while not _opened_by_another_process(name):
            assert time.monotonic() < deadline and not future.done(), "no module waited for the lock"
            time.sleep(0.1)

    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield wait_for_waiter
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _opened_by_another_process(file_name):
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == os.getpid():
            continue
        try:
            for fd in os.listdir("/proc/%s/fd" % pid):
                if os.readlink("/proc/%s/fd/%s" % (pid, fd)).endswith("/" + file_name):
                    return True
        except OSError:
            continue
    return False


def attach_guest_ns(lab: Lab, host: LibvirtHost, bridge: str, short: str, port_name: str):
    """A namespace standing in for a guest, with eth0 whose peer ``port_name`` is a bridge port."""
    guest = lab.ns(short)
    lab.veth(guest, "eth0", host.ns, port_name)
    lab.run(host.ns, ["ip", "link", "set", port_name, "master", bridge])
    return guest


# -- the fake internet and guests, shared by the libvirt tests ------------------------------------
PRIVATE_DNS, PUBLIC_DNS = "198.51.100.53", "203.0.113.53"
PRIVATE_NAME, PRIVATE_ADDR = "db.corp.example", "10.1.2.3"
PUBLIC_NAME, PUBLIC_ADDR = "www.example.com", "203.0.113.80"
# A host resolv.conf whose first nameserver answers REFUSED for everything but corp.example.
REFUSING_RESOLV_CONF = "nameserver %s\nnameserver %s\n" % (PRIVATE_DNS, PUBLIC_DNS)

# The sandbox's lease script: configures the interface and prints "LEASE ip=... dns=FIRST ...".
UDHCPC_SCRIPT = REPO / "playbooks" / "sandbox" / "files" / "udhcpc.sh"


def start_upstream(lab: Lab, hv_ns: str, ttl: int = 0):
    """An "upstream" namespace linked to ``hv_ns`` with two DNS servers: one authoritative for
    corp.example only (REFUSED for everything else), one that answers the public name. ``ttl``
    is the TTL of their answers (0, dnsmasq's default, keeps them out of every cache)."""
    upstream = lab.ns("up")
    lab.veth(hv_ns, "uplink", upstream, "eth0")
    lab.addr(hv_ns, "uplink", "198.51.100.1/24")
    for cidr in ("198.51.100.2/24", PRIVATE_DNS + "/24", PUBLIC_DNS + "/24"):
        lab.addr(upstream, "eth0", cidr)
    lab.route(hv_ns, "203.0.113.0/24", "via", "198.51.100.2")
    common = ["dnsmasq", "-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces",
              "--pid-file=", "--user=root", "--port=53", "--local-ttl=%d" % ttl]
    lab.spawn(upstream, common + ["--listen-address=" + PRIVATE_DNS, "--local=/corp.example/",
                                  "--address=/%s/%s" % (PRIVATE_NAME, PRIVATE_ADDR)])
    lab.spawn(upstream, common + ["--listen-address=" + PUBLIC_DNS, "--address=/%s/%s" % (PUBLIC_NAME, PUBLIC_ADDR)])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if dig(lab, upstream, PUBLIC_DNS, PUBLIC_NAME)[0] == "NOERROR":
            return upstream
        time.sleep(0.1)
    raise AssertionError("upstream DNS did not start")


def dig(lab: Lab, ns: str, server: str, name: str):
    """(status, [addresses]) of an A query from ``ns``; status is "TIMEOUT" if nothing answered."""
    out = lab.run(ns, ["dig", "@" + server, name, "A", "+time=2", "+tries=2", "+noall", "+comments", "+answer"], check=False).stdout
    status = "TIMEOUT"
    for line in out.splitlines():
        if "status:" in line:
            status = line.split("status:")[1].split(",")[0].strip()
    answers = [line.split()[-1] for line in out.splitlines() if line and not line.startswith(";") and " A " in line.replace("\t", " ")]
    return status, answers


def wait_dns_ready(lab: Lab, ns: str, server: str, timeout=60):
    """A fresh dnsmasq answers nothing for its first seconds; a client that retries meanwhile gets
    its question sent to every server, and the public answer then sits in the cache. Wait with a
    private name (asked from ``ns``), whose answer is the same from either upstream."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if dig(lab, ns, server, PRIVATE_NAME)[0] == "NOERROR":
            return
        time.sleep(0.5)
    raise AssertionError("dnsmasq on %s did not answer" % server)


def fix_refusing_nameserver(lab: Lab, host: LibvirtHost, network: dict, ask_from: str):
    """The fix of a host whose first nameserver refuses public names, as a user makes it:
    diagnose's nameservers check on ``host`` must propose libvirt_network with per-domain
    forwarders (corp.example to PRIVATE_DNS, the rest to PUBLIC_DNS); libvirt_network applies
    them to ``network`` and must report a change; then wait until the restarted dnsmasq answers
    on the network's gateway (asked from ``ask_from``, a namespace that reaches it). Shared by the
    guest_probe tests of a namespace guest and of a QEMU guest."""
    result = host.module("diagnose", {"public_test_name": PUBLIC_NAME, "dns_domains": ["corp.example"],
                                      "probe_timeout": 1.0, "log_files": [], "checks": ["nameservers"]})
    (bad,) = [f for f in result["findings"] if f["status"] != "ok"]
    assert bad["fix_module"]["args"]["dns"]["forwarders"] == [{"domain": "corp.example", "addr": PRIVATE_DNS},
                                                              {"addr": PUBLIC_DNS}]
    assert host.module("libvirt_network", dict(network, **bad["fix_module"]["args"]))["changed"]
    wait_dns_ready(lab, ask_from, network["ips"][0]["address"])


def dhcp_lease(lab: Lab, guest: str, timeout_tries=15):
    """Run busybox udhcpc once in ``guest``; return the lease as a dict (configures eth0)."""
    proc = lab.run(guest, ["busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", str(timeout_tries), "-T", "1",
                           "-s", str(UDHCPC_SCRIPT)], check=False, timeout=60)
    for line in proc.stdout.splitlines():
        if line.startswith("LEASE "):
            return dict(item.split("=", 1) for item in line.split()[1:])
    raise AssertionError("no DHCP lease in %s:\n%s\n%s" % (guest, proc.stdout, proc.stderr))


def ping(lab: Lab, ns: str, address: str):
    return lab.run(ns, ["busybox", "ping", "-c", "1", "-W", "2", address], check=False).returncode == 0  # no iputils here


@contextlib.contextmanager
def libvirt_host(lab: Lab, upstream_ttl: int = 0, **host_options):
    """libvirtd in ``lab``'s namespace "hv" with the upstream namespace (start_upstream, answers
    with ``upstream_ttl``) behind it: yields (host, upstream namespace) and stops the host
    afterwards, whatever happened."""
    hv_ns = lab.ns("hv")
    upstream = start_upstream(lab, hv_ns, ttl=upstream_ttl)
    host = LibvirtHost(lab, hv_ns, **host_options).start()
    try:
        yield host, upstream
    finally:
        host.stop()
