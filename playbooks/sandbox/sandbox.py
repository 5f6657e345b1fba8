#!/usr/bin/env python
"""The sandbox lab: network namespaces standing in for the internet, hypervisors and guests.

    sandbox.py up   --lab NAME [--kvm N] [--bridge M] [--qemu-guests K] [--guest-image DIR]
    sandbox.py down --lab NAME
    sandbox.py inventory --lab NAME      (what playbooks/inventory/sandbox/hosts.sh prints)

Topology (every address lives only inside namespaces this script creates):

    upstream   bridge br0: 198.51.100.1 (gateway), 198.51.100.53 (DNS that answers REFUSED for
               everything but corp.example), 203.0.113.53 (public DNS), 203.0.113.80 (HTTP that
               answers "client=<source address>")
    kvmI       eth0 198.51.100.(10+I)/24 to upstream; a private mount namespace (per-host copies
               bind-mounted over /etc/libvirt, /var/lib/libvirt, /var/log/libvirt,
               /var/cache/libvirt and /run) for virtlogd and libvirtd, which the kvm_host role
               starts (kvm_host_service_manager: none; or this script with --start-libvirtd); guest ports vg1 (for the NAT
               network "lab") and vg2 (for the routed network "routed", MAC 52:54:00:0b:00:0a)
               wait for the networks' bridges; the first K kvm hosts also get a QEMU guest "vm1"
    bridgeI    eth0 198.51.100.(100+I)/24; guest port vg1 for the role's bridge
    <hv>-g1    a namespace guest: eth0 (MAC 52:54:00:0a:00:0a) whose peer vg1 sits in the
               hypervisor, and an HTTP service on port 80 answering "guest=<name>"

The hypervisors' resolv.conf is /etc/netns/<ns>/resolv.conf (REFUSING DNS first), written before
libvirtd starts so that libvirt's dnsmasq reads it. Everything made is recorded in
build/sandbox/<lab>/state.json as it is made, so ``down`` removes it all even after a failed ``up``:
processes by PID (libvirtd first, then what it started, from the pid files of its private /run),
namespaces, and the /etc/netns directories.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import guest_image  # the sibling module (a script's own directory is first on sys.path)

REPO = Path(__file__).resolve().parents[2]
ROOT = REPO / "build" / "sandbox"
PYTHON = sys.executable

UPSTREAM_GW = "198.51.100.1"
PRIVATE_DNS, PUBLIC_DNS, HTTP_ADDR = "198.51.100.53", "203.0.113.53", "203.0.113.80"
PRIVATE_ZONE, PRIVATE_NAME, PRIVATE_ADDR = "corp.example", "db.corp.example", "10.1.2.3"
PUBLIC_NAME = "www.example.com"
GUEST_MAC = "52:54:00:0a:00:0a"
VM_MAC = "52:54:00:0a:00:14"
ROUTED_GUEST_MAC = "52:54:00:0b:00:0a"

QEMU_CONF_EXTRA = """
# hypervisor.network sandbox: no security driver or cgroups in a namespace
security_driver = "none"
user = "root"
group = "root"
cgroup_controllers = [ ]
"""

# A libvirtd of its own per hypervisor: per-host copies of these, bind-mounted in a private mount
# namespace (libvirtd's socket, pid files and state are global paths). The tests' libvirt hosts
# (tests/libvirt_lab.py) use the same tree.
LIBVIRT_MOUNTS = (("etc", "/etc/libvirt"), ("lib", "/var/lib/libvirt"), ("log", "/var/log/libvirt"),
                  ("cache", "/var/cache/libvirt"), ("run", "/run"))


def prepare_libvirt_tree(tree, subdirs=("lib", "log", "cache", "run")):
    """Fill ``tree`` for LIBVIRT_MOUNTS: a copy of /etc/libvirt without the packaged networks (the
    "default" network would start in every host) and with QEMU_CONF_EXTRA, and empty state dirs."""
    etc = tree / "etc"
    shutil.copytree("/etc/libvirt", etc, symlinks=True)
    shutil.rmtree(etc / "qemu" / "networks", ignore_errors=True)
    (etc / "qemu" / "networks" / "autostart").mkdir(parents=True)
    with open(etc / "qemu.conf", "a") as handle:
        handle.write(QEMU_CONF_EXTRA)
    for sub in subdirs:
        (tree / sub).mkdir(parents=True, exist_ok=True)


def libvirt_bind_mounts(tree):
    """The shell lines that put ``tree`` in place, run inside ``unshare -m --propagation private``."""
    return ["mount --bind %s %s" % (tree / sub, target) for sub, target in LIBVIRT_MOUNTS]


HTTP_SERVER = r"""
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (sys.argv[2] % {"client": self.client_address[0]} + "\n").encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer.allow_reuse_address = True
http.server.ThreadingHTTPServer((sys.argv[1], 80), H).serve_forever()
"""

# The QEMU guest's init (after guest_image.py's common start: busybox, virtio modules, lo and eth0
# up): read its parameters from the kernel command line (hn.*, set in the domain XML), run the
# checks from inside the guest, print them on the serial console as ``HNCHECK <name> PASS|FAIL
# <detail>`` lines (console_checks reads them) and then serve ``guest=<name>`` over HTTP on port 80
# for the inbound port-forward check, never powering off.
GUEST_CHECKS = r"""
arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^hn\.$1=//p"; }
NAME=$(arg name); PRIVATE=$(arg private); PUBLIC=$(arg public); HTTP=$(arg http)
hostname "$NAME"
say() { echo "HNCHECK $*"; }
LEASE=$(udhcpc -i eth0 -n -q -f -t 15 -T 2 -s /etc/udhcpc.sh 2>/dev/null | grep '^GUEST-LEASE ')
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


def sh(argv, check=True, timeout=60, **kw):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw, check=False)
    if check and proc.returncode != 0:
        raise SystemExit("sandbox: %s failed (rc=%s): %s%s"
                         % (" ".join(map(str, argv)), proc.returncode, proc.stdout, proc.stderr))
    return proc


class Sandbox:
    def __init__(self, lab):
        if not lab.isalnum() or len(lab) > 6:
            raise SystemExit("sandbox: lab name must be 1-6 letters or digits")
        self.lab = lab
        self.dir = ROOT / lab
        self.state_file = self.dir / "state.json"
        self.start_libvirtd = False
        self.state = {"lab": lab, "namespaces": [], "pids": [], "netns_etc": [], "libvirt_hosts": [],
                      "hosts": {}, "groups": {}}
        if self.state_file.exists():
            self.state = json.loads(self.state_file.read_text())

    # -- bookkeeping -------------------------------------------------------------------------
    def save(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1))
        os.replace(tmp, self.state_file)

    def nsname(self, short):
        return "hnsb%s-%s" % (self.lab, short)

    def ns(self, short):
        name = self.nsname(short)
        self.state["namespaces"].append(name)
        self.save()
        sh(["ip", "netns", "add", name])
        self.run(name, ["ip", "link", "set", "lo", "up"])
        return name

    def run(self, ns, argv, check=True, timeout=60):
        return sh(["ip", "netns", "exec", ns] + list(argv), check=check, timeout=timeout)

    def veth(self, ns_a, if_a, ns_b, if_b, mac_a=None):
        tmp_a, tmp_b = "hnsbtmpa%d" % os.getpid(), "hnsbtmpb%d" % os.getpid()
        sh(["ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b])
        sh(["ip", "link", "set", tmp_a, "netns", ns_a, "name", if_a])
        sh(["ip", "link", "set", tmp_b, "netns", ns_b, "name", if_b])
        if mac_a:
            self.run(ns_a, ["ip", "link", "set", if_a, "address", mac_a])
        self.run(ns_a, ["ip", "link", "set", if_a, "up"])
        self.run(ns_b, ["ip", "link", "set", if_b, "up"])

    def spawn(self, ns, argv, log_name):
        log = open(self.dir / log_name, "ab")
        proc = subprocess.Popen(["ip", "netns", "exec", ns] + list(argv), stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        self.state["pids"].append(proc.pid)
        self.save()
        return proc.pid

    def wait(self, what, predicate, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise SystemExit("sandbox: %s did not come up within %ss" % (what, timeout))

    def add_host(self, name, group, hostvars):
        self.state["hosts"][name] = hostvars
        self.state["groups"].setdefault(group, [])
        if name not in self.state["groups"][group]:
            self.state["groups"][group].append(name)
        self.save()

    # -- building ----------------------------------------------------------------------------
    def up(self, kvm, bridge, qemu_guests, image):
        if self.state_file.exists() and self.state["namespaces"]:
            raise SystemExit("sandbox: lab %r exists; run 'sandbox.py down --lab %s' first" % (self.lab, self.lab))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.save()
        started = time.monotonic()
        upstream = self.upstream()
        for index in range(1, kvm + 1):
            self.hypervisor("kvm%d" % index, "kvm_hosts", 10 + index, upstream, libvirt=True,
                            qemu=index <= qemu_guests, image=image)
        for index in range(1, bridge + 1):
            self.hypervisor("bridge%d" % index, "bridge_hosts", 100 + index, upstream, libvirt=False)
        self.state["built_seconds"] = round(time.monotonic() - started, 1)
        self.save()

    def upstream(self):
        up = self.ns("up")
        self.run(up, ["ip", "link", "add", "br0", "type", "bridge"])
        self.run(up, ["ip", "link", "set", "br0", "up"])
        for cidr in (UPSTREAM_GW + "/24", PRIVATE_DNS + "/24", PUBLIC_DNS + "/24", HTTP_ADDR + "/24"):
            self.run(up, ["ip", "addr", "add", cidr, "dev", "br0"])
        common = ["dnsmasq", "-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces",
                  "--pid-file=", "--user=root", "--port=53"]
        self.spawn(up, common + ["--listen-address=" + PRIVATE_DNS, "--local=/%s/" % PRIVATE_ZONE,
                                 "--address=/%s/%s" % (PRIVATE_NAME, PRIVATE_ADDR)], "dns-private.log")
        self.spawn(up, common + ["--listen-address=" + PUBLIC_DNS, "--address=/%s/%s" % (PUBLIC_NAME, HTTP_ADDR)],
                   "dns-public.log")
        self.spawn(up, [PYTHON, "-c", HTTP_SERVER, HTTP_ADDR, "client=%(client)s"], "http.log")
        self.wait("upstream DNS and HTTP", lambda: all(
            ":%s " % port in line for line, port in
            ((self.listening(up, PUBLIC_DNS, "u"), 53), (self.listening(up, PRIVATE_DNS, "u"), 53),
             (self.listening(up, HTTP_ADDR, "t"), 80))))
        self.add_host(up, "sandbox_upstream", {
            "ansible_connection": "hypervisor.network.netns", "ansible_netns_name": up,
            "sandbox_http": HTTP_ADDR})
        return up

    def listening(self, ns, address, proto):
        out = self.run(ns, ["ss", "-Hln" + proto], check=False).stdout
        return " ".join(line for line in out.split("\n") if address + ":" in line) + " "

    def hypervisor(self, name, group, octet, upstream, libvirt, qemu=False, image=None):
        hv = self.ns(name)
        self.veth(hv, "eth0", upstream, "u-" + name)
        self.run(upstream, ["ip", "link", "set", "u-" + name, "master", "br0"])
        address = "198.51.100.%d" % octet
        self.run(hv, ["ip", "addr", "add", address + "/24", "dev", "eth0"])
        self.run(hv, ["ip", "route", "add", "default", "via", UPSTREAM_GW])
        etc = Path("/etc/netns") / hv
        if not etc.parent.exists():
            self.state["created_etc_netns"] = True
        self.state["netns_etc"].append(str(etc))
        self.save()
        etc.mkdir(parents=True, exist_ok=True)
        # The first nameserver answers REFUSED for everything but corp.example.
        (etc / "resolv.conf").write_text("nameserver %s\nnameserver %s\n" % (PRIVATE_DNS, PUBLIC_DNS))
        hostdir = self.dir / name
        hostdir.mkdir(parents=True, exist_ok=True)
        hostvars = {"ansible_connection": "hypervisor.network.netns", "ansible_netns_name": hv,
                    "sandbox_uplink_address": address, "sandbox_dir": str(hostdir), "sandbox_guests": []}
        hostvars["sandbox_guests"].append(self.namespace_guest(hv, name, 1, GUEST_MAC, 8080))
        if libvirt:
            # g2 for the routed network (masqueraded by the role)
            hostvars["sandbox_guests"][0]["network"] = "lab"
            hostvars["sandbox_guests"].append(dict(self.namespace_guest(hv, name, 2, ROUTED_GUEST_MAC, 8082), network="routed"))
            holder = self.libvirtd(name, hv, hostdir)
            hostvars["ansible_netns_mount_namespace"] = "/proc/%d/ns/mnt" % holder
            if qemu:
                log = hostdir / "vm1-console.log"
                xml = guest_image.domain_xml(
                    "vm1", image[0], image[1], "lab", log, mac=VM_MAC, memory_mib=192,
                    cmdline="hn.name=vm1 hn.private=%s hn.public=%s hn.http=%s" % (PRIVATE_NAME, PUBLIC_NAME, HTTP_ADDR))
                (hostdir / "vm1.xml").write_text(xml)
                # defined and started by guests.yml, once the role has libvirtd running
                hostvars["sandbox_guests"].append({"name": "vm1", "kind": "qemu", "console": str(log),
                                                   "xml": str(hostdir / "vm1.xml"),
                                                   "mac": VM_MAC, "forward_port": 8081, "service": "guest=vm1",
                                                   "network": "lab"})
        self.add_host(hv, group, hostvars)

    def namespace_guest(self, hv, name, index, mac, forward_port):
        """Guest g<index> of hypervisor ``name``: a namespace on the hypervisor's port
        vg<index>, serving HTTP; returns its entry of the hypervisor's sandbox_guests."""
        port, service = "vg%d" % index, "guest=%s-g%d" % (name, index)
        guest = self.ns("%s-g%d" % (name, index))
        self.veth(guest, "eth0", hv, port, mac_a=mac)
        self.spawn(guest, [PYTHON, "-c", HTTP_SERVER, "0.0.0.0", service], "%s-g%d-http.log" % (name, index))
        self.add_host(guest, "sandbox_guests", {
            "ansible_connection": "hypervisor.network.netns", "ansible_netns_name": guest,
            "sandbox_hypervisor": hv, "sandbox_port": port, "sandbox_mac": mac})
        return {"name": guest, "kind": "namespace", "port": port, "forward_port": forward_port, "service": service}

    def libvirtd(self, name, hv, hostdir):
        tree = hostdir / "libvirt"
        prepare_libvirt_tree(tree)
        self.state["libvirt_hosts"].append(str(tree / "run"))
        self.save()
        script = "; ".join(["set -e"] + libvirt_bind_mounts(tree) + ["touch /run/.sandbox-ready", "exec sleep infinity"])
        # The holder keeps the private mount namespace alive; it is what Ansible enters.
        holder = self.spawn(hv, ["unshare", "-m", "--propagation", "private", "sh", "-c", script], name + "-holder.log")
        self.wait("mount namespace of " + name, (tree / "run" / ".sandbox-ready").exists)
        if self.start_libvirtd:
            enter = ["nsenter", "-t", str(holder), "-n", "-m"]
            sh(enter + ["virtlogd", "-d", "-p", "/run/virtlogd.pid"])
            sh(enter + ["libvirtd", "-d", "-p", "/run/libvirtd.pid"])
            self.wait("libvirtd of " + name, lambda: sh(enter + ["virsh", "-q", "-c", "qemu:///system", "version"],
                                                        check=False).returncode == 0, timeout=60)
        # Otherwise kvm_host starts virtlogd and libvirtd itself (kvm_host_service_manager: none),
        # with their pid files in this private /run, where teardown finds them.
        return holder

    # -- teardown ----------------------------------------------------------------------------
    def down(self):
        for run_dir in self.state.get("libvirt_hosts", []):
            run = Path(run_dir)
            pidfiles = sorted((p for p in run.rglob("*.pid") if p.name != "driver.pid"),
                              key=lambda p: (p.name != "libvirtd.pid", p.name == "virtlogd.pid"))
            for path in pidfiles:
                terminate(read_pid(path))
        # pid files written by the roles' own daemons (dnsmasq of bridge_host) under the host dirs
        for path in sorted(self.dir.glob("*/run/*.pid")):
            terminate(read_pid(path))
        for pid in reversed(self.state.get("pids", [])):
            terminate(pid, group=True)
        for name in reversed(self.state.get("namespaces", [])):
            sh(["ip", "netns", "del", name], check=False)
        for etc in self.state.get("netns_etc", []):
            if etc.startswith("/etc/netns/hnsb"):
                shutil.rmtree(etc, ignore_errors=True)
        if self.state.get("created_etc_netns"):
            try:
                os.rmdir("/etc/netns")  # made by this lab; removed only if nothing else is in it
            except OSError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def report(self, details=False):
        """Print the table of what each guest reached (results.json of verify.yml); 1 if any failed.

        With ``details``, what each check saw (lease, answers, the address upstream saw) follows.
        """
        try:
            results = json.loads((self.dir / "results.json").read_text())
        except (OSError, ValueError):
            print("no results: run playbooks/sandbox/verify.yml first")
            return 1
        rows, failed, notes, failures = [], 0, [], []
        hosts = self.state.get("hosts", {})
        for group in ("kvm_hosts", "bridge_hosts"):
            for hv in self.state.get("groups", {}).get(group, []):
                for guest in hosts[hv].get("sandbox_guests", []):
                    if guest["kind"] == "namespace":
                        checks = dict(results["checks"].get(guest["name"]) or {})
                    else:
                        checks = dict((results["vm_checks"].get(hv) or {}).get(guest["name"]) or {})
                    inbound = results["inbound"].get("%s/%s" % (hv, guest["name"]))
                    if inbound:
                        checks["dnat_in"] = inbound
                    cells = []
                    for check in CHECKS:
                        item = checks.get(check)
                        ok = bool(item) and str(item.get("ok")).lower() == "true"
                        failed += not ok
                        cells.append("pass" if ok else ("FAIL" if item else "n/a!"))
                        line = "%s %s: %s" % (guest["name"], check, (item or {}).get("detail", "not checked"))
                        notes.append(line)
                        if not ok:
                            failures.append(line)
                    where = guest.get("network") or ("bridge" if group == "bridge_hosts" else "")
                    kind = guest["kind"] + (", " + where if where else "")
                    rows.append([hv, "%s (%s)" % (guest["name"], kind)] + cells)
        header = ["hypervisor", "guest"] + CHECKS
        widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
        for row in [header, ["-" * w for w in widths]] + rows:
            print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
        print("%d guests, %d checks failed" % (len(rows), failed))
        if details:
            print("what the checks saw:")
            for line in notes:
                print("  " + " ".join(line.split()))
        elif failures:
            print("failures:")
            for line in failures:
                print("  " + " ".join(line.split()))
        return 1 if failed or not rows else 0

    def inventory(self):
        groups = {"_meta": {"hostvars": {}}}
        hv_python = {"ansible_python_interpreter": "{{ ansible_playbook_python }}"}
        for name, hostvars in self.state.get("hosts", {}).items():
            groups["_meta"]["hostvars"][name] = dict(hv_python, **hostvars)
        for group, hosts in self.state.get("groups", {}).items():
            groups[group] = {"hosts": list(hosts)}
        groups["sandbox"] = {"children": sorted(self.state.get("groups", {}))}
        forwards = []
        for hv, hostvars in self.state.get("hosts", {}).items():
            for guest in hostvars.get("sandbox_guests", []):
                if guest.get("forward_port"):
                    forwards.append({"hypervisor": hv, "guest": guest["name"], "expect": guest["service"],
                                     "url": "http://%s:%d/" % (hostvars["sandbox_uplink_address"], guest["forward_port"])})
        for name in self.state.get("groups", {}).get("sandbox_upstream", []):
            groups["_meta"]["hostvars"][name]["sandbox_forwards"] = forwards
        return groups


CHECKS = ["dhcp", "ping_gateway", "dns_private", "dns_public", "nat_out", "dnat_in"]


def console_checks(path, uplink):
    """The HNCHECK lines a QEMU guest printed on its serial console, as {check: {ok, detail}}."""
    try:
        text = Path(path).read_text(errors="replace").replace("\r", "")
    except OSError:
        text = ""
    checks = {}
    for line in text.splitlines():
        parts = line.strip().split(" ", 3)
        if len(parts) >= 3 and parts[0] == "HNCHECK" and parts[2] in ("PASS", "FAIL"):
            detail = parts[3] if len(parts) > 3 else ""
            ok = parts[2] == "PASS"
            if parts[1] == "nat_out":
                ok = ok and detail.strip() == "client=%s" % uplink
            checks[parts[1]] = {"ok": ok, "detail": detail}
    return checks


def read_pid(path):
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def alive(pid):
    """True while ``pid`` runs (a zombie nobody reaps counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def terminate(pid, group=False, grace=5.0):
    if not pid:
        return
    try:
        if group:
            try:
                os.killpg(pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        else:
            os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            done = os.waitpid(pid, os.WNOHANG)[0]
            if done == pid:
                return
        except ChildProcessError:
            pass
        if not alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("action", choices=["up", "down", "inventory", "console", "report"])
    parser.add_argument("path", nargs="?", help="console: the guest's serial log")
    parser.add_argument("--uplink", help="console: the hypervisor's uplink address (expected by nat_out)")
    parser.add_argument("--lab", default=os.environ.get("HN_SANDBOX_LAB", "demo"))
    parser.add_argument("--kvm", type=int, default=1)
    parser.add_argument("--bridge", type=int, default=1)
    parser.add_argument("--qemu-guests", type=int, default=1)
    parser.add_argument("--details", action="store_true", help="report: what each check saw")
    parser.add_argument("--start-libvirtd", action="store_true",
                        help="start virtlogd and libvirtd in the KVM hosts (by default kvm_host does)")
    parser.add_argument("--guest-image", default=str(guest_image.DEFAULT_CACHE),
                        help="up: the QEMU guest image cache (kernel and initrds, shared with the tests)")
    args = parser.parse_args(argv)
    box = Sandbox(args.lab)
    box.start_libvirtd = args.start_libvirtd
    if args.action == "up":
        image = None
        if args.qemu_guests and args.kvm:
            image = guest_image.build_guest_image(os.path.abspath(args.guest_image), init_snippet=GUEST_CHECKS)
        box.up(args.kvm, args.bridge, args.qemu_guests, image)
        print(json.dumps({"lab": args.lab, "built_seconds": box.state["built_seconds"],
                          "hosts": sorted(box.state["hosts"])}))
    elif args.action == "down":
        box.down()
    elif args.action == "console":
        print(json.dumps(console_checks(args.path, args.uplink)))
    elif args.action == "report":
        sys.exit(box.report(details=args.details))
    else:
        print(json.dumps(box.inventory(), indent=1))


if __name__ == "__main__":
    main()
