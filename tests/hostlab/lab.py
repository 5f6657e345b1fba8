# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The VM lab: Debian hosts under QEMU (TCG) on bridges inside a namespace of ours, over SSH.

Layout, all inside one network namespace the lab creates (nothing reaches the machine's own
network):

    lab namespace
      hlup   bridge 198.51.100.1/24, "upstream": every VM's eth0 (management, SSH, default route)
      hltrk  bridge without address: every VM's eth1, a trunk that carries tagged frames between VMs

Each VM boots the image's kernel and initramfs directly from a copy-on-write overlay of the
image, so VMs never share a writable disk. QEMU runs with ``-no-reboot``: a guest that reboots
makes QEMU exit and the lab starts it again (an in-place reset under TCG is two to three times
slower). Every QEMU is tracked by PID and stopped at teardown, also when a test fails; deleting
the namespace removes the taps and bridges.

Packages: ``serve_packages()`` serves the local package repository of the image's suite (see
image.build_repo) over HTTP from the lab namespace at 198.51.100.1 and points every VM's apt at
it and nothing else, so ``apt-get install`` (and the roles' package tasks) really install. The
repository is a local test repository without a signature: the VMs' sources mark it
``[trusted=yes]``, acceptable only because it is made here from packages apt verified against
Debian's keyring when it downloaded them.

Ansible runs as users run it: ``ansible-playbook`` over SSH (pipelining on, a control socket
folder of our own), from inside the lab namespace, where the VMs' addresses live.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# The upstream services of serve_upstream() are the sandbox lab's, from its script (the shipped
# place; also on the path outside pytest, for labctl.py): a DNS server that answers REFUSED for
# everything but its private zone (what a host's first nameserver often does, and why libvirt
# networks need per-domain forwarders), a public DNS server, and an HTTP service that answers
# "client=<source address>" (shows the NAT).
if str(REPO / "playbooks" / "sandbox") not in sys.path:
    sys.path.insert(0, str(REPO / "playbooks" / "sandbox"))
from sandbox import (  # noqa: E402  # pylint: disable=wrong-import-position
    HTTP_ADDR,
    HTTP_SERVER,
    PRIVATE_ADDR,
    PRIVATE_DNS,
    PRIVATE_NAME,
    PRIVATE_ZONE,
    PUBLIC_DNS,
    PUBLIC_NAME,
    UPSTREAM_GW,
)

UPLINK_NET = UPSTREAM_GW.rsplit(".", 1)[0]  # the upstream bridge's /24, the sandbox's too
PACKAGE_PORT = 8080  # the package repository's HTTP port on the upstream address
SSH_WAIT = 300  # TCG on a shared 2-core machine: boots take 40 s alone, much longer under load


def _die_with_parent():
    """QEMU gets SIGKILL if the test process dies without its teardown (killed, not failed): the
    death signal survives ``ip netns exec``'s exec into QEMU."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _sh(argv, check=True, timeout=120, input=None):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, input=input)
    if check and proc.returncode != 0:
        raise AssertionError("%s failed rc=%s\nstdout: %s\nstderr: %s" % (argv, proc.returncode, proc.stdout, proc.stderr))
    return proc


class VM:
    def __init__(self, lab, index, name):
        self.lab = lab
        self.index = index
        self.name = name
        self.address = "%s.%d" % (UPLINK_NET, 10 + index)
        self.disk = lab.tmp / ("%s.qcow2" % name)
        self.console = lab.tmp / ("%s-console.log" % name)
        self.proc = None
        self.pid = None  # QEMU's, also for a lab attached from a state file (proc is None there)
        self.boots = 0
        self.apt_configured = False

    @property
    def taps(self):
        return ("hl%du" % self.index, "hl%dt" % self.index)

    def mac(self, nic):
        return "52:54:00:4c:%02x:%02x" % (self.index, nic)


class HostLab:
    """N Debian VMs; ``close()`` (or the fixture) removes every trace."""

    def __init__(self, image, tmp_root=None, detached=False):
        """``detached=True`` lets the QEMUs outlive this process (a CLI such as labctl.py boots
        them and exits; ``save``/``attach``/``close`` then work from the state file, by PID)."""
        self.image = image
        self.detached = detached
        self.ns = "hl%s" % uuid.uuid4().hex[:8]
        self.tmp = Path(tempfile.mkdtemp(prefix=self.ns + "-", dir=tmp_root))
        self.vms = []
        self.pids = []
        self.services = []
        self.package_url = None
        _sh(["ip", "netns", "add", self.ns])
        self.run(["ip", "link", "set", "lo", "up"])
        for bridge, cidr in (("hlup", UPLINK_NET + ".1/24"), ("hltrk", None)):
            self.run(["ip", "link", "add", bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0"])
            if cidr:
                self.run(["ip", "addr", "add", cidr, "dev", bridge])
            self.run(["ip", "link", "set", bridge, "up"])
        (self.tmp / "cp").mkdir()

    # -- the namespace -------------------------------------------------------------------------
    def run(self, argv, check=True, timeout=120, input=None):
        """A command inside the lab namespace (the controller's side of every VM)."""
        return _sh(["ip", "netns", "exec", self.ns] + list(argv), check=check, timeout=timeout, input=input)

    # -- VMs -----------------------------------------------------------------------------------
    def add_vm(self, name=None):
        vm = VM(self, len(self.vms), name or "vm%d" % len(self.vms))
        _sh(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(self.image.disk), str(vm.disk)])
        for tap, bridge in zip(vm.taps, ("hlup", "hltrk")):
            self.run(["ip", "tuntap", "add", "dev", tap, "mode", "tap"])
            self.run(["ip", "link", "set", tap, "master", bridge, "up"])
        self.vms.append(vm)
        return vm

    def _qemu_argv(self, vm):
        append = "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet hostlab.addr=%s/24 hostlab.gw=%s.1" % (vm.address, UPLINK_NET)
        argv = ["qemu-system-x86_64", "-accel", "tcg", "-m", "1024", "-smp", "2", "-nodefaults", "-cpu", "max",
                "-no-reboot", "-display", "none", "-serial", "file:%s" % vm.console,
                "-kernel", str(self.image.kernel), "-initrd", str(self.image.initrd), "-append", append,
                "-drive", "file=%s,if=virtio,format=qcow2" % vm.disk, "-device", "virtio-rng-pci"]
        for nic, tap in enumerate(vm.taps):
            argv += ["-netdev", "tap,id=n%d,ifname=%s,script=no,downscript=no" % (nic, tap),
                     "-device", "virtio-net-pci,netdev=n%d,mac=%s" % (nic, vm.mac(nic))]
        return argv

    def start(self, vm, wait=True):
        # QEMU opens its taps by name, so it runs in the namespace that holds them.
        log = open(self.tmp / ("%s-qemu.log" % vm.name), "a")
        vm.proc = subprocess.Popen(["ip", "netns", "exec", self.ns] + self._qemu_argv(vm), stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=None if self.detached else _die_with_parent)
        log.close()
        self.pids.append(vm.proc.pid)
        vm.pid = vm.proc.pid
        vm.boots += 1
        if wait:
            self.ready(vm)
        return vm

    def boot(self, *vms):
        """Start several VMs at once and wait until each is up: their boots overlap, which under
        TCG on this machine's 2 cores costs less than booting them one after the other."""
        for vm in vms:
            self.start(vm, wait=False)
        for vm in vms:
            self.ready(vm)
        return vms

    def ready(self, vm):
        """Wait for SSH (and systemd done booting), then point apt at the lab's packages if they
        are served and this VM does not use them yet."""
        self.wait_ssh(vm)
        if self.package_url and not vm.apt_configured:
            self.use_packages(vm)

    def ssh_argv(self, vm, command=None):
        argv = ["ssh", "-i", str(self.image.key), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "root@%s" % vm.address]
        return argv + ([command] if command else [])

    def ssh(self, vm, command, check=True, timeout=120):
        """Run a shell command on the VM; CompletedProcess."""
        return self.run(self.ssh_argv(vm, command), check=check, timeout=timeout)

    def wait_ssh(self, vm, timeout=SSH_WAIT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if vm.proc.poll() is not None:
                raise AssertionError("QEMU for %s exited rc=%s while booting; console:\n%s" % (vm.name, vm.proc.returncode, self.console_tail(vm)))
            if self.ssh(vm, "systemctl is-system-running --wait >/dev/null 2>&1; true", check=False, timeout=150).returncode == 0:
                return
            time.sleep(3)
        raise AssertionError("%s: no SSH after %s s; console:\n%s" % (vm.name, timeout, self.console_tail(vm)))

    def console_tail(self, vm, lines=40):
        try:
            return "\n".join(vm.console.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no console log)"

    def reboot(self, *vms, timeout=SSH_WAIT):
        """A real reboot of each VM given, at the same time: the guest shuts down (units stop,
        files sync), QEMU exits because of -no-reboot, and the same disk boots again."""
        for vm in vms:
            self.ssh(vm, "systemctl reboot", check=False, timeout=30)
        for vm in vms:
            try:
                vm.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                raise AssertionError("%s did not shut down in %s s; console:\n%s" % (vm.name, timeout, self.console_tail(vm)))
        self.boot(*vms)

    # -- Ansible over SSH ----------------------------------------------------------------------
    def inventory(self):
        hosts = {}
        for vm in self.vms:
            hosts[vm.name] = {
                "ansible_host": vm.address, "ansible_user": "root", "ansible_connection": "ssh",
                "ansible_ssh_private_key_file": str(self.image.key), "ansible_ssh_pipelining": True,
                "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
                "ansible_python_interpreter": "/usr/bin/python3",
            }
        path = self.tmp / "inventory.json"
        path.write_text(json.dumps({"all": {"hosts": hosts}}))
        return path

    def playbook(self, text, *args, check=True, timeout=1200):
        """Run ``ansible-playbook`` against the VMs; returns (CompletedProcess, per-host recap)."""
        play = self.tmp / ("play-%s.yml" % uuid.uuid4().hex[:6])
        play.write_text(text)
        env = dict(os.environ, PATH="%s:%s" % (BIN, os.environ["PATH"]),
                   ANSIBLE_COLLECTIONS_PATH=str(REPO / "build" / "collections"), ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
                   ANSIBLE_NOCOLOR="1", ANSIBLE_HOST_KEY_CHECKING="0", ANSIBLE_PIPELINING="1",
                   ANSIBLE_SSH_CONTROL_PATH_DIR=str(self.tmp / "cp"), ANSIBLE_RETRY_FILES_ENABLED="0",
                   ANSIBLE_LOCAL_TEMP=str(self.tmp / "ansible-local"))
        argv = ["ip", "netns", "exec", self.ns, str(BIN / "ansible-playbook"), "-i", str(self.inventory()), str(play)] + list(args)
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, check=False, cwd=str(REPO))
        if check and proc.returncode != 0:
            raise AssertionError("ansible-playbook failed rc=%s\n%s\n%s" % (proc.returncode, proc.stdout[-12000:], proc.stderr[-4000:]))
        return proc, recap(proc.stdout)

    # -- services on the upstream side ----------------------------------------------------------
    def serve_tcp(self, port, address=UPLINK_NET + ".1"):
        """A TCP service in the lab namespace (the VMs' upstream) answering with the peer's address."""
        from hostlab.remote import SERVE
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns, sys.executable, "-c", SERVE, address, str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.services.append(proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if ":%d " % port in self.run(["ss", "-Htln"]).stdout:
                return proc
            time.sleep(0.1)
        raise AssertionError("service on %s:%s did not start" % (address, port))

    def _spawn(self, argv, log_name):
        log = open(self.tmp / log_name, "a")
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns] + list(argv), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.services.append(proc)
        return proc

    def _wait_listening(self, proc, address, port, proto, log_name, timeout=30):
        deadline = time.monotonic() + timeout
        while "%s:%d " % (address, port) not in self.run(["ss", "-Hln" + proto]).stdout:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("nothing listens on %s:%s/%s:\n%s" % (address, port, proto, (self.tmp / log_name).read_text()))
            time.sleep(0.1)

    def serve_upstream(self):
        """The sandbox's upstream on the VMs' uplink bridge: PRIVATE_DNS (answers PRIVATE_NAME,
        REFUSED for anything else), PUBLIC_DNS (answers PUBLIC_NAME with HTTP_ADDR) and the HTTP
        service on HTTP_ADDR:80 that answers ``client=<source address>``. The VMs reach them
        through their default route (198.51.100.1, this namespace)."""
        for address in (PRIVATE_DNS, PUBLIC_DNS, HTTP_ADDR):
            self.run(["ip", "addr", "add", address + "/32", "dev", "hlup"])
        common = ["dnsmasq", "-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces",
                  "--pid-file=", "--user=root", "--port=53"]
        waits = [(self._spawn(common + ["--listen-address=" + PRIVATE_DNS, "--local=/%s/" % PRIVATE_ZONE,
                                        "--address=/%s/%s" % (PRIVATE_NAME, PRIVATE_ADDR)], "dns-private.log"),
                  PRIVATE_DNS, 53, "u", "dns-private.log"),
                 (self._spawn(common + ["--listen-address=" + PUBLIC_DNS, "--address=/%s/%s" % (PUBLIC_NAME, HTTP_ADDR)],
                              "dns-public.log"), PUBLIC_DNS, 53, "u", "dns-public.log"),
                 (self._spawn([sys.executable, "-c", HTTP_SERVER, HTTP_ADDR, "client=%(client)s"], "http.log"), HTTP_ADDR, 80, "t", "http.log")]
        for wait in waits:
            self._wait_listening(*wait)

    def serve_packages(self, port=PACKAGE_PORT):
        """Serve the local package repository of the image's suite (built or found in the cache
        by image.build_repo) over HTTP at 198.51.100.1:``port`` in the lab namespace, and point
        the apt of every booted VM, and of every VM booted later, at it alone (``apt-get update``
        done), so a test or a role can ``apt-get install`` any of image.repo_packages() and their
        dependencies. Returns the repository's URL."""
        from hostlab.image import build_repo
        repo = build_repo(self.image.suite)
        address = UPLINK_NET + ".1"
        proc = self._spawn([sys.executable, "-m", "http.server", "--bind", address, "--directory", str(repo.dir), str(port)],
                           "packages-http.log")
        self._wait_listening(proc, address, port, "t", "packages-http.log")
        self.package_url = "http://%s:%d/" % (address, port)
        for vm in self.vms:
            if vm.proc is not None and vm.proc.poll() is None:
                self.use_packages(vm)
        return self.package_url

    def use_packages(self, vm, recommends=False):
        """Point ``vm``'s apt at the lab's package repository only (after serve_packages), and
        read its index. The settings are on the VM's disk: they survive reboots.

        ``recommends=False`` (the default) writes ``APT::Install-Recommends "false"`` as minimal
        server installs often do: the kvm_host role's packages are 87 on a fresh Debian 12 VM
        without Recommends and 373 with them (desktop and GPU libraries), which under TCG is
        the difference between minutes and most of an hour. The repository holds the
        Recommends too, so a test may ask for them. dpkg runs with ``force-unsafe-io`` (no fsync
        per file, which under TCG is much of the unpacking time; a test VM's disk is thrown away)."""
        assert self.package_url, "serve_packages() first"
        self.ssh(vm, "rm -f /etc/apt/sources.list.d/* && "
                     "echo 'deb [trusted=yes] %s ./' > /etc/apt/sources.list && "
                     "echo force-unsafe-io > /etc/dpkg/dpkg.cfg.d/90hostlab-unsafe-io && "
                     "echo 'APT::Install-Recommends \"%s\";' > /etc/apt/apt.conf.d/90hostlab-recommends && "
                     "apt-get -q -o Acquire::Retries=3 update" % (self.package_url, "true" if recommends else "false"), timeout=300)
        vm.apt_configured = True

    def connect(self, host, port, timeout=5.0):
        """Connect from the upstream side; what the service said, or None."""
        from hostlab.remote import CONNECT
        proc = self.run([sys.executable, "-c", CONNECT, host, str(port), str(timeout)], check=False, timeout=timeout + 10)
        return proc.stdout.strip() if proc.returncode == 0 else None

    # -- state of a detached lab -----------------------------------------------------------------
    def save(self, path):
        """Write what ``attach`` and ``close`` need (namespace, folder, PIDs) to ``path``."""
        state = {"ns": self.ns, "tmp": str(self.tmp), "image": str(self.image.dir), "package_url": self.package_url,
                 "services": [proc.pid for proc in self.services],
                 "vms": [{"name": vm.name, "index": vm.index, "pid": vm.pid, "disk": str(vm.disk)} for vm in self.vms]}
        Path(path).write_text(json.dumps(state, indent=1) + "\n")

    @classmethod
    def attach(cls, path):
        """The lab a state file of ``save`` describes, to reach its VMs (ssh, playbook, connect)
        or ``close`` it; its processes are known by PID only."""
        from hostlab.image import Image
        state = json.loads(Path(path).read_text())
        lab = cls.__new__(cls)
        lab.image = Image(state["image"])
        lab.detached = True
        lab.ns = state["ns"]
        lab.tmp = Path(state["tmp"])
        lab.services = []
        lab.service_pids = list(state["services"])
        lab.package_url = state["package_url"]
        lab.vms = []
        for item in state["vms"]:
            vm = VM(lab, item["index"], item["name"])
            vm.pid = item["pid"]
            vm.apt_configured = bool(lab.package_url)
            lab.vms.append(vm)
        lab.pids = [vm.pid for vm in lab.vms if vm.pid]
        return lab

    def _kill_pid(self, pid):
        """SIGTERM, then SIGKILL after 10 s, the process group of ``pid`` if that process still
        runs in this lab's namespace (a PID may have been reused since the state was saved)."""
        try:
            if os.stat("/proc/%d/ns/net" % pid).st_ino != os.stat("/run/netns/%s" % self.ns).st_ino:
                return
        except OSError:
            return
        for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                if not Path("/proc/%d" % pid).exists():
                    return
                time.sleep(0.2)

    def kill(self, vm):
        """Stop ``vm``'s QEMU at once (no shutdown: a pulled plug), by PID; ``start`` boots the
        same disk again."""
        if vm.pid:
            self._kill_pid(vm.pid)
        if vm.proc is not None:
            vm.proc.wait(timeout=30)

    # -- teardown ------------------------------------------------------------------------------
    def close(self):
        for pid in getattr(self, "service_pids", ()):
            self._kill_pid(pid)
        for vm in self.vms:
            if vm.proc is None and vm.pid:
                self._kill_pid(vm.pid)
        for proc in self.services:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
        for vm in self.vms:
            if vm.proc is not None and vm.proc.poll() is None:
                try:
                    os.killpg(vm.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for vm in self.vms:
            if vm.proc is None:
                continue
            try:
                vm.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(vm.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                vm.proc.wait(timeout=10)
        # what else still runs in the namespace: SSH control masters (ControlPersist) and their
        # ProxyCommands, started by ansible-playbook inside it or through it
        for pid in _sh(["ip", "netns", "pids", self.ns], check=False).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        _sh(["ip", "netns", "del", self.ns], check=False)
        subprocess.run(["rm", "-rf", str(self.tmp)], check=False)


def recap(output):
    """{host: {ok, changed, failed, ...}} from the PLAY RECAP lines."""
    hosts = {}
    in_recap = False
    for line in output.splitlines():
        if line.startswith("PLAY RECAP"):
            in_recap = True
            continue
        if in_recap and ":" in line and "=" in line:
            host, rest = line.split(":", 1)
            hosts[host.strip()] = dict((k, int(v)) for k, v in (item.split("=") for item in rest.split()))
    return hosts
