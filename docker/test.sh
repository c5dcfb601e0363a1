#!/usr/bin/env bash
# The Docker check (called from .ci/run): builds the image, brings up the compose
# cluster (5 nodes + gateway), uploads with the CLI from the host to the containers'
# addresses, fetches through the gateway with curl and compares bytes; 2 nodes killed →
# still retrievable; a third disconnected from the network → a clean failure;
# reconnected → retrievable again; a node restarted → its data survived in its volume.
# Then repair: 7 nodes with short check and grace periods; two holders of each file
# killed → their columns rebuilt on the others; two more original holders killed → every
# file still reads. Tears everything down whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."

compose=(docker-compose -p mosaic-test -f docker/compose.yaml --profile durability)
work="$(mktemp -d)"
cleanup() {
  status=$?
  if [ "$status" -ne 0 ]; then
    echo "--- docker test failed; container logs ---"
    for c in mosaic-node1 mosaic-node2 mosaic-node3 mosaic-node6 mosaic-gateway; do
      echo "## $c"; docker logs --tail 15 "$c" 2>&1 || true
    done
  fi
  "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

docker/build.sh
mosaic="$PWD/docker/build/mosaic"
"${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
# First part: the five nodes and the gateway (not the durability profile's nodes).
"${compose[@]}" up -d node1 node2 node3 node4 node5 gateway

# The host CLI talks to the containers directly on the private network.
export HOME="$work" XDG_CONFIG_HOME="$work/config" MOSAIC_BOOTSTRAP=172.29.0.11:6881
export MOSAIC_CONNECT_TIMEOUT=3s

wait_healthy() { # NAME...
  for c in "$@"; do
    for _ in $(seq 1 90); do
      [ "$(docker inspect -f '{{.State.Health.Status}}' "$c")" = healthy ] && continue 2
      sleep 1
    done
    echo "$c never became healthy"; exit 1
  done
}
wait_healthy mosaic-node1 mosaic-node2 mosaic-node3 mosaic-node4 mosaic-node5
for _ in $(seq 1 60); do
  [ "$("$mosaic" nodes 2>/dev/null | wc -l)" -ge 5 ] && break
  sleep 1
done
[ "$("$mosaic" nodes | wc -l)" -ge 5 ] || { echo "the CLI does not see 5 nodes"; exit 1; }
for _ in $(seq 1 60); do
  curl -fs http://127.0.0.1:8080/health >/dev/null && break
  sleep 1
done
echo "cluster up: 5 healthy nodes, gateway healthy"

head -c $((5 << 20)) /dev/urandom >"$work/a.bin"
head -c $((3 << 20)) /dev/urandom >"$work/b.bin"
head -c $((2 << 20)) /dev/urandom >"$work/c.bin"
a="$("$mosaic" put "$work/a.bin")"
b="$("$mosaic" put "$work/b.bin")"
c="$("$mosaic" put "$work/c.bin" --public)"

fetch() { # PATH OUT → HTTP status
  curl -s -o "$2" -w '%{http_code}' --max-time 60 "http://127.0.0.1:8080$1"
}
[ "$(fetch "/f/$a" "$work/a.out")" = 200 ] && cmp "$work/a.bin" "$work/a.out"
echo "ok: uploaded from the host, fetched through the gateway, bytes equal"

docker kill mosaic-node2 mosaic-node4 >/dev/null
[ "$(fetch "/f/$b" "$work/b.out")" = 200 ] && cmp "$work/b.bin" "$work/b.out"
echo "ok: 2 nodes killed, a file never fetched before is still retrievable"

docker network disconnect mosaic-test_mosaic mosaic-node3
status="$(fetch "/p/$c" "$work/c.out")"
case "$status" in
  502|504) echo "ok: a third node cut off: clean failure ($status: $(head -c 200 "$work/c.out"))" ;;
  *) echo "expected 502 or 504 with 3 of 5 nodes gone, got $status"; exit 1 ;;
esac

docker network connect --ip 172.29.0.13 mosaic-test_mosaic mosaic-node3
for i in $(seq 1 90); do
  [ "$(fetch "/p/$c" "$work/c.out")" = 200 ] && cmp -s "$work/c.bin" "$work/c.out" && break
  [ "$i" = 90 ] && { echo "not retrievable after reconnecting node3"; exit 1; }
  sleep 1
done
echo "ok: node3 reconnected, retrievable again"

used_before="$(docker exec mosaic-node1 /mosaic node health | sed -n 's/.*, \(.*\) used of.*/\1/p')"
docker restart mosaic-node1 >/dev/null
wait_healthy mosaic-node1
used_after="$(docker exec mosaic-node1 /mosaic node health | sed -n 's/.*, \(.*\) used of.*/\1/p')"
[ -n "$used_before" ] && [ "$used_before" = "$used_after" ] && [ "$used_after" != "0 B" ] || {
  echo "node1's data did not survive its restart: $used_before before, $used_after after"; exit 1; }
echo "ok: node1 restarted, its $used_after survived in its volume"

# Second part: repair. A fresh cluster of 7 nodes that check every 2 s and rebuild a
# column missing for 5 s.
"${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
rm -rf "$work/config"
export MOSAIC_CHECK_INTERVAL=2s MOSAIC_REPAIR_GRACE=5s
"${compose[@]}" up -d node1 node2 node3 node4 node5 node6 node7
wait_healthy mosaic-node1 mosaic-node2 mosaic-node3 mosaic-node4 mosaic-node5 mosaic-node6 mosaic-node7
for _ in $(seq 1 60); do
  [ "$("$mosaic" nodes 2>/dev/null | wc -l)" -ge 7 ] && break
  sleep 1
done
[ "$("$mosaic" nodes | wc -l)" -ge 7 ] || { echo "the CLI does not see 7 nodes"; exit 1; }
declare -A container # node id -> container name
for i in 1 2 3 4 5 6 7; do
  container[$(docker exec "mosaic-node$i" /mosaic node id)]="mosaic-node$i"
done
head -c $((4 << 20)) /dev/urandom >"$work/r1.bin"
head -c $((1 << 20)) /dev/urandom >"$work/r2.bin"
r1="$("$mosaic" put "$work/r1.bin")"
r2="$("$mosaic" put "$work/r2.bin")"
holders() { # CAP → the containers holding its columns, one per line
  "$mosaic" --json check "$1" | python3 -c '
import json, sys
for b in json.load(sys.stdin)["blobs"][1:]:
    for h in b["holders"]:
        print(h["node"])' | while read -r id; do echo "${container[$id]}"; done | sort -u
}
# Two of r1's holders go (never node1: it is the CLI's bootstrap).
mapfile -t first < <(holders "$r1" | grep -v '^mosaic-node1$')
[ "${#first[@]}" -ge 4 ] || { echo "r1 is on too few nodes: ${first[*]}"; exit 1; }
docker kill "${first[0]}" "${first[1]}" >/dev/null
echo "killed ${first[0]} and ${first[1]}; waiting for repair"
repaired() { # CAP → true once every column has a live holder
  "$mosaic" --json check "$1" 2>/dev/null | python3 -c '
import json, sys
v = json.load(sys.stdin)
sys.exit(0 if v["healthy"] == v["columns"] else 1)'
}
for i in $(seq 1 120); do
  repaired "$r1" && repaired "$r2" && break
  [ "$i" = 120 ] && { echo "not repaired within 4 minutes"; "$mosaic" check "$r1" || true; exit 1; }
  sleep 2
done
echo "ok: both files have all 5 columns again"
# Two more of r1's original holders go: 3 of its 5 columns are left.
docker kill "${first[2]}" "${first[3]}" >/dev/null
for f in r1 r2; do
  cap="$([ "$f" = r1 ] && echo "$r1" || echo "$r2")"
  "$mosaic" get "$cap" -o "$work/$f.out" && cmp "$work/$f.bin" "$work/$f.out" || {
    echo "$f does not read after 4 of r1's original holders were killed"; exit 1; }
done
echo "ok: 4 original holders killed (2 before repair, 2 after): both files read"
echo "docker test passed ($(docker image ls mosaic:latest --format '{{.Size}}') image)"
