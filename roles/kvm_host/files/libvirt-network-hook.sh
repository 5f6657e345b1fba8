#!/bin/sh
# Managed by hypervisor.network (kvm_host role).
#
# libvirt runs the scripts of /etc/libvirt/hooks/network.d/ as: <network> <operation> <sub-op> -,
# the network's XML on stdin. When a network has started, put the collection's jumps from the
# iptables FORWARD chain (HNET-*: the accept rules of port forwards, which must stand above
# libvirt's REJECT rules) back at the top of FORWARD. The first network libvirt starts after a
# boot creates libvirt's chains and inserts its own jumps at the top, above ours, since our boot
# unit may run before libvirt's autostart (libvirtd reports ready before it starts networks).
# One iptables-restore transaction per family: no moment without the jump.
cat >/dev/null
[ "$2" = started ] || exit 0
rc=0
for tool in iptables ip6tables; do
    command -v "$tool" >/dev/null 2>&1 || continue
    jumps=$("$tool" -w -S FORWARD 2>/dev/null | sed -n 's/^-A FORWARD -j \(HNET-[A-Za-z0-9_-]*\)$/\1/p')
    [ -n "$jumps" ] || continue
    deletes="" inserts=""
    for chain in $jumps; do
        deletes="$deletes-D FORWARD -j $chain
"
        inserts="-I FORWARD 1 -j $chain
$inserts"
    done
    printf '*filter\n%s%sCOMMIT\n' "$deletes" "$inserts" | "$tool-restore" --noflush || rc=1
done
exit $rc
