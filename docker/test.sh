#!/usr/bin/env bash
# The Docker check (called from .ci/run): builds the image, brings up the compose
# cluster (5 nodes + gateway), uploads with the CLI from the host to the containers'
# addresses, fetches through the gateway with curl and compares bytes; 2 nodes killed →
# still retrievable; a third disconnected from the network → a clean failure;
# reconnected → retrievable again; a node restarted → its data survived in its volume.
# Tears everything down whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."

compose=(docker-compose -p mosaic-test -f docker/compose.yaml)
work="$(mktemp -d)"
cleanup() {
  status=$?
  if [ "$status" -ne 0 ]; then
    echo "--- docker test failed; container logs ---"
    for c in mosaic-node1 mosaic-node2 mosaic-node3 mosaic-gateway; do
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
"${compose[@]}" up -d

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
echo "docker test passed ($(docker image ls mosaic:latest --format '{{.Size}}') image)"
