#!/usr/bin/env python
"""make demo: build the sandbox lab, run playbooks/site.yml against it, print what each guest reaches.

    scripts/demo.py [--hosts N] [--qemu-guests K] [--keep | --no-keep]
    scripts/demo.py --destroy

The lab (playbooks/sandbox) is a set of network namespaces on this machine: "upstream" stands in
for the internet (a DNS server answering REFUSED for all but its own zone, listed first in the
hypervisors' resolv.conf; a public DNS server; an HTTP service), N KVM hypervisors (libvirtd in a
private mount namespace each) and one plain bridge host, with guests on their networks: namespaces,
and a real QEMU guest (TCG) on the first KVM host. site.yml is run as a user runs it against a
fleet: one inventory (playbooks/inventory/sandbox), roles by group, all hosts in parallel (forks).

The lab stays up after a successful run so it can be explored; the last lines say how to tear it
down. A failed build or converge tears it down at once.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LAB = os.environ.get("HN_SANDBOX_LAB", "demo")
INVENTORY = REPO / "playbooks" / "inventory" / "sandbox"
SANDBOX = REPO / "playbooks" / "sandbox"
LOGS = REPO / "build" / "demo-logs"


def env(**extra):
    values = dict(os.environ)
    values.update(
        HN_SANDBOX_LAB=LAB,
        PATH="%s:%s" % (BIN, os.environ.get("PATH", "")),
        ANSIBLE_COLLECTIONS_PATH=str(REPO / "build" / "collections"),
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_PIPELINING="1",
        ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED="1",
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
    )
    values.update(extra)
    return values


def playbook(name, log, *args, **extra_env):
    """Run a playbook with the sandbox inventory; output goes to ``log``. Returns (rc, seconds)."""
    LOGS.mkdir(parents=True, exist_ok=True)
    path = LOGS / log
    started = time.monotonic()
    with open(path, "w") as handle:
        rc = subprocess.call([str(BIN / "ansible-playbook"), "-i", str(INVENTORY), str(name)] + list(args),
                             stdout=handle, stderr=subprocess.STDOUT, env=env(**extra_env), cwd=str(REPO))
    return rc, time.monotonic() - started


def recap(log):
    lines = (LOGS / log).read_text().splitlines()
    try:
        start = max(i for i, line in enumerate(lines) if line.startswith("PLAY RECAP"))
    except ValueError:
        return []
    return [line for line in lines[start + 1:] if line.strip()]


def tail(log, count=40):
    return "\n".join((LOGS / log).read_text().splitlines()[-count:])


def destroy():
    rc, seconds = playbook(SANDBOX / "destroy.yml", "destroy.log")
    print("sandbox lab %r torn down in %.0f s (rc=%d)" % (LAB, seconds, rc))
    return rc


def step(text):
    print("==> %s" % text, flush=True)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--hosts", type=int, default=int(os.environ.get("HOSTS") or 1),
                        help="number of KVM hypervisors (default 1, or $HOSTS); one bridge host is added")
    parser.add_argument("--qemu-guests", type=int, default=int(os.environ.get("QEMU_GUESTS") or 1),
                        help="how many KVM hosts also get a QEMU guest (default 1)")
    parser.add_argument("--keep", dest="keep", action="store_true", default=os.environ.get("KEEP", "1") != "0",
                        help="leave the lab up after a successful run (default; KEEP=0 tears it down)")
    parser.add_argument("--no-keep", dest="keep", action="store_false")
    parser.add_argument("--destroy", action="store_true", help="tear the lab down and exit")
    parser.add_argument("--no-idempotence", dest="idempotence", action="store_false",
                        default=os.environ.get("IDEMPOTENCE", "1") != "0",
                        help="skip the second converge that shows nothing changes (IDEMPOTENCE=0)")
    return parser.parse_args(argv)


def build(args):
    """Create the sandbox and show it; returns the first hypervisor, or None when creation failed."""
    step("building the sandbox: upstream, %d KVM host(s), 1 bridge host, guests (QEMU guest on %d)"
         % (args.hosts, min(args.qemu_guests, args.hosts)))
    rc, seconds = playbook(SANDBOX / "create.yml", "create.log", HN_SANDBOX_KVM_HOSTS=str(args.hosts),
                           HN_SANDBOX_BRIDGE_HOSTS="1", HN_SANDBOX_QEMU_GUESTS=str(args.qemu_guests))
    if rc != 0:
        print(tail("create.log"))
        return None
    print("    built in %.0f s" % seconds)
    inventory = json.loads(subprocess.check_output([sys.executable, str(SANDBOX / "sandbox.py"), "inventory"], env=env()))
    for group in ("kvm_hosts", "bridge_hosts"):
        for host in inventory.get(group, {}).get("hosts", []):
            hostvars = inventory["_meta"]["hostvars"][host]
            guests = ", ".join(g["name"] for g in hostvars["sandbox_guests"])
            print("    %-12s %-20s uplink %s, guests: %s" % (group, host, hostvars["sandbox_uplink_address"], guests))
    first_hv = (inventory.get("kvm_hosts", {}).get("hosts") or inventory.get("bridge_hosts", {}).get("hosts"))[0]
    baseline = subprocess.run(["ip", "netns", "exec", first_hv, "dig", "www.example.com", "+time=2", "+tries=1"],
                              capture_output=True, text=True, check=False).stdout
    status = next((line.split("status:")[1].split(",")[0].strip() for line in baseline.splitlines()
                   if "status:" in line), "no answer")
    print("    the hypervisors' first nameserver answers www.example.com with: %s" % status)
    return first_hv


def converge(hypervisors, forks):
    """The first converge; True when it succeeded."""
    step("converging: ansible-playbook -i playbooks/inventory/sandbox playbooks/site.yml --forks %d" % forks)
    rc, seconds = playbook(REPO / "playbooks" / "site.yml", "converge.log", "--forks", str(forks))
    for line in recap("converge.log"):
        print("    " + line)
    print("    converge time: %.1f s for %d hypervisor(s) (forks %d)" % (seconds, hypervisors, forks))
    if rc != 0:
        print(tail("converge.log"))
    return rc == 0


def converge_again(forks):
    """The second converge; True when it changed nothing."""
    step("converging again: a second run changes nothing")
    rc, seconds = playbook(REPO / "playbooks" / "site.yml", "converge2.log", "--forks", str(forks))
    changed = [line for line in recap("converge2.log") if "changed=0" not in line]
    for line in recap("converge2.log"):
        print("    " + line)
    idempotent = rc == 0 and not changed
    print("    %s in %.1f s" % ("idempotent: changed=0 on every host" if idempotent else "NOT idempotent", seconds))
    return idempotent


def verify():
    """verify.yml from inside each guest and the sandbox's report; True when every check passed."""
    step("checking from inside each guest: playbooks/sandbox/verify.yml")
    rc, seconds = playbook(SANDBOX / "verify.yml", "verify.log")
    report = subprocess.run([sys.executable, str(SANDBOX / "sandbox.py"), "report", "--details", "--lab", LAB],
                            capture_output=True, text=True, check=False)
    print()
    print(report.stdout.rstrip())
    print()
    print("dhcp: lease from the host's dnsmasq; ping_gateway: the lease's router; dns_private: db.corp.example "
          "(forwarded per domain); dns_public: www.example.com (through the host, whose first nameserver "
          "says REFUSED); nat_out: upstream HTTP sees the hypervisor's address; dnat_in: upstream reaches "
          "the guest's service through the host's port forward")
    print("verify took %.0f s; logs in %s" % (seconds, LOGS))
    return rc == 0 and report.returncode == 0


def show_kept_lab(first_hv):
    print()
    print("The lab is still up. Look around, e.g.:")
    print("  ip netns list | grep hnsb%s" % LAB)
    print("  ip netns exec %s nft list ruleset" % first_hv)
    print("  HN_SANDBOX_LAB=%s .venv/bin/ansible-playbook -i playbooks/inventory/sandbox playbooks/site.yml --check --diff"
          % LAB)
    print("Tear it down with:")
    print("  .venv/bin/python scripts/demo.py --destroy")
    print("  (or: HN_SANDBOX_LAB=%s .venv/bin/ansible-playbook -i playbooks/inventory/sandbox "
          "playbooks/sandbox/destroy.yml)" % LAB)


def main(argv=None):
    args = parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("the sandbox lab needs root (network namespaces)")
    if args.destroy:
        return destroy()
    hypervisors = args.hosts + 1
    forks = max(5, hypervisors + 1)
    step("tearing down any earlier %r lab" % LAB)
    destroy()
    first_hv = build(args)
    if first_hv is None or not converge(hypervisors, forks):
        destroy()
        return 1
    idempotent = converge_again(forks) if args.idempotence else True
    ok = verify() and idempotent
    if args.keep:
        show_kept_lab(first_hv)
    else:
        destroy()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
