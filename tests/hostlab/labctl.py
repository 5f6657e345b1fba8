#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host lab that outlives the command that made it: what the Molecule scenario on VMs drives.

    labctl.py create    --state-dir DIR [--suite bookworm]   boot one VM ("kvm1"), serve the upstream
                                                              and the package repository; state in DIR
    labctl.py inventory [--state-dir DIR]                     Ansible's JSON inventory of the lab
    labctl.py verify    --state-dir DIR                       the kvm_host guest checks (kvmhost.py)
    labctl.py destroy   --state-dir DIR                       stop every process by PID, delete the
                                                              namespace and the lab's folder
    labctl.py proxy     NS HOST PORT                          (SSH's ProxyCommand into the namespace)

DIR defaults to $MOLECULE_EPHEMERAL_DIRECTORY. The state file (DIR/hostlab.json) is written as
soon as the namespace exists and after every step, so ``destroy`` cleans up after a failed
``create`` too; ``destroy`` without a state file does nothing.

The VMs' addresses exist only inside the lab's namespace; Ansible, running outside it, reaches
them through ``ProxyCommand`` (``ip netns exec NS labctl.py proxy``), which the inventory sets.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for "hostlab.*"

from hostlab import kvmhost  # noqa: E402  # pylint: disable=wrong-import-position
from hostlab.lab import HostLab  # noqa: E402  # pylint: disable=wrong-import-position

STATE = "hostlab.json"


def _state_dir(args):
    folder = args.state_dir or os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY")
    if not folder:
        raise SystemExit("--state-dir or MOLECULE_EPHEMERAL_DIRECTORY is needed")
    return Path(folder)


def create(args):
    from hostlab.image import build
    folder = _state_dir(args)
    folder.mkdir(parents=True, exist_ok=True)
    state = folder / STATE
    if state.exists():
        raise SystemExit("%s exists: destroy the lab first" % state)
    started = time.monotonic()
    lab = HostLab(build(args.suite), tmp_root=str(folder), detached=True)
    try:
        vm = lab.add_vm("kvm1")
        lab.save(state)
        for attempt in (1, 2):
            lab.start(vm, wait=False)
            lab.save(state)
            try:
                lab.wait_ssh(vm)
                break
            except AssertionError as error:
                # a machine loaded by other VMs can make systemd give up waiting for eth0 (90 s):
                # one fresh boot on the same disk
                if attempt == 2:
                    raise
                sys.stderr.write("%s\nbooting again\n" % error)
                lab.kill(vm)
        lab.serve_upstream()
        lab.save(state)
        lab.serve_packages()
        lab.save(state)
        kvmhost.install_tools(lab, vm)
    except BaseException:
        lab.close()
        state.unlink()
        raise
    print(json.dumps({"ns": lab.ns, "vms": {vm.name: vm.address}, "pids": lab.pids, "seconds": round(time.monotonic() - started)}))


def inventory(args):
    folder = args.state_dir or os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY")
    state = Path(folder) / STATE if folder else None
    if not state or not state.exists():
        print(json.dumps({"_meta": {"hostvars": {}}, "all": {"hosts": []}}))
        return
    lab = HostLab.attach(state)
    proxy = "ip netns exec %s %s %s proxy %s %%h %%p" % (lab.ns, sys.executable, Path(__file__).resolve(), lab.ns)
    hostvars = {}
    for vm in lab.vms:
        hostvars[vm.name] = {
            "ansible_host": vm.address, "ansible_user": "root", "ansible_connection": "ssh",
            "ansible_ssh_private_key_file": str(lab.image.key), "ansible_ssh_pipelining": True,
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "
                                       "-o ProxyCommand='%s'" % proxy,
            "ansible_python_interpreter": "/usr/bin/python3",
        }
    print(json.dumps({"_meta": {"hostvars": hostvars},
                      "all": {"children": ["kvm_hosts"]},
                      "kvm_hosts": {"hosts": sorted(hostvars), "vars": kvmhost.ROLE_VARS}}))


def verify(args):
    lab = HostLab.attach(_state_dir(args) / STATE)
    failed = {}
    for vm in lab.vms:
        kvmhost.plug_guest(lab, vm)
        for name, (ok, detail) in sorted(kvmhost.guest_checks(lab, vm).items()):
            print("%s %-13s %s %s" % (vm.name, name, "PASS" if ok else "FAIL", detail))
            if not ok:
                failed["%s %s" % (vm.name, name)] = detail
        kvmhost.unplug_guest(lab, vm)
    if failed:
        raise SystemExit("guest checks failed: %s" % ", ".join(sorted(failed)))


def destroy(args):
    state = _state_dir(args) / STATE
    if not state.exists():
        print("no lab")
        return
    lab = HostLab.attach(state)
    lab.close()
    state.unlink()
    print("destroyed %s (pids %s)" % (lab.ns, lab.pids))


def proxy(args):
    """Relay stdin/stdout to HOST:PORT (run inside the namespace by ``ip netns exec``)."""
    conn = socket.create_connection((args.host, int(args.port)), timeout=30)
    conn.settimeout(None)
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    sources = [stdin, conn]
    while True:
        readable, _w, _x = select.select(sources, [], [])
        if stdin in readable:
            data = os.read(stdin, 65536)
            if data:
                conn.sendall(data)
            else:
                conn.shutdown(socket.SHUT_WR)
                sources.remove(stdin)
        if conn in readable:
            data = conn.recv(65536)
            if not data:
                return
            while data:
                data = data[os.write(stdout, data):]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("create", "inventory", "verify", "destroy"):
        item = sub.add_parser(name)
        item.add_argument("--state-dir")
        if name == "create":
            item.add_argument("--suite", default=os.environ.get("HOSTLAB_SUITE", "bookworm"))
    item = sub.add_parser("proxy")
    item.add_argument("ns")
    item.add_argument("host")
    item.add_argument("port")
    # Ansible calls an inventory script with --list (or --host NAME)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["--list"], ["--host"]):
        argv = ["inventory"]
    args = parser.parse_args(argv)
    {"create": create, "inventory": inventory, "verify": verify, "destroy": destroy, "proxy": proxy}[args.command](args)


if __name__ == "__main__":
    main()
