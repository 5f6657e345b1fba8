#!/bin/sh
# busybox udhcpc calls this with the lease in the environment: configure the interface, print it.
# shellcheck disable=SC2154  # interface, ip, mask, router, dns and domain come from udhcpc
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    for r in $router; do ip route replace default via "$r"; break; done
    # shellcheck disable=SC2086  # split the list of servers on purpose
    set -- $dns
    echo "LEASE ip=$ip mask=$mask router=$router dns=$1 domain=$domain"
    ;;
esac
