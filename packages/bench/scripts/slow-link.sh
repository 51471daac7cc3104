#!/bin/sh
# Runs a command in a network namespace of its own (as root: `unshare --net`)
# whose TCP stack behaves like a slow link's rather than loopback's: the
# kernel keeps at most 16 KiB unsent per socket (net.ipv4.tcp_notsent_lowat,
# what a deployment should set too, see docs/DELIVERY.md) and receive buffers
# do not grow (tcp_moderate_rcvbuf=0). Nothing outside the namespace changes.
#   unshare --net sh scripts/slow-link.sh node dist/src/delivery.js
set -e
ip link set lo up
echo 16384 > /proc/sys/net/ipv4/tcp_notsent_lowat
echo 0 > /proc/sys/net/ipv4/tcp_moderate_rcvbuf
exec "$@"
