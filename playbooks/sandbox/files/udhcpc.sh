#!/bin/sh
# busybox udhcpc calls this with the lease in the environment: configure the interface, print it.
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    for r in $router; do ip route replace default via "$r"; break; done
    set -- $dns
    echo "LEASE ip=$ip mask=$mask router=$router dns=$1 domain=$domain"
    ;;
esac
