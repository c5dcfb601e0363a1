#!/usr/bin/env python3
"""Soak test: a cluster under continuous load while nodes fail, for a set duration.

N storage nodes (default 20, real `mosaic node run` processes on 127.0.0.1) and one
`mosaic gateway run` take a stream of `mosaic put`s (random files of mixed sizes, some
public, some with small segments), `mosaic get`s and gateway reads (`/f/CAP` and
`/p/ID`, whole files and random single ranges), while a chaos loop disturbs nodes at
random: SIGKILL (then a restart), SIGSTOP (then SIGCONT), SIGTERM and an immediate
restart, and network isolation (iptables DROP of the node's two UDP ports on loopback,
in a chain of this run's own). It checks what the code promises:

  - no wrong byte, ever: every successful `mosaic get` equals what was put (SHA-256),
    every gateway 200/206 body equals the bytes of its range (compared as it streams,
    so the first wrong offset is named), and a body cut short has a correct prefix.
    A failed read must be an error exit (no partial output file) or an error status;
    during the chaos such failures are counted by kind, not fatal (with at most 2
    nodes disturbed the data is always there, so each one is a read the code could
    have served: the summary says how many, and how many were of files put less than
    one announce interval before). On a wrong byte the run stops at once and prints
    the file, the range, the offset and every node's state.
  - with --strict-reads (issue 27's target), any failed read of a file that was readable
    (at most --max-disturbed nodes disturbed) fails the run, checked before healing.
  - no acknowledged file lost: the default 3-of-5 code survives 2 missing columns, so
    the chaos never has more than 2 nodes disturbed at once (killed, frozen, cut off,
    or restarting until it listens again: `--max-disturbed`, refused above m = 2).
    At the end every node is healed (restarted, continued, reconnected), the cluster
    settles, and every file whose put succeeded must read back correctly through the
    CLI and the gateway, with all 5 columns held by live nodes (`mosaic check`).
    Failed reads after healing fail the run.
  - repair runs: the nodes check their files every `--check-interval` (20 s here
    instead of 30 min) and rebuild a column missing for `--repair-grace` (30 s instead
    of 1 h; back-off 20 s; re-announce every 60 s instead of 10 min), so the quarter of
    outages that last 40-90 s trigger real repairs; repairs and rebuilt columns are
    counted from the nodes' logs.
  - no process grows without bound: VmRSS of every node and of the gateway is sampled
    every few seconds; at the end each must be under 3 x its RSS after warm-up +
    100 MiB (see RSS_FACTOR). A quarter of the nodes are "stable" (only frozen or cut
    off, never restarted), so some node processes live through the whole run.

Figures (operations attempted / succeeded, failures by kind, chaos events by kind,
RSS start / peak / end per process kind, bytes moved, repairs, the final verification)
are printed as a table and written as JSON (`--json PATH` or $MOSAIC_SOAK_JSON).

The seed (printed; `--seed` or $MOSAIC_SOAK_SEED) fixes the files' sizes and
contents and the chaos's choices; the interleaving with real processes is not
reproducible, but a failure's seed replays the same files and the same kind of storm.

Ports: QUIC BASE+i, DHT BASE+100+i, gateway HTTP BASE+200 (BASE 17000 by default, below
the ephemeral range and away from the devnet's 4919/6881+ and benches/scale.sh's
25000/26000+), all on 127.0.0.1; no relay (none exists on this private DHT), no
portmapping (always off), no public DHT bootstrap (every process is given ours).
Needs root for iptables (without it, `--no-isolate`). Every child is killed and the
iptables chain removed on exit, Ctrl-C and failure included.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import http.client
import json
import math
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

MIB = 1 << 20
# The RSS bound at the end: RSS_FACTOR x the RSS after warm-up + RSS_SLACK. A node's
# memory legitimately grows with what it holds and serves (redb and iroh-blobs caches,
# per-peer connection state, DHT tables, allocator fragmentation after bursts of large
# transfers) and a debug build's baseline is small (tens of MiB), so a tight ratio would
# fail on caches; 3 x + 100 MiB still catches a leak per request or per file, which
# over a run of thousands of requests grows far beyond it.
RSS_FACTOR = 3
RSS_SLACK = 100 * MIB
# What the default code tolerates: m = 2 missing columns of 5.
PARITY = 2


def parse_duration(text: str) -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 180, 90s, 3m, 1h)")
    value, unit = float(m.group(1)), m.group(2) or "s"
    return value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def percentiles(values: list[float]) -> dict:
    if not values:
        return {}
    v = sorted(values)
    pick = lambda q: round(v[min(len(v) - 1, int(q * len(v)))], 2)  # noqa: E731
    return {"p50": pick(0.5), "p95": pick(0.95), "max": round(v[-1], 2)}


class SoakFailure(Exception):
    """The run found something wrong and must exit non-zero."""


# ---------------------------------------------------------------------------------
# Files


@dataclass
class SoakFile:
    index: int
    name: str
    size: int
    public: bool
    segment_size: int | None
    path: Path
    sha256: str
    cap: str = ""
    put_at: float = 0.0


def file_plan(seed: int, index: int, large: list[int]) -> tuple[int, bool, int | None]:
    """Size, public flag and segment size of file `index`, from the seed alone."""
    rng = random.Random(f"{seed}-plan-{index}")
    edge = [1, 1023, 1 << 20, 3 * (1 << 20) + 1, 65536 * 5 - 7]
    if index < len(edge):
        size = edge[index]
    elif index - len(edge) < len(large):
        size = large[index - len(edge)] * MIB + rng.randrange(1, 4096)
    else:
        # Log-uniform from 2 KB to 4 MiB: mostly small files, some of several MiB.
        size = int(math.exp(rng.uniform(math.log(2000), math.log(4 * MIB))))
    public = rng.random() < 0.25
    # Small segments for some files: ranges then cross many segment boundaries.
    segment = 65536 if rng.random() < 0.3 else None
    return size, public, segment


# ---------------------------------------------------------------------------------
# The cluster


@dataclass
class Node:
    index: int
    quic: int
    dht: int
    dir: Path
    log: Path
    stable: bool
    proc: subprocess.Popen | None = None
    state: str = "down"  # up, starting, killed, frozen, isolated, stopping, down
    since: float = 0.0
    until: float = 0.0  # when the current disturbance ends
    incarnation: int = 0
    log_offset: int = 0
    start_deadline: float = 0.0
    restart_failures: int = 0

    @property
    def disturbed(self) -> bool:
        return self.state != "up"


class Soak:
    # The gateway's segment cache: small, so reads keep going to the nodes, not just the
    # cache (benches/churn.py sets none at all).
    gateway_cache_size = "32MiB"

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.seed: int = args.seed
        self.t0 = time.monotonic()
        self.stop = threading.Event()
        self.abort = threading.Event()
        self.lock = threading.RLock()
        self.failures: list[str] = []  # what fails the run
        self.children: set[subprocess.Popen] = set()
        self.nodes: list[Node] = []
        self.gateway: subprocess.Popen | None = None
        self.gateway_log: Path | None = None
        self.chain: str | None = None
        self.isolated_rules: dict[int, list[list[str]]] = {}
        self.files: list[SoakFile] = []  # acknowledged puts
        self.stats = {
            kind: {"attempted": 0, "ok": 0, "failures": Counter(), "examples": {}, "seconds": []}
            for kind in ("put", "get", "gateway")
        }
        self.bytes = Counter()
        self.chaos_counts = Counter()
        self.failure_log: list[dict] = []
        self.closing = False
        self.chaos_events: list[dict] = []
        self.max_disturbed_seen = 0
        self.disturbed_time: Counter = Counter()
        self.isolation_drops = 0
        self.rss: dict[str, dict] = {}
        self.cpu_ticks: dict[int, int] = {}
        self.pid_kind: dict[int, str] = {}
        self.phase = "setup"
        self.warm_rss: dict[str, int] = {}
        self.final: dict = {}
        self.work = Path(args.work_dir or tempfile.mkdtemp(prefix="mosaic-soak."))
        self.work.mkdir(parents=True, exist_ok=True)
        self.network = f"soak-{os.getpid()}-{self.seed}"
        self.gateway_port = args.base_port + 200
        self.bin = self.work / "bin" / "mosaic"

    # -- time and logging

    def now(self) -> float:
        return time.monotonic() - self.t0

    def say(self, msg: str) -> None:
        print(f"[{self.now():7.1f}s] {msg}", flush=True)

    def fail(self, msg: str) -> None:
        with self.lock:
            self.failures.append(msg)
        self.say(f"FAIL {msg}")

    # -- processes

    def env(self, who: str) -> dict[str, str]:
        """The environment of a client process: its own data dir (keyring, address
        book), the shared identity, this cluster's DHT and network."""
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("MOSAIC_"):
                del env[k]
        boot = ",".join(f"127.0.0.1:{n.dht}" for n in self.nodes[:3])
        env.update(
            HOME=str(self.work / "home"),
            XDG_CONFIG_HOME=str(self.work / "home" / "config"),
            XDG_DATA_HOME=str(self.work / "home" / who),
            MOSAIC_BOOTSTRAP=boot,
            MOSAIC_NETWORK=self.network,
            MOSAIC_BIND="127.0.0.1:0",
            MOSAIC_CONNECT_TIMEOUT="2s",
            RUST_LOG=os.environ.get("MOSAIC_SOAK_LOG", "info"),
            NO_COLOR="1",
        )
        return env

    def run_cli(self, who: str, args: list[str], timeout: float) -> tuple[int | None, str, str]:
        """Runs the CLI; (exit code or None on timeout, stdout, stderr)."""
        if self.closing:
            raise _Closing()
        proc = subprocess.Popen(
            [str(self.bin), *args],
            env=self.env(who),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        with self.lock:
            self.children.add(proc)
        try:
            out, err = proc.communicate(timeout=timeout)
            return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            return None, out.decode(errors="replace"), err.decode(errors="replace")
        finally:
            with self.lock:
                self.children.discard(proc)
            if self.closing:
                # Killed by the cleanup: not a result to count.
                raise _Closing()

    def node_args(self, node: Node) -> list[str]:
        a = self.args
        args = [
            "node", "run",
            "--data-dir", str(node.dir),
            "--listen", f"127.0.0.1:{node.quic}",
            "--dht-listen", f"127.0.0.1:{node.dht}",
            "--network", self.network,
            "--open",
            "--capacity", "4GiB",
            "--announce-interval", a.announce_interval,
            "--check-interval", a.check_interval,
            "--repair-grace", a.repair_grace,
            "--repair-backoff", a.repair_backoff,
        ]
        # Two or three bootstrap addresses: any of them may be down. Node 0 starts the
        # network alone the first time, and rejoins through nodes 1 and 2 later.
        boot = [f"127.0.0.1:{n.dht}" for n in self.nodes[:3] if n is not node]
        if node.index == 0 and node.incarnation == 0:
            boot = []
        if boot:
            args += ["--bootstrap", ",".join(boot)]
        return args

    def spawn_node(self, node: Node) -> None:
        if self.closing:
            raise _Closing()
        node.dir.mkdir(parents=True, exist_ok=True)
        args = self.node_args(node)
        node.incarnation += 1
        with open(node.log, "ab") as log:
            log.write(f"=== soak: start {node.incarnation} at {self.now():.1f}s\n".encode())
            log.flush()
            node.log_offset = log.tell()
            env = self.env(f"node{node.index}-home")
            env.pop("MOSAIC_BOOTSTRAP")
            node.proc = subprocess.Popen(
                [str(self.bin), *args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        with self.lock:
            self.pid_kind[node.proc.pid] = f"node{node.index}"
        node.state = "starting"
        node.since = self.now()
        node.start_deadline = self.now() + 60

    def node_listening(self, node: Node) -> bool:
        try:
            with open(node.log, "rb") as f:
                f.seek(node.log_offset)
                return b"listening on" in f.read()
        except OSError:
            return False

    def log_tail(self, path: Path, lines: int = 15) -> str:
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_started(self, node: Node, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.node_listening(node):
                node.state = "up"
                node.since = self.now()
                return
            if node.proc and node.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise SoakFailure(f"node {node.index} did not start:\n{self.log_tail(node.log)}")

    # -- iptables

    def ipt(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run(["iptables", "-w", *args], capture_output=True, text=True)
        if check and r.returncode != 0:
            raise SoakFailure(f"iptables {' '.join(args)}: {r.stderr.strip()}")
        return r

    def setup_iptables(self) -> None:
        if "isolate" not in self.args.events:
            return
        if shutil.which("iptables") is None:
            raise SoakFailure("iptables is missing (apt-get install iptables), or run with --no-isolate")
        self.chain = f"MOSAIC-SOAK-{self.args.base_port}"
        self.remove_iptables()  # a chain left by a run that was killed outright
        self.ipt("-N", self.chain)
        self.ipt("-I", "INPUT", "1", "-j", self.chain)

    def remove_iptables(self) -> None:
        if not self.chain:
            return
        while self.ipt("-D", "INPUT", "-j", self.chain, check=False).returncode == 0:
            pass
        self.ipt("-F", self.chain, check=False)
        self.ipt("-X", self.chain, check=False)

    def isolate(self, node: Node) -> None:
        # Every packet to or from the node's QUIC and DHT ports on loopback (loopback
        # packets all pass INPUT): its peers and clients see it vanish mid-connection.
        rules = []
        for port in (node.quic, node.dht):
            for direction in ("--dport", "--sport"):
                rules.append(["-i", "lo", "-p", "udp", direction, str(port), "-j", "DROP"])
        for r in rules:
            self.ipt("-A", self.chain, *r)
        self.isolated_rules[node.index] = rules

    def reconnect(self, node: Node) -> None:
        rules = self.isolated_rules.pop(node.index, [])
        # Count what the rules dropped (proof that isolation bites) before removing them.
        out = self.ipt("-L", self.chain, "-v", "-x", "-n", check=False).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) > 8 and parts[2] == "DROP" and (f"dpt:{node.quic}" in line or f"spt:{node.quic}" in line or f"dpt:{node.dht}" in line or f"spt:{node.dht}" in line):
                try:
                    self.isolation_drops += int(parts[0])
                except ValueError:
                    pass
        for r in rules:
            self.ipt("-D", self.chain, *r, check=False)

    # -- setup

    def check_ports(self) -> None:
        base = self.args.base_port
        taken = []
        for i in range(self.args.nodes):
            for port in (base + i, base + 100 + i):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    taken.append(f"udp/{port}")
                finally:
                    s.close()
        s = socket.socket()
        # As the gateway binds (SO_REUSEADDR): a previous run's TIME_WAIT is no conflict.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", self.gateway_port))
        except OSError:
            taken.append(f"tcp/{self.gateway_port}")
        finally:
            s.close()
        if taken:
            raise SoakFailure(f"ports taken (another soak run? use --base-port): {', '.join(taken[:8])}")

    def setup(self) -> None:
        a = self.args
        src = Path(a.bin).resolve()
        if not src.is_file():
            raise SoakFailure(f"{src} is not built (cargo build, or set MOSAIC_BIN)")
        self.bin.parent.mkdir(parents=True, exist_ok=True)
        # A copy: a build may replace the binary under a running soak.
        shutil.copy2(src, self.bin)
        (self.work / "files").mkdir(exist_ok=True)
        self.check_ports()
        self.setup_iptables()
        base = a.base_port
        stable = set(range(a.nodes - a.stable_nodes, a.nodes))
        for i in range(a.nodes):
            self.nodes.append(
                Node(i, base + i, base + 100 + i, self.work / f"node{i}", self.work / f"node{i}.log", i in stable)
            )
        self.say(f"starting {a.nodes} nodes (QUIC {base}-{base + a.nodes - 1}, DHT {base + 100}-{base + 100 + a.nodes - 1}), work dir {self.work}")
        for node in self.nodes:
            self.spawn_node(node)
            if node.index == 0:
                self.wait_started(node)
        for node in self.nodes:
            self.wait_started(node)
        # One identity for every client process, made before they run concurrently.
        rc, out, err = self.run_cli("setup", ["id"], 60)
        if rc != 0:
            raise SoakFailure(f"mosaic id failed: {err}")
        self.wait_nodes(a.nodes, 120)
        self.say(f"{a.nodes} nodes up and reachable; starting the gateway on 127.0.0.1:{self.gateway_port}")
        self.start_gateway()

    def wait_nodes(self, want: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            rc, out, _ = self.run_cli("setup", ["nodes"], 60)
            seen = len([l for l in out.splitlines() if l.strip()]) if rc == 0 else 0
            if seen >= want:
                return seen
            time.sleep(1)
        raise SoakFailure(f"only {seen} of {want} nodes reachable after {timeout:.0f} s")

    def start_gateway(self) -> None:
        self.gateway_log = self.work / "gateway.log"
        env = self.env("gateway")
        with open(self.gateway_log, "ab") as log:
            self.gateway = subprocess.Popen(
                [
                    str(self.bin), "gateway", "run",
                    "--listen", f"127.0.0.1:{self.gateway_port}",
                    "--cache-dir", str(self.work / "gateway-cache"),
                    "--cache-size", self.gateway_cache_size,
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.pid_kind[self.gateway.pid] = "gateway"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.gateway_port, timeout=5)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    return
            except OSError:
                pass
            if self.gateway.poll() is not None:
                break
            time.sleep(0.5)
        raise SoakFailure(f"the gateway did not become healthy:\n{self.log_tail(self.gateway_log)}")

    # -- state report (for wrong bytes and failures)

    def node_states(self) -> str:
        with self.lock:
            rows = []
            for n in self.nodes:
                pid = n.proc.pid if n.proc else "-"
                rows.append(f"  node{n.index:<3} {n.state:<9} since {n.since:7.1f}s pid {pid} incarnation {n.incarnation}{' stable' if n.stable else ''}")
            recent = self.chaos_events[-12:]
        ev = "\n".join(f"  {e['t']:7.1f}s node{e['node']} {e['kind']} {e.get('secs', '')}" for e in recent)
        return "node states:\n" + "\n".join(rows) + "\nrecent chaos events:\n" + ev

    # -- RSS

    def sample_rss(self) -> None:
        procs: list[tuple[str, subprocess.Popen, int]] = []
        with self.lock:
            for n in self.nodes:
                if n.proc and n.proc.poll() is None:
                    procs.append((f"node{n.index}", n.proc, n.incarnation))
            if self.gateway and self.gateway.poll() is None:
                procs.append(("gateway", self.gateway, 1))
        t = self.now()
        for name, proc, inc in procs:
            rss = None
            try:
                with open(f"/proc/{proc.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            rss = int(line.split()[1]) * 1024
                with open(f"/proc/{proc.pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                    self.cpu_ticks[proc.pid] = int(fields[11]) + int(fields[12])
            except (OSError, ValueError, IndexError):
                continue
            if rss is None:
                continue
            with self.lock:
                r = self.rss.setdefault(name, {"first": rss, "peak": 0, "samples": [], "incarnations": set()})
                r["peak"] = max(r["peak"], rss)
                r["last"] = rss
                r["last_incarnation"] = inc
                r["incarnations"].add(inc)
                r["samples"].append((round(t, 1), rss, inc))

    def rss_loop(self) -> None:
        while not self.stop.wait(self.args.rss_every):
            self.sample_rss()

    # -- workload

    def new_file(self, index: int) -> SoakFile:
        size, public, segment = file_plan(self.seed, index, self.args.large_mib)
        name = f"soak-{self.seed}-{index:05d}.bin"
        path = self.work / "files" / name
        data = random.Random(f"{self.seed}-data-{index}").randbytes(size)
        path.write_bytes(data)
        return SoakFile(index, name, size, public, segment, path, hashlib.sha256(data).hexdigest())

    def guarded(self, fn, *args) -> None:
        """A worker thread: stops quietly at teardown; a bug in it fails the run."""
        try:
            fn(*args)
        except _Closing:
            pass
        except Exception:  # noqa: BLE001
            if not self.closing:
                self.fail(f"the soak's {threading.current_thread().name} worker crashed:\n{traceback.format_exc()}")
                self.abort.set()
                self.stop.set()

    def record_failure(self, kind: str, why: str, detail: str, f: SoakFile | None = None) -> None:
        if self.closing:
            return
        with self.lock:
            s = self.stats[kind]
            s["failures"][why] += 1
            disturbed = [f"node{n.index} {n.state}" for n in self.nodes if n.disturbed]
            ex = s["examples"].setdefault(why, [])
            age = f", put {self.now() - f.put_at:.0f} s before" if f is not None else ""
            if len(ex) < 3:
                ex.append(f"{self.now():.1f}s {detail} [disturbed: {', '.join(disturbed) or 'none'}{age}]"[:700])
            self.failure_log.append({
                "t": round(self.now(), 1), "op": kind, "why": why, "file": f.name if f else None,
                "since_put_s": round(self.now() - f.put_at, 1) if f else None, "disturbed": len(disturbed),
            })

    def put_one(self, index: int) -> SoakFile | None:
        f = self.new_file(index)
        # --timings: where a slow put's time went (DHT lookups, dials, requests).
        args = ["--timings", "put", str(f.path), "--name", f.name]
        if f.public:
            args.append("--public")
        if f.segment_size:
            args += ["--segment-size", str(f.segment_size)]
        with self.lock:
            self.stats["put"]["attempted"] += 1
        started = time.monotonic()
        rc, out, err = self.run_cli("putter", args, self.args.put_timeout)
        took = time.monotonic() - started
        if took > self.args.slow_put:
            slow = self.work / "slow-puts"
            slow.mkdir(exist_ok=True)
            disturbed = ", ".join(f"node{n.index} {n.state}" for n in self.nodes if n.disturbed)
            (slow / f"{f.name}.txt").write_text(f"{took:.1f} s, exit {rc}, ended at {self.now():.1f}s, disturbed at the end: {disturbed or 'none'}\n{err}")
        lines = [l.strip() for l in out.splitlines() if l.strip()]
        cap = lines[-1] if lines else ""
        if rc == 0 and cap.startswith("mi1" if f.public else "mr1"):
            f.cap = cap
            f.put_at = self.now()
            with self.lock:
                self.stats["put"]["ok"] += 1
                self.stats["put"]["seconds"].append(took)
                self.bytes["put"] += f.size
                self.files.append(f)
            return f
        why = "timeout" if rc is None else f"exit {rc}" if rc != 0 else "no cap printed"
        last = err.strip().splitlines()[-1] if err.strip() else out[-200:]
        self.record_failure("put", why, f"{f.name} ({f.size} B): {last}")
        return None

    def put_loop(self, start_index: int) -> None:
        rng = random.Random(f"{self.seed}-put-pace")
        index = start_index
        while not self.stop.is_set():
            started = time.monotonic()
            self.put_one(index)
            index += 1
            pause = rng.uniform(0.5, 1.5) * self.args.put_every - (time.monotonic() - started)
            if pause > 0 and self.stop.wait(pause):
                break

    def pick_file(self, rng: random.Random) -> SoakFile | None:
        with self.lock:
            files = list(self.files)
        if not files:
            return None
        weights = [1.0 if f.size <= 4 * MIB else 0.15 for f in files]
        return rng.choices(files, weights)[0]

    def wrong_bytes(self, what: str, f: SoakFile, rng_desc: str, detail: str, body: bytes | None = None) -> None:
        dump = ""
        if body is not None:
            p = self.work / f"wrong-{what}-{f.index}-{int(self.now())}.bin"
            p.write_bytes(body)
            dump = f"\nthe bytes received: {p}"
        msg = (
            f"WRONG BYTES from {what}: file {f.name} (index {f.index}, {f.size} bytes, "
            f"{'public' if f.public else 'private'}, segment size {f.segment_size or 'default'}, cap {f.cap}), "
            f"range {rng_desc}: {detail}{dump}\nseed {self.seed}\n{self.node_states()}"
        )
        kind = "get" if what == "mosaic get" else "gateway"
        with self.lock:
            self.stats[kind]["failures"]["WRONG BYTES"] += 1
        self.fail(msg)
        self.abort.set()
        self.stop.set()

    def get_one(self, who: str, f: SoakFile, final: bool = False) -> bool:
        outdir = self.work / "out" / who
        shutil.rmtree(outdir, ignore_errors=True)
        outdir.mkdir(parents=True)
        out = outdir / "file.bin"
        if not final:
            with self.lock:
                self.stats["get"]["attempted"] += 1
        started = time.monotonic()
        rc, _, err = self.run_cli(who, ["get", f.cap, "-o", str(out)], self.args.get_timeout)
        took = time.monotonic() - started
        if rc == 0:
            if not out.exists():
                self.fail(f"get of {f.name} exited 0 but wrote no file")
                return False
            h = hashlib.sha256()
            with open(out, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            if h.hexdigest() != f.sha256:
                got = out.read_bytes()
                want = f.path.read_bytes()
                first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
                self.wrong_bytes("mosaic get", f, f"whole file (0-{f.size - 1})", f"got {len(got)} bytes, first difference at offset {first}", got)
                return False
            if not final:
                with self.lock:
                    self.stats["get"]["ok"] += 1
                    self.stats["get"]["seconds"].append(took)
                    self.bytes["get"] += f.size
            return True
        why = "timeout" if rc is None else f"exit {rc}"
        last = err.strip().splitlines()[-1] if err.strip() else ""
        if not final:
            self.record_failure("get", why, f"{f.name}: {last}", f)
        left = list(outdir.iterdir())
        if rc is not None and left:
            # The CLI promises the output is written whole or not at all.
            self.fail(f"a failed get of {f.name} ({why}) left {[p.name for p in left]} behind: {last}")
        if final:
            self.final.setdefault("errors", []).append(f"get {f.name}: {why}: {last}")
        return False

    def get_loop(self, worker: int) -> None:
        rng = random.Random(f"{self.seed}-get-{worker}")
        who = f"getter{worker}"
        while not self.stop.is_set():
            f = self.pick_file(rng)
            if f is None:
                self.stop.wait(1)
                continue
            self.get_one(who, f)
            self.stop.wait(rng.uniform(0.2, 1.0) * self.args.read_pause)

    def gateway_read(self, f: SoakFile, rng: random.Random, whole: bool = False, final: bool = False) -> bool:
        """One gateway request; compares the body as it streams. True if complete and right."""
        path = f"/p/{f.cap}" if f.public else f"/f/{f.cap}"
        headers = {}
        size = f.size
        r = rng.random()
        if whole or r < 0.2:
            start, end, desc = 0, size - 1, "whole file"
        elif r < 0.7:
            a = rng.randrange(size)
            b = min(size - 1, a + int(math.exp(rng.uniform(0, math.log(max(2, size))))))
            start, end = a, b
            headers["Range"] = desc = f"bytes={a}-{b}"
        elif r < 0.85:
            a = rng.randrange(size)
            start, end = a, size - 1
            headers["Range"] = desc = f"bytes={a}-"
        else:
            n = rng.randrange(1, size + 1)
            start, end = size - n, size - 1
            headers["Range"] = desc = f"bytes=-{n}"
        if not final:
            with self.lock:
                self.stats["gateway"]["attempted"] += 1
        got = 0
        started = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", self.gateway_port, timeout=self.args.gateway_timeout)
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            status = resp.status
            if status not in (200, 206):
                body = resp.read(300).decode(errors="replace").strip()
                if not final:
                    self.record_failure("gateway", f"status {status}", f"{f.name} {desc}: {body}", f)
                else:
                    self.final.setdefault("errors", []).append(f"gateway {f.name} {desc}: {status} {body}")
                return False
            if status == 206:
                cr = resp.getheader("Content-Range", "")
                want_cr = f"bytes {start}-{end}/{size}"
                if cr != want_cr or not headers:
                    self.fail(f"gateway answered {path[:3]}… {desc} of {f.name} with 206 and Content-Range {cr!r}, not {want_cr!r}")
                    return False
            else:
                if headers:
                    self.fail(f"gateway answered a single range ({desc}) of {f.name} with 200, not 206")
                    return False
                start, end = 0, size - 1
            length = end - start + 1
            cl = resp.getheader("Content-Length")
            if cl is not None and int(cl) != length:
                self.fail(f"gateway: Content-Length {cl} for {desc} of {f.name}, expected {length}")
                return False
            with open(f.path, "rb") as fh:
                fh.seek(start)
                while got < length:
                    try:
                        chunk = resp.read(min(256 * 1024, length - got))
                    except http.client.IncompleteRead as e:
                        chunk = e.partial
                        if chunk:
                            want = fh.read(len(chunk))
                            if chunk != want:
                                raise _Mismatch(got, chunk, want)
                            got += len(chunk)
                        raise ConnectionError(f"incomplete body: {got} of {length} bytes") from None
                    if not chunk:
                        raise ConnectionError(f"body ended at {got} of {length} bytes")
                    want = fh.read(len(chunk))
                    if chunk != want:
                        raise _Mismatch(got, chunk, want)
                    got += len(chunk)
            # Nothing may follow the announced length.
            extra = resp.read(1) if cl is None else b""
            if extra:
                self.wrong_bytes("the gateway", f, f"{desc} ({start}-{end})", "more bytes than the range holds")
                return False
            with self.lock:
                self.bytes["gateway"] += got
                if not final:
                    self.stats["gateway"]["ok"] += 1
                    self.stats["gateway"]["seconds"].append(time.monotonic() - started)
            return True
        except _Mismatch as m:
            first = next(i for i, (x, y) in enumerate(zip(m.got, m.want)) if x != y) if len(m.got) == len(m.want) else 0
            self.wrong_bytes(
                "the gateway", f, f"{desc} ({start}-{end})",
                f"byte {start + m.offset + first} differs (body offset {m.offset + first})",
                m.got,
            )
            return False
        except (OSError, http.client.HTTPException, ConnectionError) as e:
            with self.lock:
                self.bytes["gateway"] += got
            why = "timeout" if isinstance(e, socket.timeout) else "cut short" if got else type(e).__name__
            if not final:
                self.record_failure("gateway", why, f"{f.name} {desc}: {e} ({got} bytes, all correct)", f)
            else:
                self.final.setdefault("errors", []).append(f"gateway {f.name} {desc}: {why}: {e}")
            return False
        finally:
            conn.close()

    def gateway_loop(self, worker: int) -> None:
        rng = random.Random(f"{self.seed}-gateway-{worker}")
        while not self.stop.is_set():
            f = self.pick_file(rng)
            if f is None:
                self.stop.wait(1)
                continue
            self.gateway_read(f, rng)
            self.stop.wait(rng.uniform(0.2, 1.0) * self.args.read_pause)

    # -- chaos

    def disturbed_count(self) -> int:
        return sum(1 for n in self.nodes if n.disturbed)

    def event(self, node: Node, kind: str, secs: float | None = None) -> None:
        e = {"t": round(self.now(), 1), "wall": round(time.time(), 1), "node": node.index, "kind": kind}
        if secs is not None:
            e["secs"] = round(secs, 1)
        with self.lock:
            self.chaos_events.append(e)
            self.chaos_counts[kind] += 1
        with open(self.work / "chaos.log", "a") as log:
            log.write(json.dumps(e) + "\n")

    def chaos_step(self, rng: random.Random) -> None:
        """Starts one disturbance, if the limit allows."""
        if self.disturbed_count() >= self.args.max_disturbed:
            return
        candidates = [n for n in self.nodes if not n.disturbed]
        if not candidates:
            return
        node = rng.choice(candidates)
        weight = {"freeze": 3, "isolate": 3, "kill": 3, "restart": 2}
        kinds = [k for k in self.args.events if node.stable is False or k in ("freeze", "isolate")]
        if not kinds:
            return
        kind = rng.choices(kinds, [weight[k] for k in kinds])[0]
        # Most outages are shorter than the repair grace period (a restart, a hiccup);
        # some outlast it, so the other holders rebuild the node's columns elsewhere.
        lo, hi = self.args.long_outage if rng.random() < self.args.long_share else self.args.outage
        secs = rng.uniform(lo, hi)
        with self.lock:
            if kind == "kill":
                node.proc.kill()
                node.proc.wait()
                node.state = "killed"
                node.until = self.now() + secs
            elif kind == "freeze":
                node.proc.send_signal(signal.SIGSTOP)
                node.state = "frozen"
                node.until = self.now() + secs
            elif kind == "isolate":
                self.isolate(node)
                node.state = "isolated"
                node.until = self.now() + secs
            elif kind == "restart":
                node.proc.terminate()
                node.state = "stopping"
                node.until = self.now() + 30  # a clean stop may take this long
                secs = None
            node.since = self.now()
            self.max_disturbed_seen = max(self.max_disturbed_seen, self.disturbed_count())
        self.event(node, kind, secs)

    def chaos_recover(self, force: bool = False) -> None:
        """Ends the disturbances that are due (all of them with `force`)."""
        for node in self.nodes:
            t = self.now()
            if node.state == "frozen" and (force or t >= node.until):
                node.proc.send_signal(signal.SIGCONT)
                node.state, node.since = "up", t
                self.event(node, "continue")
            elif node.state == "isolated" and (force or t >= node.until):
                self.reconnect(node)
                node.state, node.since = "up", t
                self.event(node, "reconnect")
            elif node.state == "killed" and (force or t >= node.until):
                self.spawn_node(node)
                self.event(node, "start")
            elif node.state == "stopping":
                if node.proc.poll() is not None:
                    self.event(node, "stopped", round(t - node.since, 1))
                    self.spawn_node(node)
                    self.event(node, "start")
                elif t >= node.until:
                    self.fail(f"node {node.index} did not stop within 30 s of SIGTERM:\n{self.log_tail(node.log)}")
                    node.proc.kill()
                    node.proc.wait()
            elif node.state == "starting":
                if self.node_listening(node):
                    took = t - node.since
                    node.state, node.since = "up", t
                    self.event(node, "listening", took)
                elif node.proc.poll() is not None or t >= node.start_deadline:
                    node.restart_failures += 1
                    self.fail(f"node {node.index} (incarnation {node.incarnation}) did not start again (exit {node.proc.poll()}):\n{self.log_tail(node.log)}")
                    if node.proc.poll() is None:
                        node.proc.kill()
                        node.proc.wait()
                    if node.restart_failures < 5:
                        self.spawn_node(node)

    def chaos_loop(self) -> None:
        rng = random.Random(f"{self.seed}-chaos")
        next_event = self.now() + rng.uniform(0.5, 1.5) * self.args.chaos_every
        last = self.now()
        while not self.stop.is_set():
            with self.lock:
                t = self.now()
                self.disturbed_time[self.disturbed_count()] += t - last
                last = t
                self.chaos_recover()
                if self.now() >= next_event:
                    self.chaos_step(rng)
                    next_event = self.now() + rng.uniform(0.5, 1.5) * self.args.chaos_every
                self.max_disturbed_seen = max(self.max_disturbed_seen, self.disturbed_count())
                if self.disturbed_count() > self.args.max_disturbed:
                    self.fail(f"{self.disturbed_count()} nodes disturbed at once (limit {self.args.max_disturbed})")
            self.stop.wait(0.25)

    def heal(self) -> None:
        """Restarts, continues and reconnects every node, then waits until all listen."""
        deadline = time.monotonic() + 120
        with self.lock:
            self.chaos_recover(force=True)
        while time.monotonic() < deadline:
            with self.lock:
                self.chaos_recover(force=True)
                if not any(n.disturbed for n in self.nodes):
                    return
            time.sleep(0.25)
        raise SoakFailure("healing: nodes did not come back:\n" + self.node_states())

    # -- repairs, from the nodes' logs

    def disturbed_intervals(self) -> dict[int, list[tuple[float, float]]]:
        """Per node, wall-clock spans in which it was disturbed, plus two check
        intervals after (a check begun while cut off or frozen ends later)."""
        slack = 2 * parse_duration(self.args.check_interval)
        spans: dict[int, list[tuple[float, float]]] = defaultdict(list)
        open_at: dict[int, float] = {}
        for e in self.chaos_events:
            if e["kind"] in ("kill", "freeze", "isolate", "restart"):
                open_at.setdefault(e["node"], e["wall"])
            elif e["kind"] in ("continue", "reconnect", "listening") and e["node"] in open_at:
                spans[e["node"]].append((open_at.pop(e["node"]), e["wall"] + slack))
        for node, t in open_at.items():
            spans[node].append((t, float("inf")))
        return spans

    def repair_counts(self) -> dict:
        """Repairs and checks, from the nodes' logs (they survive restarts)."""
        spans = self.disturbed_intervals()
        out = {"repairs": 0, "columns_rebuilt": 0, "repairs_failed": 0, "store_announce_timeouts": 0,
               "below_k_checks_by_disturbed_nodes": 0, "below_k_checks_by_healthy_nodes": 0, "examples": []}
        stamp = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z")
        for n in self.nodes:
            try:
                lines = n.log.read_text(errors="replace").splitlines()
            except OSError:
                continue
            for line in lines:
                if m := re.search(r"rebuilt (\d+) of (\d+) missing columns", line):
                    out["repairs"] += 1
                    out["columns_rebuilt"] += int(m.group(1))
                elif "announce timed out" in line:
                    # A store answered before its blob was announced: until the next
                    # announce round, readers may not find that column.
                    out["store_announce_timeouts"] += 1
                elif "the repair failed" in line or "repair partly failed" in line:
                    out["repairs_failed"] += 1
                    if len(out["examples"]) < 6:
                        out["examples"].append(f"node{n.index}: {line[:300]}")
                elif "columns needed have a live holder" in line:
                    t = None
                    if m := stamp.match(line):
                        t = datetime.datetime.fromisoformat(m.group(1)).replace(tzinfo=datetime.timezone.utc).timestamp()
                    if t is not None and not any(a <= t <= b for a, b in spans.get(n.index, [])):
                        out["below_k_checks_by_healthy_nodes"] += 1
                        if len(out["examples"]) < 6:
                            out["examples"].append(f"node{n.index} (not disturbed): {line[:300]}")
                    else:
                        out["below_k_checks_by_disturbed_nodes"] += 1
        return out

    # -- the run

    def warm_up(self) -> int:
        """The edge-size and large files first, then a short calm period of reads."""
        n_first = 5 + len(self.args.large_mib)
        self.say(f"warm-up: {n_first} files (edge sizes, {self.args.large_mib} MiB), no chaos")
        for i in range(n_first):
            if self.put_one(i) is None:
                ex = self.stats["put"]["examples"]
                raise SoakFailure(f"a put failed before any chaos: {ex}")
        rng = random.Random(f"{self.seed}-warm")
        for f in list(self.files):
            if not self.get_one("getter0", f):
                raise SoakFailure(f"a get failed before any chaos: {dict(self.stats['get']['examples'])}")
            if not self.gateway_read(f, rng, whole=True):
                raise SoakFailure(f"a gateway read failed before any chaos: {dict(self.stats['gateway']['examples'])}")
        if self.args.inject_wrong_byte:
            # Checks the checker: the expected bytes of one file change, so the next
            # read of it must be reported as wrong bytes and fail the run.
            f = self.files[-1]
            data = bytearray(f.path.read_bytes())
            at = random.Random(self.seed).randrange(len(data))
            data[at] ^= 0x01
            f.path.write_bytes(bytes(data))
            f.sha256 = hashlib.sha256(data).hexdigest()
            self.say(f"--inject-wrong-byte: flipped byte {at} of the expected copy of {f.name}")
        for _ in range(3):
            self.sample_rss()
            time.sleep(1)
        with self.lock:
            for name, r in self.rss.items():
                self.warm_rss[name] = r["last"]
        return n_first

    def run(self) -> None:
        a = self.args
        self.say(f"seed {self.seed} (replay: --seed {self.seed}); {a.nodes} nodes, {a.stable_nodes} stable; duration {a.duration:.0f} s; at most {a.max_disturbed} nodes disturbed at once")
        self.setup()
        rss_thread = threading.Thread(target=self.rss_loop, daemon=True)
        rss_thread.start()
        self.phase = "warm-up"
        first = self.warm_up()
        self.phase = "chaos"
        self.say(f"chaos for {a.duration:.0f} s: a put every ~{a.put_every:.0f} s, {a.get_workers} get and {a.gateway_workers} gateway readers, a disturbance ({', '.join(a.events)}) every ~{a.chaos_every:.0f} s, lasting {a.outage[0]:.0f}-{a.outage[1]:.0f} s ({100 * (1 - a.long_share):.0f} %) or {a.long_outage[0]:.0f}-{a.long_outage[1]:.0f} s")
        chaos_start = self.now()
        g = self.guarded
        workers = [threading.Thread(target=g, args=(self.put_loop, first), name="put", daemon=True)]
        workers += [threading.Thread(target=g, args=(self.get_loop, w), name=f"get{w}", daemon=True) for w in range(a.get_workers)]
        workers += [threading.Thread(target=g, args=(self.gateway_loop, w), name=f"gw{w}", daemon=True) for w in range(a.gateway_workers)]
        workers.append(threading.Thread(target=g, args=(self.chaos_loop,), name="chaos", daemon=True))
        for w in workers:
            w.start()
        last_report = self.now()
        while self.now() - chaos_start < a.duration and not self.abort.is_set():
            time.sleep(1)
            if self.now() - last_report >= a.report_every:
                last_report = self.now()
                self.progress()
        self.stop.set()
        for w in workers:
            w.join()
        if self.abort.is_set():
            raise SoakFailure("stopped early (see above)")
        self.phase = "heal"
        self.say("chaos over; healing every node")
        self.heal()
        self.say(f"all nodes back; settling {a.settle:.0f} s")
        self.stop.clear()
        time.sleep(a.settle)
        self.wait_nodes(a.nodes, 120)
        self.phase = "verify"
        self.verify()
        self.sample_rss()
        self.stop.set()

    def progress(self) -> None:
        s = self.stats
        states = Counter(n.state for n in self.nodes)
        self.say(
            f"puts {s['put']['ok']}/{s['put']['attempted']}, gets {s['get']['ok']}/{s['get']['attempted']}, "
            f"gateway {s['gateway']['ok']}/{s['gateway']['attempted']}, chaos {sum(self.chaos_counts[k] for k in ('kill', 'freeze', 'isolate', 'restart'))}, "
            f"nodes {dict(states)}"
        )

    def verify(self) -> None:
        if self.args.strict_reads:
            rf = self.read_failure_analysis()
            bad = rf["with_at_most_max_disturbed_nodes_disturbed"]
            if bad:
                first = next(e for e in rf["log"] if e["disturbed"] <= self.args.max_disturbed)
                self.fail(f"--strict-reads: {bad} reads of readable files failed during the chaos (at most {self.args.max_disturbed} nodes disturbed); the first: {first}")
        files = list(self.files)
        self.say(f"final verification of {len(files)} acknowledged files: mosaic get, a whole gateway read, mosaic check")
        rng = random.Random(f"{self.seed}-final")
        v = {"files": len(files), "get_ok": 0, "gateway_ok": 0, "all_columns_live": 0, "lost": [], "flaky": [], "late": []}
        for f in files:
            ok_get = self.get_one("verifier", f, final=True)
            if self.abort.is_set():
                raise SoakFailure("wrong bytes (see above)")
            ok_gw = self.gateway_read(f, rng, whole=True, final=True)
            if self.abort.is_set():
                raise SoakFailure("wrong bytes (see above)")
            v["get_ok"] += ok_get
            v["gateway_ok"] += ok_gw
            if not (ok_get and ok_gw):
                # Not readable after healing. A file whose holders' announces did not
                # reach the DHT (their timeouts inflated by a node that froze: see
                # docs/performance.md, "Under chaos") is found after their next
                # announce round; lost is what is still unreadable after two rounds.
                a_interval = self.args.announce_interval
                waited, again = self.wait_readable(f, 2 * parse_duration(a_interval))
                if again:
                    v["flaky" if waited == 0 else "late"].append(f"{f.name} ({waited:.0f} s)")
                    self.say(f"after healing, {f.name} did not read back (get {'ok' if ok_get else 'failed'}, gateway {'ok' if ok_gw else 'failed'}); it did {waited:.0f} s later (announce interval {a_interval})")
                else:
                    v["lost"].append(f.name)
                    self.fail(f"after healing, {f.name} did not read back (get {'ok' if ok_get else 'failed'}, gateway {'ok' if ok_gw else 'failed'}), nor in {waited:.0f} s more (two announce intervals)")
            # `check` finds holders through the same announces, so it gets the same
            # two announce rounds as reads before a file counts as degraded.
            window = 2 * parse_duration(self.args.announce_interval)
            started, tries = time.monotonic(), 0
            while True:
                tries += 1
                rc, out, err = self.run_cli("verifier", ["--json", "check", f.cap], 120)
                live = self.columns_live(out)
                waited = time.monotonic() - started
                if (live is not None and live[0] == live[1]) or self.abort.is_set() or waited >= window:
                    break
                time.sleep(15)
            if live is not None and live[0] == live[1]:
                v["all_columns_live"] += 1
                v["column_copies"] = v.get("column_copies", 0) + live[2]
                if tries > 1:
                    v.setdefault("columns_late", []).append(f"{f.name} ({waited:.0f} s)")
            else:
                v.setdefault("degraded", []).append(f"{f.name}: (live, columns, copies) {live} (exit {rc}) {err.strip()[-200:]}")
        if v["all_columns_live"] < len(files):
            self.fail(f"after healing, {len(files) - v['all_columns_live']} files do not have all 5 columns on live nodes: {v.get('degraded', [])[:5]}")
        self.final.update(v)
        self.say(f"final: {v['get_ok']}/{len(files)} gets, {v['gateway_ok']}/{len(files)} gateway reads, {v['all_columns_live']}/{len(files)} with every column live")

    def wait_readable(self, f: SoakFile, window: float) -> tuple[float, bool]:
        """Polls `mosaic get` of `f` for up to `window` seconds: (seconds waited, read)."""
        started = time.monotonic()
        while True:
            waited = time.monotonic() - started
            if self.get_one("verifier", f, final=True):
                return waited, True
            if self.abort.is_set() or waited >= window:
                return waited, False
            time.sleep(15)

    @staticmethod
    def columns_live(out: str) -> tuple[int, int, int] | None:
        """From `mosaic check --json`: (columns with a live holder, columns, copies of
        columns on live nodes)."""
        try:
            v = json.loads(out)
            copies = sum(len(b["holders"]) for b in v["blobs"] if b["role"] != "manifest")
            return int(v["healthy"]), int(v["columns"]), copies
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            return None

    # -- summary

    def read_failure_analysis(self) -> dict:
        """Read failures during the chaos, against what the code promises: a file reads
        while at most m = 2 of its holders are down, and never more than 2 nodes were
        disturbed, so every one of them is a read the data allowed."""
        reads = [e for e in self.failure_log if e["op"] in ("get", "gateway")]
        window = parse_duration(self.args.announce_interval)
        return {
            "total": len(reads),
            "with_at_most_max_disturbed_nodes_disturbed": sum(1 for e in reads if e["disturbed"] <= self.args.max_disturbed),
            "of_files_put_within_one_announce_interval": sum(1 for e in reads if e["since_put_s"] is not None and e["since_put_s"] <= window),
            "files": len({e["file"] for e in reads}),
            "log": reads,
        }

    def summary(self, ok: bool) -> dict:
        rss_rows = {}
        bound_fail = []
        for name, r in sorted(self.rss.items(), key=lambda kv: (kv[0] != "gateway", kv[0])):
            warm = self.warm_rss.get(name, r["first"])
            end = r.get("last", 0)
            bound = RSS_FACTOR * warm + RSS_SLACK
            # A restarted node's last process is compared with the bound of its first.
            rss_rows[name] = {
                "first": r["first"], "after_warmup": warm, "peak": r["peak"], "end": end,
                "bound": bound, "processes": len(r["incarnations"]),
                "end_process_age_s": round(self.now() - min((t for t, _, inc in r["samples"] if inc == r["last_incarnation"]), default=0), 1),
            }
            if end > bound:
                bound_fail.append(f"{name}: RSS at the end {fmt_bytes(end)} > {RSS_FACTOR} x {fmt_bytes(warm)} + {fmt_bytes(RSS_SLACK)}")
        if self.phase == "done" or ok:
            for b in bound_fail:
                self.fail(b)
        kinds = {}
        for kind in ("node", "gateway"):
            rows = [v for k, v in rss_rows.items() if k.startswith(kind)]
            if rows:
                kinds[kind] = {
                    "after_warmup_max": max(v["after_warmup"] for v in rows),
                    "peak_max": max(v["peak"] for v in rows),
                    "end_max": max(v["end"] for v in rows),
                    "end_over_warmup_max": round(max(v["end"] / max(1, v["after_warmup"]) for v in rows), 2),
                }
        stable_nodes = [f"node{n.index}" for n in self.nodes if n.stable]
        long_lived = [k for k, v in rss_rows.items() if k.startswith("node") and v["processes"] == 1]
        if long_lived:
            kinds["node_never_restarted"] = {
                "count": len(long_lived),
                "after_warmup_max": max(rss_rows[k]["after_warmup"] for k in long_lived),
                "peak_max": max(rss_rows[k]["peak"] for k in long_lived),
                "end_max": max(rss_rows[k]["end"] for k in long_lived),
                "end_over_warmup_max": round(max(rss_rows[k]["end"] / max(1, rss_rows[k]["after_warmup"]) for k in long_lived), 2),
            }
        cpu = defaultdict(int)
        for pid, ticks in self.cpu_ticks.items():
            kind = self.pid_kind.get(pid, "?")
            cpu["gateway" if kind == "gateway" else "nodes"] += ticks
        hz = os.sysconf("SC_CLK_TCK")
        stats = {
            k: {
                "attempted": v["attempted"], "ok": v["ok"], "failed": sum(v["failures"].values()),
                "cut_off_by_teardown": v["attempted"] - v["ok"] - sum(v["failures"].values()),
                "failures": dict(v["failures"]), "examples": v["examples"],
                "seconds_ok": percentiles(v["seconds"]),
            }
            for k, v in self.stats.items()
        }
        try:
            with open(self.work / "rss.csv", "w") as csv:
                csv.write("process,seconds,rss_bytes,incarnation\n")
                for name, r in sorted(self.rss.items()):
                    for t, rss, inc in r["samples"]:
                        csv.write(f"{name},{t},{rss},{inc}\n")
        except OSError:
            pass
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu["all processes (nodes, gateway, CLI runs)"] = int((ru.ru_utime + ru.ru_stime) * hz)
        return {
            "result": "pass" if ok and not self.failures else "fail",
            "seed": self.seed,
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "settings": {
                "nodes": self.args.nodes, "stable_nodes": len(stable_nodes), "max_disturbed": self.args.max_disturbed,
                "duration_s": self.args.duration, "put_every_s": self.args.put_every, "get_workers": self.args.get_workers,
                "gateway_workers": self.args.gateway_workers, "chaos_every_s": self.args.chaos_every,
                "outage_s": list(self.args.outage), "long_outage_s": list(self.args.long_outage), "long_share": self.args.long_share, "check_interval": self.args.check_interval,
                "repair_grace": self.args.repair_grace, "repair_backoff": self.args.repair_backoff,
                "announce_interval": self.args.announce_interval, "settle_s": self.args.settle,
                "large_mib": self.args.large_mib, "coding": "3-of-5 (default)", "events": self.args.events,
            },
            "elapsed_s": round(self.now(), 1),
            "ops": stats,
            "bytes": {"put": self.bytes["put"], "get": self.bytes["get"], "gateway": self.bytes["gateway"]},
            "chaos": {
                "events": dict(self.chaos_counts),
                "max_disturbed_seen": self.max_disturbed_seen,
                "seconds_with_n_disturbed": {str(k): round(v, 1) for k, v in sorted(self.disturbed_time.items())},
                "isolation_packets_dropped": self.isolation_drops,
                "log": self.chaos_events,
            },
            "read_failures": self.read_failure_analysis(),
            "repair": self.repair_counts(),
            "rss": {"by_kind": kinds, "by_process": rss_rows, "bound": f"{RSS_FACTOR} x after warm-up + {RSS_SLACK // MIB} MiB"},
            "cpu_s": {k: round(v / hz, 1) for k, v in cpu.items()},
            "final": self.final,
            "failures": self.failures,
        }

    def print_summary(self, s: dict) -> None:
        p = lambda *x: print(*x, flush=True)  # noqa: E731
        p("")
        p(f"=== soak summary: {s['result'].upper()} (seed {s['seed']}, {s['settings']['nodes']} nodes, {s['settings']['duration_s']:.0f} s of chaos, {s['elapsed_s']:.0f} s in all)")
        p(f"{'operation':<10} {'attempted':>9} {'ok':>7} {'failed':>7}  {'seconds p50/p95/max':<20} failures by kind")
        for k, v in s["ops"].items():
            kinds = ", ".join(f"{w}: {n}" for w, n in sorted(v["failures"].items())) or "-"
            lat = v["seconds_ok"]
            lat = f"{lat['p50']}/{lat['p95']}/{lat['max']}" if lat else "-"
            p(f"{k:<10} {v['attempted']:>9} {v['ok']:>7} {v['failed']:>7}  {lat:<20} {kinds}")
        b = s["bytes"]
        p(f"bytes      put {fmt_bytes(b['put'])}, got by mosaic get {fmt_bytes(b['get'])}, by the gateway {fmt_bytes(b['gateway'])}")
        ev = s["chaos"]["events"]
        p("chaos      " + ", ".join(f"{k} {ev.get(k, 0)}" for k in ("kill", "freeze", "isolate", "restart")) + f"; at most {s['chaos']['max_disturbed_seen']} nodes disturbed at once; {s['chaos']['isolation_packets_dropped']} packets dropped by isolation")
        share = s["chaos"]["seconds_with_n_disturbed"]
        total = sum(share.values()) or 1
        p("           time with 0/1/2 nodes disturbed: " + " / ".join(f"{100 * share.get(str(k), 0) / total:.0f} %" for k in range(self.args.max_disturbed + 1)))
        rf = s["read_failures"]
        if rf["total"]:
            p(f"           failed reads: {rf['total']} (of {rf['files']} files), {rf['with_at_most_max_disturbed_nodes_disturbed']} of them with at most {self.args.max_disturbed} nodes disturbed (what the code survives); {rf['of_files_put_within_one_announce_interval']} of files put less than one announce interval ({self.args.announce_interval}) before")
        r = s["repair"]
        p(f"repair     {r['repairs']} repairs rebuilt {r['columns_rebuilt']} columns; {r['repairs_failed']} failed; checks that saw a file below k: {r['below_k_checks_by_disturbed_nodes']} by nodes cut off or just back, {r['below_k_checks_by_healthy_nodes']} by healthy nodes")
        p(f"announce   {r['store_announce_timeouts']} stores answered before their blob was announced (\"announce timed out, will retry\" in the nodes' logs)")
        p(f"{'RSS':<22} {'after warm-up':>13} {'peak':>10} {'end':>10}   (max over processes; bound {s['rss']['bound']})")
        for k, v in s["rss"]["by_kind"].items():
            label = k if k != "node_never_restarted" else f"node, never restarted ({v['count']})"
            p(f"{label:<22} {fmt_bytes(v['after_warmup_max']):>13} {fmt_bytes(v['peak_max']):>10} {fmt_bytes(v['end_max']):>10}   end/after warm-up <= {v['end_over_warmup_max']}")
        p(f"cpu        " + ", ".join(f"{k} {v} s" for k, v in s["cpu_s"].items()))
        fv = s["final"]
        if fv.get("files") is not None:
            p(f"final      {fv['files']} acknowledged files: {fv['get_ok']} read back by mosaic get, {fv['gateway_ok']} by the gateway, {fv['all_columns_live']} with all 5 columns live; lost {len(fv['lost'])}, flaky {len(fv['flaky'])}, late {fv.get('late', [])}")
        else:
            p("final      not reached")
        for f in s["failures"]:
            p(f"FAILURE    {f.splitlines()[0]}")
        p(f"result     {s['result'].upper()}")

    # -- cleanup

    def cleanup(self) -> None:
        self.stop.set()
        with self.lock:
            self.closing = True
            procs = list(self.children)
            for n in self.nodes:
                if n.state == "isolated":
                    try:
                        self.reconnect(n)
                    except Exception:  # noqa: BLE001 (the chain is removed below anyway)
                        pass
        for p in procs:
            try:
                p.kill()
            except OSError:
                pass
        for n in self.nodes:
            if n.proc and n.proc.poll() is None:
                try:
                    n.proc.send_signal(signal.SIGCONT)
                    n.proc.kill()
                    n.proc.wait(10)
                except (OSError, subprocess.TimeoutExpired):
                    pass
        if self.gateway and self.gateway.poll() is None:
            self.gateway.kill()
            try:
                self.gateway.wait(10)
            except subprocess.TimeoutExpired:
                pass
        try:
            self.remove_iptables()
        except Exception as e:  # noqa: BLE001 (cleanup must go on)
            print(f"removing the iptables chain {self.chain}: {e}", file=sys.stderr)


class _Closing(Exception):
    """The run is being torn down: a worker stops without counting anything."""


class _Mismatch(Exception):
    def __init__(self, offset: int, got: bytes, want: bytes):
        super().__init__(offset)
        self.offset, self.got, self.want = offset, got, want


def main() -> int:
    env = os.environ.get
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=parse_duration, default=parse_duration(env("MOSAIC_SOAK_DURATION", "30m")), help="chaos phase length (default 30m; CI: 3m)")
    ap.add_argument("--strict-reads", action="store_true", default=env("MOSAIC_SOAK_STRICT_READS", "") == "1", help="fail the run on any failed read of a readable file during the chaos, not only on a lost file")
    ap.add_argument("--seed", type=int, default=int(env("MOSAIC_SOAK_SEED", "0")) or random.SystemRandom().randrange(1, 1 << 31))
    ap.add_argument("--nodes", type=int, default=int(env("MOSAIC_SOAK_NODES", "20")))
    ap.add_argument("--stable-nodes", type=int, default=None, help="nodes only frozen or cut off, never restarted (default nodes/4)")
    ap.add_argument("--max-disturbed", type=int, default=PARITY, help=f"nodes disturbed at once (at most {PARITY}: the code's m)")
    ap.add_argument("--bin", default=env("MOSAIC_BIN", str(Path(__file__).resolve().parent.parent / "target" / "debug" / "mosaic")))
    ap.add_argument("--base-port", type=int, default=int(env("MOSAIC_SOAK_PORT", "17000")))
    ap.add_argument("--json", default=env("MOSAIC_SOAK_JSON"), help="write the summary here")
    ap.add_argument("--work-dir", default=None, help="default: a new temporary directory")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (always kept on failure)")
    ap.add_argument("--put-every", type=parse_duration, default=5.0)
    ap.add_argument("--get-workers", type=int, default=2)
    ap.add_argument("--gateway-workers", type=int, default=2)
    ap.add_argument("--read-pause", type=parse_duration, default=1.0)
    ap.add_argument("--chaos-every", type=parse_duration, default=10.0)
    ap.add_argument("--outage", default="3,25", help="MIN,MAX seconds a short disturbance lasts")
    ap.add_argument("--long-outage", default="40,90", help="MIN,MAX seconds a long one lasts (longer than the repair grace)")
    ap.add_argument("--long-share", type=float, default=0.25, help="the share of long disturbances")
    ap.add_argument("--large-mib", default="16,32", help="sizes of the large files put at warm-up, MiB")
    ap.add_argument("--check-interval", default="20s")
    ap.add_argument("--repair-grace", default="30s")
    ap.add_argument("--repair-backoff", default="20s")
    ap.add_argument("--announce-interval", default="60s")
    ap.add_argument("--settle", type=parse_duration, default=60.0)
    ap.add_argument("--put-timeout", type=parse_duration, default=180.0)
    ap.add_argument("--get-timeout", type=parse_duration, default=120.0)
    ap.add_argument("--gateway-timeout", type=parse_duration, default=60.0)
    ap.add_argument("--slow-put", type=parse_duration, default=15.0, help="keep the --timings of puts slower than this (work dir, slow-puts/)")
    ap.add_argument("--rss-every", type=parse_duration, default=5.0)
    ap.add_argument("--report-every", type=parse_duration, default=30.0)
    ap.add_argument("--no-isolate", action="store_true", help="no network isolation (no root)")
    ap.add_argument("--events", default="kill,freeze,isolate,restart", help="the kinds of disturbance to use")
    ap.add_argument("--inject-wrong-byte", action="store_true", help="test the test: change the expected bytes of one file, so the run must fail")
    args = ap.parse_args()
    args.outage = tuple(float(x) for x in args.outage.split(","))
    args.long_outage = tuple(float(x) for x in args.long_outage.split(","))
    args.events = [e.strip() for e in args.events.split(",") if e.strip()]
    if bad := set(args.events) - {"kill", "freeze", "isolate", "restart"}:
        ap.error(f"--events: unknown {sorted(bad)} (kill, freeze, isolate, restart)")
    if args.no_isolate and "isolate" in args.events:
        args.events.remove("isolate")
    args.large_mib = [int(x) for x in args.large_mib.split(",") if x.strip()]
    if args.stable_nodes is None:
        args.stable_nodes = args.nodes // 4
    if args.max_disturbed > PARITY:
        ap.error(f"--max-disturbed {args.max_disturbed}: the 3-of-5 code survives {PARITY} missing columns, no more")
    if args.nodes < 5 + args.max_disturbed:
        ap.error("--nodes must leave 5 undisturbed nodes for puts")
    if args.nodes > 100:
        ap.error("--nodes is at most 100 (ports BASE+i and BASE+100+i)")
    if "isolate" in args.events and os.geteuid() != 0:
        ap.error("network isolation needs root (iptables); run as root or with --no-isolate")

    soak = Soak(args)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    # SIGINT too: a shell's background job starts with it ignored, and Python then
    # installs no KeyboardInterrupt for it.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    ok = False
    try:
        soak.run()
        soak.phase = "done"
        ok = True
    except SoakFailure as e:
        soak.fail(str(e))
    except KeyboardInterrupt as e:
        soak.fail(f"interrupted ({e or 'Ctrl-C'})")
    except Exception:  # noqa: BLE001 (a bug in the soak itself still cleans up)
        soak.fail("the soak script crashed:\n" + traceback.format_exc())
    finally:
        soak.cleanup()
    summary = soak.summary(ok)
    soak.print_summary(summary)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2, default=str) + "\n")
        print(f"summary written to {args.json}")
    (soak.work / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    if summary["result"] == "pass" and not args.keep:
        shutil.rmtree(soak.work, ignore_errors=True)
    else:
        print(f"work dir kept: {soak.work} (node logs, chaos.log, summary.json)")
    return 0 if summary["result"] == "pass" else 1


if __name__ == "__main__":
    sys.exit(main())
