#!/bin/bash
# "Hosts" on this machine for the multi-host tests: network namespaces
# da<ID>h1..hN, each with its own address 10.<NET>.0.<i>/24 on a veth pair
# whose other end sits on a bridge da<ID>br in the root namespace
# (10.<NET>.0.254, where mpirun runs). Ranks in different namespaces can
# only talk over TCP through the bridge; a host's link can be cut.
#
#   hosts.sh up ID N        # creates N hosts (idempotent: recreates them)
#   hosts.sh down ID N      # removes them and the bridge
#   hosts.sh addr ID I      # the address of host I
#   hosts.sh cut ID I       # takes host I's link down (its end on the bridge)
#   hosts.sh agent ...      # Open MPI's launch agent (plm_rsh_agent), see below
#
# ID (1-200) keeps concurrent test runs apart (NET = 100 + ID). Needs root and
# iproute2; exit status 77 (ctest's skip code) when namespaces cannot be made.
#
# As a launch agent, mpirun calls `hosts.sh agent ADDRESS COMMAND...` to
# start its daemon on ADDRESS: the command runs in that host's namespace and
# in a UTS namespace of its own named after the host (da<ID>h<I>), so every
# process there, and every message naming a node, sees that host name.
set -uo pipefail

usage() {
  echo "usage: hosts.sh up|down ID N | addr|cut ID I | agent ADDRESS COMMAND..." >&2
  exit 2
}
net() { echo $((100 + $1)); }
address() { echo "10.$(net "$1").0.$2"; }

up() {
  local id=$1 n=$2 i bridge="da${1}br"
  down "$id" "$n" 2> /dev/null
  if ! ip link add "$bridge" type bridge 2> /dev/null; then
    echo "hosts.sh: cannot create a bridge (needs root and network namespaces)" >&2
    exit 77
  fi
  ip addr add "$(address "$id" 254)/24" dev "$bridge" && ip link set "$bridge" up || exit 1
  for ((i = 1; i <= n; i++)); do
    local ns="da${id}h$i"
    ip netns add "$ns" || exit 77
    ip link add "da${id}h${i}b" type veth peer name eth0 netns "$ns" || exit 1
    ip link set "da${id}h${i}b" master "$bridge" up || exit 1
    ip -n "$ns" addr add "$(address "$id" "$i")/24" dev eth0 || exit 1
    ip -n "$ns" link set eth0 up && ip -n "$ns" link set lo up || exit 1
  done
  # Bridged traffic must not go through the host's firewall (if br_netfilter is loaded).
  [[ -w /proc/sys/net/bridge/bridge-nf-call-iptables ]] && echo 0 > /proc/sys/net/bridge/bridge-nf-call-iptables
  return 0
}

down() {
  local id=$1 n=$2 i
  for ((i = 1; i <= n; i++)); do
    ip netns pids "da${id}h$i" 2> /dev/null | xargs -r kill -9 2> /dev/null
    ip link del "da${id}h${i}b" 2> /dev/null
    ip netns del "da${id}h$i" 2> /dev/null
  done
  ip link del "da${id}br" 2> /dev/null
  return 0
}

agent() {
  local host=$1
  shift
  # 10.<NET>.0.<I> -> namespace da<NET-100>h<I>
  if [[ ! "$host" =~ ^10\.([0-9]+)\.0\.([0-9]+)$ ]]; then
    echo "hosts.sh agent: $host is not a host address" >&2
    exit 1
  fi
  local name="da$((BASH_REMATCH[1] - 100))h${BASH_REMATCH[2]}"
  # mpirun passes the daemon's command line as words meant for a remote shell.
  exec ip netns exec "$name" unshare --uts /bin/sh -c "hostname $name && exec $*"
}

(($# >= 1)) || usage
case $1 in
  up) (($# == 3)) || usage; up "$2" "$3" ;;
  down) (($# == 3)) || usage; down "$2" "$3" ;;
  addr) (($# == 3)) || usage; address "$2" "$3" ;;
  cut) (($# == 3)) || usage; ip link set "da${2}h${3}b" down ;;
  agent) shift; agent "$@" ;;
  *) usage ;;
esac
