#!/usr/bin/env bash
# NAT traversal in network namespaces: Mosaic nodes and clients in two homes, each
# behind its own masquerading router, reach each other through a Mosaic node's relay
# and punch holes where the NATs allow; a relay-only client is seen by the nodes only
# through the relay. Needs root (ip netns, iptables); CI runs as root.
#
#   relay   10.77.0.2   storage node serving the relay (https + QAD on :3340), DHT origin
#   pub     10.77.0.3   two storage nodes
#   rta     10.77.0.10  home A's router (NAT) ─ ha 192.168.10.2: clients A
#   rtb     10.77.0.20  home B's router (NAT) ─ hb 192.168.20.2: storage node B, client B
#
# The "internet" is a bridge in its own namespace; nothing leaves the namespaces this
# script creates. Every host resolves relay.mosaic.test through its namespace's
# /etc/hosts (ip netns exec mounts /etc/netns/NAME/hosts there): names, not addresses,
# are what the nodes and clients are given.
#
# Reports which connections went direct after hole punching and which stayed relayed;
# asserts the bytes read back equal the original, that home B's node holds a column,
# and that no node's connection records contain the relay-only client's address.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "tests/nat.sh needs root (network namespaces and iptables)" >&2
  exit 1
fi
BIN=${MOSAIC_BIN:-$PWD/target/debug/mosaic}
[ -x "$BIN" ] || cargo build --locked --bin mosaic
P=mz$$
WORK=$(mktemp -d /tmp/mosaic-nat.XXXXXX)
PIDS=()
NSES=()

cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  pkill -f -- "--data-dir $WORK/" 2>/dev/null || true
  wait 2>/dev/null || true
  for n in "${NSES[@]}"; do ip netns del "$n" 2>/dev/null || true; rm -rf "/etc/netns/$n"; done
  if [ $rc -ne 0 ]; then
    echo "--- logs (failure) ---"
    for f in "$WORK"/*.log; do echo "== $f"; tail -n 40 "$f"; done
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

ns() {
  ip netns add "$P-$1"
  NSES+=("$P-$1")
  ip -n "$P-$1" link set lo up
  mkdir -p "/etc/netns/$P-$1"
  printf '127.0.0.1 localhost\n10.77.0.2 relay.mosaic.test\n' >"/etc/netns/$P-$1/hosts"
}
# wire NS_A IF_A NS_B IF_B: a veth pair between two namespaces.
wire() {
  ip link add "$P-a" type veth peer name "$P-b"
  ip link set "$P-a" netns "$P-$1"
  ip link set "$P-b" netns "$P-$3"
  ip -n "$P-$1" link set "$P-a" name "$2"
  ip -n "$P-$3" link set "$P-b" name "$4"
  ip -n "$P-$1" link set "$2" up
  ip -n "$P-$3" link set "$4" up
}
run_in() { local n=$1; shift; ip netns exec "$P-$n" "$@"; }

echo "== building the namespaces"
ns inet
ip -n "$P-inet" link add br0 type bridge
ip -n "$P-inet" link set br0 up
attach() { # attach NS IF ADDR: a host on the internet bridge
  wire "$1" "$2" inet "$1"
  ip -n "$P-inet" link set "$1" master br0
  ip -n "$P-$1" addr add "$3/24" dev "$2"
}
ns relay; attach relay eth0 10.77.0.2
ns pub; attach pub eth0 10.77.0.3
home() { # home ROUTER HOST WAN_IP LAN_NET
  ns "$1"; attach "$1" wan "$3"
  ns "$2"; wire "$1" lan "$2" eth0
  ip -n "$P-$1" addr add "$4.1/24" dev lan
  ip -n "$P-$2" addr add "$4.2/24" dev eth0
  ip -n "$P-$2" route add default via "$4.1"
  run_in "$1" sysctl -qw net.ipv4.ip_forward=1
  # A home router: masquerade outgoing traffic, let in only what answers it.
  run_in "$1" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
  run_in "$1" iptables -A FORWARD -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  run_in "$1" iptables -A FORWARD -i wan -j DROP
  # Unsolicited packets to the router itself are dropped too, as home routers do (a
  # packet delivered locally would leave a conntrack entry whose ports clash with the
  # mapping of a later outgoing flow, and masquerading would pick another port).
  run_in "$1" iptables -A INPUT -i wan -m conntrack --ctstate NEW -j DROP
}
home rta ha 10.77.0.10 192.168.10
home rtb hb 10.77.0.20 192.168.20
# udp_probe FROM_NS TO_NS TO_IP: whether a datagram sent from FROM_NS reaches TO_NS.
udp_probe() {
  run_in "$2" timeout 3 python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("0.0.0.0",9999)); s.settimeout(2.5); s.recvfrom(10); print("got")' >"$WORK/probe" 2>/dev/null &
  local listener=$!
  sleep 0.3
  run_in "$1" python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); [s.sendto(b"x",(sys.argv[1],9999)) for _ in range(3)]' "$3" 2>/dev/null || true
  wait "$listener" || true
  grep -q got "$WORK/probe"
}
udp_probe ha relay 10.77.0.2 || fail "home A cannot reach the internet"
if udp_probe relay hb 192.168.20.2; then fail "home B is reachable from outside"; fi
if udp_probe relay hb 10.77.0.20; then fail "home B's router lets strangers in"; fi
echo "homes reach the internet; nothing reaches into them unasked"

export RUST_LOG="warn,mosaic_server=info,mosaic::peers=info"
export MOSAIC_NETWORK=nat-test
# start NAME NS ARGS...: a node; waits for its ready line.
start_node() {
  local name=$1 n=$2; shift 2
  # Not through a shell function: $! must be the node's own PID (ip netns exec
  # execs the command), so that killing it stops the node.
  ip netns exec "$P-$n" "$BIN" node run --json --data-dir "$WORK/$name" --open \
    --announce-interval 20s "$@" >"$WORK/$name.out" 2>"$WORK/$name.log" &
  PIDS+=($!)
  for _ in $(seq 100); do
    grep -q '"ready"' "$WORK/$name.out" 2>/dev/null && return 0
    sleep 0.2
  done
  fail "node $name did not start"
}
json() { python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())[sys.argv[2]] or '')" "$@"; }

echo "== public nodes: one serves the relay"
# Each peer may push 4 MiB/s through the relay: a relayed transfer is slow, so an
# upgrade to a direct path shows.
start_node relay relay --listen 10.77.0.2:4919 --dht-listen 10.77.0.2:6881 \
  --relay-serve 10.77.0.2:3340 --relay-rate 4MiB
RELAY=$(json "$WORK/relay.out" relay)
echo "relay: $RELAY"
[ -n "$RELAY" ] || fail "the relay node serves no relay"
BOOT=relay.mosaic.test:6881
start_node pub1 pub --listen 10.77.0.3:4919 --dht-listen 10.77.0.3:6881 --bootstrap "$BOOT"
start_node pub2 pub --listen 10.77.0.3:4920 --dht-listen 10.77.0.3:6882 --bootstrap "$BOOT"

echo "== home B's node: behind NAT, DHT client, finds the relay on the DHT"
start_node homeb hb --listen 0.0.0.0:4919 --dht-listen 0.0.0.0:6881 --dht-client \
  --bootstrap "$BOOT"
NODE_B=$(json "$WORK/homeb.out" id)
for _ in $(seq 150); do
  grep -q "home relay.*https" "$WORK/homeb.log" && break
  sleep 0.2
done
grep -q "home relay.*https" "$WORK/homeb.log" || fail "home B's node found no relay on the DHT"
echo "home B's node $NODE_B uses the relay"
sleep 3 # its address record, naming the relay, is republished at once; let it land

client() { # client NAME NS ARGS...: the CLI as one user (own keys and data)
  local name=$1 n=$2; shift 2
  mkdir -p "$WORK/$name"
  run_in "$n" env XDG_CONFIG_HOME="$WORK/$name/config" XDG_DATA_HOME="$WORK/$name/data" \
    MOSAIC_BOOTSTRAP="$BOOT" MOSAIC_CONNECT_TIMEOUT=2s "$BIN" "$@"
}
routes() { grep '^route ' "$1" | sed "s/^/  /" || true; }

echo "== client A (home A) stores a file on the 4 nodes, home B's included"
head -c $((16 << 20)) /dev/urandom >"$WORK/file"
client a ha put "$WORK/file" -k 2 -m 2 --json --timings >"$WORK/put.out" 2>"$WORK/put.log" \
  || { cat "$WORK/put.log"; fail "put from home A failed"; }
CAP=$(json "$WORK/put.out" cap)
grep -q "$NODE_B" "$WORK/put.out" || fail "home B's node got no column: $(cat "$WORK/put.out")"
echo "put from home A: connections at the end"
routes "$WORK/put.log"
grep "route $NODE_B" "$WORK/put.log" >/dev/null || fail "no connection record for home B's node"

echo "== client B (home B) reads it back"
client b hb get "$CAP" -o "$WORK/back" --timings 2>"$WORK/get.log" \
  || { cat "$WORK/get.log"; fail "get from home B failed"; }
cmp "$WORK/file" "$WORK/back" || fail "home B read different bytes"
echo "get from home B: byte-identical; connections at the end"
routes "$WORK/get.log"

echo "== client A2 (home A), relay-only, reads it"
A2=$(client a2 ha id | tail -n1)
# Home A's router counts what leaves home A during the relay-only get: the capture.
run_in rta iptables -N MZCOUNT
run_in rta iptables -I FORWARD -i lan -j MZCOUNT
run_in rta iptables -A MZCOUNT -d 10.77.0.2 -p tcp --dport 3340 -j RETURN
run_in rta iptables -A MZCOUNT -j RETURN
client a2 ha get "$CAP" -o "$WORK/back2" --relay-only --relay "$RELAY" --timings \
  2>"$WORK/get2.log" || { cat "$WORK/get2.log"; fail "relay-only get failed"; }
counts=$(run_in rta iptables -L MZCOUNT -v -x -n | awk 'NR>2 {print $1}')
to_relay=$(echo "$counts" | sed -n 1p)
elsewhere=$(echo "$counts" | sed -n 2p)
echo "packets leaving home A during the relay-only get: $to_relay to the relay (TCP 3340), $elsewhere elsewhere"
[ "$to_relay" -gt 0 ] || fail "the relay-only client sent nothing to the relay"
[ "$elsewhere" -eq 0 ] || fail "the relay-only client sent $elsewhere packets elsewhere than its relay (DHT or direct paths)"
run_in rta iptables -D FORWARD -i lan -j MZCOUNT
cmp "$WORK/file" "$WORK/back2" || fail "the relay-only client read different bytes"
echo "relay-only get: byte-identical; connections at the end"
routes "$WORK/get2.log"
if grep '^route ' "$WORK/get2.log" | grep -q ' direct '; then
  fail "a relay-only connection went direct"
fi
sleep 2 # nodes log a connection record when it ends
echo "nodes' records of the relay-only client $A2:"
grep -h "mosaic::peers" "$WORK"/*.log | grep "$A2" | sed 's/^/  /' || true
records=$(grep -h "mosaic::peers" "$WORK"/*.log | grep "$A2" || true)
[ -n "$records" ] || fail "no node recorded a connection from the relay-only client"
if echo "$records" | grep -Eq '10\.77\.0\.10|192\.168\.10\.'; then
  fail "a node learned the relay-only client's address"
fi
echo "$records" | grep -q "10.77.0.2:3340" || fail "records do not show the relay"

echo "== hole punching: the public storage nodes stop; client A (home A) reads the file"
echo "   from the relay's node and home B's node, first through the relay (4 MiB/s), then"
echo "   direct if hole punching gets through both NATs"
kill "${PIDS[1]}" "${PIDS[2]}"; wait "${PIDS[1]}" "${PIDS[2]}" 2>/dev/null || true
RUST_LOG=${NAT_CLIENT_LOG:-warn} client a ha get "$CAP" -o "$WORK/back1" --timings 2>"$WORK/geta.log" \
  || { cat "$WORK/geta.log"; fail "get from home A failed"; }
cmp "$WORK/file" "$WORK/back1" || fail "home A read different bytes"
routes "$WORK/geta.log"
punched=$(grep -c "^route $NODE_B direct 10.77.0.20:" "$WORK/geta.log" || true)
 [ -z "${NAT_CLIENT_LOG:-}" ] || cp "$WORK/geta.log" /tmp/geta.log

route_to_b() { grep "^route $NODE_B " "$1" | cut -d' ' -f3- || echo none; }
echo "== summary: connections to home B's node, as each client saw them at the end"
echo "   put from home A:                      $(route_to_b "$WORK/put.log")"
echo "   get from home B (same LAN):           $(route_to_b "$WORK/get.log")"
echo "   relay-only get from home A:           $(route_to_b "$WORK/get2.log")"
echo "   get from home A, public nodes gone:   $(route_to_b "$WORK/geta.log")"
if [ "$punched" -gt 0 ]; then
  echo "   home A to home B: hole punched, direct to home B's router (10.77.0.20)"
else
  echo "   home A to home B: stayed relayed (no hole punched)"
fi
echo "   relay-only client: every connection relayed, no node saw its address"
echo "NAT test passed"
