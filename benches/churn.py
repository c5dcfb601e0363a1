#!/usr/bin/env python3
"""Churn benchmark: reads and writes phase by phase while nodes are dead, frozen, resumed.

20 storage nodes (real `mosaic node run` processes on 127.0.0.1, a private DHT) and a
gateway, started by tests/soak.py's cluster code (imported, not copied). Files are 1 MiB,
private, 3-of-5 (the defaults). Every operation is sequential, so its time is its own:
`mosaic get` (SHA-256 checked), a whole-file gateway read (compared as it streams) and
`mosaic --json put` (which names the file's 5 holders). Phases, each a fixed number of
operations interleaved evenly (`--gets`, `--gateway-reads`, `--puts`):

  1. healthy   all nodes up, after a pool of files was put (the cluster settled).
  2. dead      2 nodes SIGKILLed: the pair that holds columns of the most pool files
               together. Half the reads are of files both of them hold.
  3. frozen    the 2 dead nodes restarted (same data dir; waited until they listen),
               2 other nodes SIGSTOPped, again the pair holding the most files together;
               half the reads are of files both hold.
  4. resumed   the frozen pair continued; a fifth node (the one holding the most files)
               frozen for `--freeze` seconds (60), then continued; the operations run in
               the `--resume-window` seconds (20) right after, half the reads of files
               the resumed node holds.
  5. mixed     the dead pair killed again, the frozen pair frozen again, and the node of
               phase 4 resumed moments before (phase 4's operations and its 15 s of
               DHT samples lie between, about 16-25 s):
               2 dead + 2 frozen + 1 just resumed. Reads only of files with at most 2
               holders dead or frozen (so >= k = 3 live columns), half of them exactly 2.

Nodes 0-2 (everyone's bootstrap nodes) are never disturbed. Repair is off in effect (the
node defaults: checks every 30 min, grace 1 h), so reads meet the missing holders; the
gateway keeps no segment cache (`--cache-size 0`), so each of its reads goes to the
nodes; clients use the CLI's default connect timeout (5 s) unless `--connect-timeout`.

Per phase: gets and gateway reads ok / tried, get p50 / p99 (all gets, and the gets of
files with 2 holders out), put ok / tried and p50 / p99 (seconds, successful operations),
and the DHT request timeout each live node reports (`mosaic_dht_request_timeout_seconds`
on its `--metrics` endpoint, scraped every second: the phase's maximum, and the median
over nodes at its end; "n/a" when no node exports it). After the resume of phase 4, the
seconds until every live node's value is <= 1 s (sampled every second for `--resume-sample`
seconds). Failed operations are counted and tallied by their error's first line (a
benchmark: not fatal); a wrong byte is fatal (exit 1 at once). Phases whose operations
outrun `--phase-budget` seconds (60; 20 after the resume) stop trying, once each kind
was tried (the table says how many were).

The end: one markdown table (for docs/performance.md), the issue's targets beside the
figures (not asserted), and `--json PATH` writes it all.

  benches/churn.sh                  # default: 5-6 minutes
  benches/churn.sh --quick          # CI: about 2 minutes (3 if operations take 10-20 s)
  MOSAIC_BIN=/path/to/mosaic benches/churn.sh --json out.json

Ports on 127.0.0.1: QUIC BASE+i, DHT BASE+100+i, gateway HTTP BASE+200, metrics HTTP
BASE+300+i (BASE 19000 by default: tests/soak.sh uses 17000).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import http.client
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from itertools import combinations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import soak  # noqa: E402  (tests/soak.py: the cluster, the reads and their checks)

MIB = soak.MIB
K = 3  # the default code's data columns
PARITY = soak.PARITY  # and the columns it may lose
METRIC = re.compile(r"^(mosaic_(?:node_)?dht_request_timeout_seconds)(?:\{[^}]*\})?\s+(\S+)", re.M)
THRESHOLD = 1.0  # the target: every node's DHT request timeout back <= 1 s
HEX_ID = re.compile(r"\b[0-9a-z]{20,}\b")


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1); None for no values."""
    if not values:
        return None
    v = sorted(values)
    return v[max(0, min(len(v) - 1, math.ceil(q * len(v)) - 1))]


def fmt_s(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def first_error_line(stdout: str, stderr: str) -> str:
    """The first line of a CLI error: `error: …` on stderr, or the JSON error on stdout."""
    for line in stderr.splitlines():
        if line.startswith("error: "):
            return line[len("error: "):].strip()
    try:
        v = json.loads(stdout)
        if isinstance(v, dict) and v.get("error"):
            return str(v["error"]).splitlines()[0]
    except (json.JSONDecodeError, ValueError):
        pass
    lines = [l.strip() for l in stderr.splitlines() if l.strip()]
    return lines[-1] if lines else "(no error text)"


def tally_key(text: str) -> str:
    """An error line made comparable across files and nodes: long ids elided."""
    return HEX_ID.sub("…", text)[:160]


def binary_label(binary: Path) -> str:
    """The commit of the tree a binary in TREE/target/PROFILE/ was built from (its
    uncommitted changes noted), and when it was built."""
    binary = binary.resolve()
    try:
        built = time.strftime("%Y-%m-%d %H:%M", time.localtime(binary.stat().st_mtime))
    except OSError:
        return str(binary)
    tree = binary.parent.parent.parent
    try:
        head = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "-uno"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return f"built {built}"
    if head.returncode != 0:
        return f"built {built}"
    return f"{head.stdout.strip()}{' + uncommitted changes' if dirty.stdout.strip() else ''}, built {built}"


class Churn(soak.Soak):
    """tests/soak.py's cluster, with each node's metrics served, and the benchmark's phases."""

    gateway_cache_size = "0"

    def __init__(self, args: argparse.Namespace):
        super().__init__(args)
        self.metrics_base = args.base_port + 300
        self.ids: dict[str, int] = {}  # node id -> index
        self.holders: dict[str, set[int]] = {}  # file name -> node indices
        self.next_index = 0
        self.last_cli: tuple[str, str] = ("", "")
        self.samples: list[tuple[float, dict[int, float]]] = []
        self.metric_name: str | None = None
        self.metric_seen = threading.Event()
        self.sampler_stop = threading.Event()
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=8)
        self.phases: list[dict] = []
        self.roles: dict = {}
        self.events: list[dict] = []
        self.resume: dict = {}

    # -- the cluster, as soak.py starts it, plus each node's metrics endpoint

    def node_args(self, node: soak.Node) -> list[str]:
        return super().node_args(node) + ["--metrics", f"127.0.0.1:{self.metrics_base + node.index}"]

    def env(self, who: str) -> dict[str, str]:
        env = super().env(who)
        if self.args.connect_timeout:
            env["MOSAIC_CONNECT_TIMEOUT"] = self.args.connect_timeout
        else:
            env.pop("MOSAIC_CONNECT_TIMEOUT", None)  # the CLI's own default
        return env

    def check_ports(self) -> None:
        super().check_ports()
        taken = []
        for i in range(self.args.nodes):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", self.metrics_base + i))
            except OSError:
                taken.append(f"tcp/{self.metrics_base + i}")
            finally:
                s.close()
        if taken:
            raise soak.SoakFailure(f"ports taken (another run? use --base-port): {', '.join(taken[:8])}")

    def run_cli(self, who: str, args: list[str], timeout: float):
        rc, out, err = super().run_cli(who, args, timeout)
        self.last_cli = (out, err)
        return rc, out, err

    def record_failure(self, kind: str, why: str, detail: str, f=None) -> None:
        # soak.py tallies by exit code or status; here by the error's first line too.
        if kind == "gateway":
            text = detail.split(": ", 1)[1] if ": " in detail else detail
            text = text.strip().splitlines()[0] if text.strip() else ""
        else:
            text = first_error_line(*self.last_cli)
        super().record_failure(kind, tally_key(f"{why}: {text}" if text else why), detail, f)

    def learn_ids(self) -> None:
        for n in self.nodes:
            m = re.search(r"mosaic node (\S+) listening on", n.log.read_text(errors="replace"))
            if m:
                self.ids[m.group(1)] = n.index
        if len(self.ids) < len(self.nodes):
            self.say(f"warning: only {len(self.ids)} of {len(self.nodes)} node ids found in the logs")

    # -- the DHT request timeout each node reports

    def scrape(self, node: soak.Node) -> float | None:
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.metrics_base + node.index, timeout=2)
            c.request("GET", "/metrics")
            text = c.getresponse().read().decode(errors="replace")
            c.close()
        except (OSError, http.client.HTTPException):
            return None
        values = [(m.group(1), float(m.group(2))) for m in METRIC.finditer(text) if m.group(2) not in ("NaN",)]
        if not values:
            return None
        if self.metric_name is None:
            self.metric_name = values[0][0]
            self.metric_seen.set()
        return max(v for _, v in values)  # labelled series: the node's largest

    def sample(self) -> dict[int, float]:
        live = [n for n in self.nodes if n.state == "up"]
        got = dict(zip([n.index for n in live], self.pool.map(self.scrape, live)))
        values = {i: v for i, v in got.items() if v is not None}
        self.samples.append((self.now(), values))
        return values

    def sampler_loop(self) -> None:
        while not self.sampler_stop.is_set():
            started = time.monotonic()
            try:
                self.sample()
            except Exception:  # noqa: BLE001 (a benchmark's sampler must not end the run)
                pass
            self.sampler_stop.wait(max(0.05, 1.0 - (time.monotonic() - started)))

    def dht_between(self, t0: float, t1: float) -> dict:
        rows = [(t, v) for t, v in self.samples if t0 <= t <= t1 and v]
        if not rows:
            return {"max": None, "median_end": None, "samples": 0}
        last = rows[-1][1]
        return {
            "max": round(max(max(v.values()) for _, v in rows), 3),
            "median_end": round(statistics.median(last.values()), 3),
            "max_end": round(max(last.values()), 3),
            "nodes_end": len(last),
            "samples": len(rows),
        }

    # -- files and operations

    def new_file(self, index: int) -> soak.SoakFile:
        size = int(self.args.file_mib * MIB)
        name = f"churn-{self.seed}-{index:04d}.bin"
        path = self.work / "files" / name
        data = random.Random(f"{self.seed}-data-{index}").randbytes(size)
        path.write_bytes(data)
        return soak.SoakFile(index, name, size, False, None, path, hashlib.sha256(data).hexdigest())

    def put_new(self, count: bool = True) -> tuple[soak.SoakFile | None, float]:
        """`mosaic --json put` of a new file; (the file if acknowledged, seconds)."""
        f = self.new_file(self.next_index)
        self.next_index += 1
        if count:
            self.stats["put"]["attempted"] += 1
        started = time.monotonic()
        rc, out, err = self.run_cli("putter", ["--json", "put", str(f.path), "--name", f.name], self.args.put_timeout)
        took = time.monotonic() - started
        v = None
        try:
            v = json.loads(out)
        except (json.JSONDecodeError, ValueError):
            pass
        if rc == 0 and isinstance(v, dict) and str(v.get("cap", "")).startswith("mr1"):
            f.cap = v["cap"]
            f.put_at = self.now()
            self.holders[f.name] = {self.ids[n] for n in v.get("nodes", []) if n in self.ids}
            self.files.append(f)
            if count:
                self.stats["put"]["ok"] += 1
                self.stats["put"]["seconds"].append(took)
            return f, took
        why = "timeout" if rc is None else f"exit {rc}" if rc != 0 else "no cap printed"
        if count:
            self.record_failure("put", why, f"{f.name}: {first_error_line(out, err)}")
        else:
            self.say(f"pool put failed ({why}): {first_error_line(out, err)}")
        return None, took

    def out_count(self, f: soak.SoakFile, out: set[int]) -> int:
        return len(self.holders.get(f.name, set()) & out)

    def reset_stats(self) -> None:
        self.stats = {
            kind: {"attempted": 0, "ok": 0, "failures": Counter(), "examples": {}, "seconds": []}
            for kind in ("put", "get", "gateway")
        }

    # -- node disturbances

    def event(self, node: soak.Node, kind: str, secs: float | None = None) -> None:
        super().event(node, kind, secs)
        self.say(f"node{node.index} {kind}")

    def kill(self, node: soak.Node) -> None:
        node.proc.kill()
        node.proc.wait()
        node.state, node.since = "killed", self.now()
        self.event(node, "kill")

    def restart(self, node: soak.Node) -> None:
        started = self.now()
        self.spawn_node(node)
        self.wait_started(node)
        self.event(node, "listening", self.now() - started)

    def freeze(self, node: soak.Node) -> None:
        node.proc.send_signal(signal.SIGSTOP)
        node.state, node.since = "frozen", self.now()
        self.event(node, "freeze")

    def resume_node(self, node: soak.Node) -> None:
        node.proc.send_signal(signal.SIGCONT)
        node.state, node.since = "up", self.now()
        self.event(node, "continue")

    # -- the phases

    def choose_roles(self) -> None:
        """The dead pair, the frozen pair and the resumed node, from the pool's holders:
        the pairs that hold the most files together, the node that holds the most."""
        rng = random.Random(f"{self.seed}-roles")
        cands = [n.index for n in self.nodes if n.index >= 3]
        pairs = Counter()
        single = Counter()
        for h in self.holders.values():
            for i in h:
                single[i] += 1
            for a, b in combinations(sorted(h), 2):
                if a in cands and b in cands:
                    pairs[(a, b)] += 1

        def best_pair(exclude: set[int]) -> tuple[int, int]:
            options = [(c, rng.random(), p) for p, c in pairs.items() if not set(p) & exclude]
            if not options:
                free = [i for i in cands if i not in exclude]
                return tuple(rng.sample(free, 2))  # type: ignore[return-value]
            return max(options)[2]

        dead = best_pair(set())
        frozen = best_pair(set(dead))
        rest = [i for i in cands if i not in dead and i not in frozen]
        resumed = max(rest, key=lambda i: (single[i], rng.random()))
        self.roles = {
            "dead": list(dead), "frozen": list(frozen), "resumed": resumed,
            "pool_files_held_by_both_dead": pairs[dead], "pool_files_held_by_both_frozen": pairs[frozen],
            "pool_files_held_by_resumed": single[resumed],
        }
        self.say(
            f"roles: dead node{dead[0]} + node{dead[1]} (both hold {pairs[dead]} pool files), "
            f"frozen node{frozen[0]} + node{frozen[1]} (both hold {pairs[frozen]}), "
            f"resumed node{resumed} (holds {single[resumed]})"
        )

    def picker(self, stream: str, out: set[int], focus) -> callable:
        """Chooses the files to read: even reads from `focus` files (cycled), odd reads
        from the others; never a file with more than m holders out."""
        rng = random.Random(f"{self.seed}-{stream}")
        readable = [f for f in self.files if f.cap and self.out_count(f, out) <= PARITY]
        focused = [f for f in readable if focus(f)]
        rng.shuffle(focused)
        others = [f for f in readable if not focus(f)] or readable
        state = {"i": 0}

        def pick() -> soak.SoakFile:
            i = state["i"]
            state["i"] += 1
            if focused and i % 2 == 0:
                return focused[(i // 2) % len(focused)]
            return rng.choice(others)

        pick.focused = len(focused)  # type: ignore[attr-defined]
        return pick

    def run_phase(self, name: str, situation: str, out: set[int], focus, focus_text: str, budget: float, t_disturbed: float | None = None) -> dict:
        a = self.args
        self.reset_stats()
        started_t = self.now()
        started = time.monotonic()
        gets = self.picker(f"{name}-get", out, focus)
        gws = self.picker(f"{name}-gw", out, focus)
        gw_rng = random.Random(f"{self.seed}-{name}-range")
        # Spread evenly, one of each kind first: a phase cut short by its budget still
        # has each kind tried, in the proportions asked.
        ops = sorted(
            [(i / n, o, kind) for o, (kind, n) in enumerate((("get", a.gets), ("gateway", a.gateway_reads), ("put", a.puts))) for i in range(n)]
        )
        self.say(f"phase {name}: {situation}; {a.gets} gets, {a.gateway_reads} gateway reads, {a.puts} puts"
                 + (f"; half the reads of the {getattr(gets, 'focused', 0)} files {focus_text}" if focus_text else ""))
        lat = {"get_2out": [], "gateway_2out": []}
        out_hist = Counter()
        skipped = Counter()
        for rank, _, kind in ops:
            if rank > 0 and time.monotonic() - started > budget:
                skipped[kind] += 1
                continue
            if kind == "put":
                self.put_new()
                continue
            f = (gets if kind == "get" else gws)()
            n_out = self.out_count(f, out)
            out_hist[n_out] += 1
            before = len(self.stats[kind]["seconds"])
            if kind == "get":
                ok = self.get_one("getter", f)
            else:
                ok = self.gateway_read(f, gw_rng, whole=True)
            if self.abort.is_set():
                raise soak.SoakFailure("wrong bytes (see above)")
            if ok and n_out >= 2 and len(self.stats[kind]["seconds"]) > before:
                lat[f"{kind}_2out"].append(self.stats[kind]["seconds"][-1])
        ended_t = self.now()
        # The DHT timeout over the phase (from its disturbance on, when given).
        dht = self.dht_between(t_disturbed if t_disturbed is not None else started_t, ended_t)
        s = self.stats
        r = {
            "phase": name,
            "situation": situation,
            "seconds": round(ended_t - started_t, 1),
            "budget_s": budget,
            "skipped_over_budget": dict(skipped),
            "reads_by_holders_out": {str(k): v for k, v in sorted(out_hist.items())},
            "get": {"ok": s["get"]["ok"], "tried": s["get"]["attempted"], "p50": pct(s["get"]["seconds"], 0.5), "p99": pct(s["get"]["seconds"], 0.99),
                    "ok_2out": len(lat["get_2out"]), "p50_2out": pct(lat["get_2out"], 0.5), "p99_2out": pct(lat["get_2out"], 0.99),
                    "failures": dict(s["get"]["failures"]), "examples": s["get"]["examples"]},
            "gateway": {"ok": s["gateway"]["ok"], "tried": s["gateway"]["attempted"], "p50": pct(s["gateway"]["seconds"], 0.5), "p99": pct(s["gateway"]["seconds"], 0.99),
                        "p99_2out": pct(lat["gateway_2out"], 0.99),
                        "failures": dict(s["gateway"]["failures"]), "examples": s["gateway"]["examples"]},
            "put": {"ok": s["put"]["ok"], "tried": s["put"]["attempted"], "p50": pct(s["put"]["seconds"], 0.5), "p99": pct(s["put"]["seconds"], 0.99),
                    "failures": dict(s["put"]["failures"]), "examples": s["put"]["examples"]},
            "dht_timeout_s": dht,
        }
        for k in ("get", "gateway", "put"):
            for key in ("p50", "p99", "p50_2out", "p99_2out"):
                if r[k].get(key) is not None:
                    r[k][key] = round(r[k][key], 3)
        self.phases.append(r)
        self.print_phase(r)
        return r

    def print_phase(self, r: dict) -> None:
        g, w, p, d = r["get"], r["gateway"], r["put"], r["dht_timeout_s"]
        self.say(f"phase {r['phase']} done in {r['seconds']:.0f} s ({r['situation']})")
        print(f"    gets            {g['ok']}/{g['tried']} ok; p50 {fmt_s(g['p50'])} s, p99 {fmt_s(g['p99'])} s; files with 2 holders out: {g['ok_2out']} ok, p50 {fmt_s(g['p50_2out'])} s, p99 {fmt_s(g['p99_2out'])} s", flush=True)
        print(f"    gateway reads   {w['ok']}/{w['tried']} ok; p50 {fmt_s(w['p50'])} s, p99 {fmt_s(w['p99'])} s", flush=True)
        print(f"    puts            {p['ok']}/{p['tried']} ok; p50 {fmt_s(p['p50'])} s, p99 {fmt_s(p['p99'])} s", flush=True)
        dht = "n/a" if d["max"] is None else f"max {d['max']:.2f} s over the phase; at its end max {d['max_end']:.2f} s, median {d['median_end']:.2f} s ({d['nodes_end']} live nodes)"
        print(f"    DHT timeout     {dht}", flush=True)
        print(f"    reads by holders out: {r['reads_by_holders_out']}" + (f"; not tried (over the {r['budget_s']:.0f} s budget): {r['skipped_over_budget']}" if r["skipped_over_budget"] else ""), flush=True)
        for k in ("get", "gateway", "put"):
            for why, n in r[k]["failures"].items():
                print(f"    {k} failed {n} x: {why}", flush=True)

    def resume_recovery(self, t_resume: float, window: float) -> dict:
        """From the samples after `t_resume`: the seconds until every live node's DHT
        request timeout is <= 1 s and stays so through the window."""
        rows = [(round(t - t_resume, 1), v) for t, v in self.samples if t_resume <= t <= t_resume + window + 0.5]
        series = [
            {"t": t, "max": round(max(v.values()), 3), "median": round(statistics.median(v.values()), 3), "nodes": len(v),
             "worst": f"node{max(v, key=v.get)}"}
            for t, v in rows if v
        ]
        if not series:
            return {"recovered_after_s": None, "series": [], "metric": None}
        recovered = None
        for i, s in enumerate(series):
            if all(x["max"] <= THRESHOLD for x in series[i:]):
                recovered = s["t"]
                break
        return {"recovered_after_s": recovered, "window_s": window, "series": series, "metric": self.metric_name}

    def bench(self) -> None:
        a = self.args
        self.say(f"seed {self.seed}; {a.nodes} nodes; binary {a.bin}")
        self.setup()
        self.learn_ids()
        sampler = threading.Thread(target=self.sampler_loop, name="metrics", daemon=True)
        sampler.start()
        self.reset_stats()
        self.say(f"putting a pool of {a.pool} files of {a.file_mib:g} MiB (the cluster settles meanwhile)")
        pool_times = []
        for _ in range(a.pool):
            f, took = self.put_new(count=False)
            if f is not None:
                pool_times.append(took)
        if not self.files or len(self.files) < a.pool / 2:
            raise soak.SoakFailure(f"only {len(self.files)} of {a.pool} pool puts succeeded on a healthy cluster")
        self.pool_put = {"ok": len(pool_times), "tried": a.pool, "p50": pct(pool_times, 0.5), "p99": pct(pool_times, 0.99)}
        self.say(f"pool: {len(pool_times)}/{a.pool} puts ok, p50 {fmt_s(self.pool_put['p50'])} s; settling {a.settle:.0f} s")
        time.sleep(a.settle)
        if not self.metric_seen.is_set():
            self.say("no node exports mosaic_dht_request_timeout_seconds: the DHT timeout is n/a")
        self.choose_roles()
        nodes = self.nodes
        dead = [nodes[i] for i in self.roles["dead"]]
        frozen = [nodes[i] for i in self.roles["frozen"]]
        resumed = nodes[self.roles["resumed"]]
        d_set, f_set = set(self.roles["dead"]), set(self.roles["frozen"])
        both = lambda s: (lambda f: self.holders.get(f.name, set()) >= s)  # noqa: E731
        budget = a.phase_budget

        if a.inject_wrong_byte:
            # Checks the checker: the expected bytes of one file change, so its next read
            # must be reported as wrong bytes and end the run.
            f = self.files[0]
            data = bytearray(f.path.read_bytes())
            data[len(data) // 2] ^= 0x01
            f.path.write_bytes(bytes(data))
            f.sha256 = hashlib.sha256(data).hexdigest()
            self.say(f"--inject-wrong-byte: flipped a byte of the expected copy of {f.name}")
        self.say("warm-up: 2 gets and 2 gateway reads, not counted")
        rng = random.Random(f"{self.seed}-warm")
        for f in self.files[:2]:
            self.get_one("getter", f, final=True)
            self.gateway_read(f, rng, whole=True, final=True)
            if self.abort.is_set():
                raise soak.SoakFailure("wrong bytes (see above)")

        self.run_phase("healthy", "all nodes up", set(), lambda f: False, "", budget)

        t = self.now()
        for n in dead:
            self.kill(n)
        self.run_phase("dead", f"node{dead[0].index} + node{dead[1].index} killed", d_set, both(d_set), "both dead nodes hold", budget, t)

        for n in dead:
            self.restart(n)
        t = self.now()
        for n in frozen:
            self.freeze(n)
        self.run_phase("frozen", f"node{frozen[0].index} + node{frozen[1].index} frozen (the dead pair restarted)", f_set, both(f_set), "both frozen nodes hold", budget, t)

        for n in frozen:
            self.resume_node(n)
        t_freeze = self.now()
        self.freeze(resumed)
        self.say(f"node{resumed.index} frozen for {a.freeze:.0f} s (node{frozen[0].index} + node{frozen[1].index} continued)")
        time.sleep(a.freeze)
        before = self.dht_between(max(t_freeze, self.now() - 3), self.now())
        during = self.dht_between(t_freeze, self.now())
        t_resume = self.now()
        self.resume_node(resumed)
        self.run_phase(
            "resumed", f"node{resumed.index} continued after a {a.freeze:.0f} s freeze; operations in the {a.resume_window:.0f} s after",
            set(), lambda f: resumed.index in self.holders.get(f.name, set()), f"node{resumed.index} holds", a.resume_window, t_resume,
        )
        # The resume's samples end before phase 5 disturbs anything.
        wait = t_resume + a.resume_sample + 1 - self.now()
        if wait > 0:
            time.sleep(wait)
        self.resume = {"during_freeze": during, "just_before_resume": before, **self.resume_recovery(t_resume, a.resume_sample)}
        self.phases[-1]["resume"] = self.resume
        rec = self.resume["recovered_after_s"]
        if during["max"] is not None:
            end = f"; just before the resume max {before['max']:.2f} s, median {before['median_end']:.2f} s" if before["max"] is not None else ""
            self.say(f"DHT timeout while node{resumed.index} was frozen (node{frozen[0].index} + node{frozen[1].index} just continued): max {during['max']:.2f} s{end}")
        if self.resume["series"]:
            self.say(f"after the resume: every live node's DHT timeout <= {THRESHOLD:g} s "
                     + (f"{rec:.0f} s after it" if rec is not None else f"not within {a.resume_sample:.0f} s")
                     + "; max by second: " + " ".join(f"{x['max']:.1f}" for x in self.resume["series"])
                     + f" (at the end on {self.resume['series'][-1]['worst']})")
        else:
            self.say("after the resume: DHT timeout n/a")

        t = self.now()
        for n in dead:
            self.kill(n)
        for n in frozen:
            self.freeze(n)
        out = d_set | f_set
        self.run_phase(
            "mixed", f"node{dead[0].index} + node{dead[1].index} killed, node{frozen[0].index} + node{frozen[1].index} frozen, node{resumed.index} resumed {t - t_resume:.0f} s before",
            out, lambda f: self.out_count(f, out) == 2, "with exactly 2 holders dead or frozen", budget, t,
        )

    # -- the summary

    def targets(self) -> list[dict]:
        by = {p["phase"]: p for p in self.phases}
        rows = []
        reads_ok = sum(p["get"]["ok"] + p["gateway"]["ok"] for p in self.phases)
        reads = sum(p["get"]["tried"] + p["gateway"]["tried"] for p in self.phases)
        rows.append({
            "target": "reads of files with >= k live columns: 100 % succeed",
            "measured": f"{100 * reads_ok / reads:.1f} % ({reads_ok}/{reads}, all phases)" if reads else "-",
            "met": reads > 0 and reads_ok == reads,
        })
        two_out = [p["get"]["p99_2out"] for k in ("dead", "frozen", "mixed") if (p := by.get(k)) and p["get"]["p99_2out"] is not None]
        parts = ", ".join(f"{k} {fmt_s(by[k]['get']['p99_2out'])}" for k in ("dead", "frozen", "mixed") if k in by)
        rows.append({
            "target": "1 MiB get, 2 of its holders frozen or dead: p99 <= 1 s",
            "measured": f"{fmt_s(max(two_out)) if two_out else '-'} s ({parts})",
            "met": bool(two_out) and max(two_out) <= 1.0,
        })
        puts = [by[k]["put"]["p99"] for k in ("dead", "frozen") if k in by and by[k]["put"]["p99"] is not None]
        put_ok = all(by[k]["put"]["ok"] == by[k]["put"]["tried"] for k in ("dead", "frozen") if k in by)
        mixed_put = fmt_s(by["mixed"]["put"]["p99"]) if "mixed" in by else "-"
        rows.append({
            "target": "put with 2 nodes frozen or dead: p99 <= 2 s",
            "measured": f"{fmt_s(max(puts)) if puts else '-'} s (dead {fmt_s(by.get('dead', {}).get('put', {}).get('p99'))}, frozen {fmt_s(by.get('frozen', {}).get('put', {}).get('p99'))}; mixed, 4 out: {mixed_put})",
            "met": bool(puts) and put_ok and max(puts) <= 2.0,
        })
        rec = self.resume.get("recovered_after_s")
        if not self.resume.get("series"):
            measured, met = "n/a (no node exports the metric)", None
        elif rec is None:
            last = self.resume["series"][-1]
            measured, met = f"not within {self.args.resume_sample:.0f} s (max {last['max']:.2f} s at {last['t']:.0f} s)", False
        else:
            measured, met = f"{rec:.0f} s", rec <= 10
        if self.args.freeze != 60:
            measured += f" (after a {self.args.freeze:.0f} s freeze)"
        rows.append({"target": "node resumed after a 60 s freeze: every node's DHT timeout <= 1 s within 10 s", "measured": measured, "met": met})
        h, r = by.get("healthy"), by.get("resumed")
        if h and r:
            ratios = []
            text = []
            for k in ("get", "put"):
                if h[k]["p50"] and r[k]["p50"] is not None:
                    ratios.append(r[k]["p50"] / h[k]["p50"])
                    text.append(f"{k} p50 {fmt_s(r[k]['p50'])} s vs {fmt_s(h[k]['p50'])} s healthy ({r[k]['p50'] / h[k]['p50']:.1f} x)")
            ok = all(r[k]["ok"] == r[k]["tried"] for k in ("get", "put"))
            rows.append({
                "target": "resumed: puts and gets at healthy speed (here: p50 within 1.5 x, none failed)",
                "measured": "; ".join(text) or "-",
                "met": bool(ratios) and ok and max(ratios) <= 1.5,
            })
        return rows

    def markdown(self, targets: list[dict]) -> str:
        a = self.args
        lines = [
            f"{a.nodes} nodes on loopback, 1 gateway (no segment cache); files of {a.file_mib:g} MiB, 3-of-5; "
            f"per phase {a.gets} gets, {a.gateway_reads} gateway reads, {a.puts} puts, sequential; "
            f"times of successful operations in seconds; binary: {self.binary_note}.",
            "",
            "| phase | situation | gets ok / tried | gateway ok / tried | get p50 / p99 | get p50 / p99, 2 holders out | put ok / tried | put p50 / p99 | DHT timeout max / median (s) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for p in self.phases:
            g, w, u, d = p["get"], p["gateway"], p["put"], p["dht_timeout_s"]
            dht = "n/a" if d["max"] is None else f"{d['max']:.2f} / {d['median_end']:.2f}"
            lines.append(
                f"| {p['phase']} | {p['situation']} | {g['ok']} / {g['tried']} | {w['ok']} / {w['tried']} | "
                f"{fmt_s(g['p50'])} / {fmt_s(g['p99'])} | {fmt_s(g['p50_2out'])} / {fmt_s(g['p99_2out'])} ({g['ok_2out']}) | "
                f"{u['ok']} / {u['tried']} | {fmt_s(u['p50'])} / {fmt_s(u['p99'])} | {dht} |"
            )
        lines += ["", "| target (issue 27) | measured | met |", "|---|---|---|"]
        for t in targets:
            met = "n/a" if t["met"] is None else "yes" if t["met"] else "**no**"
            lines.append(f"| {t['target']} | {t['measured']} | {met} |")
        return "\n".join(lines)


def main() -> int:
    env = os.environ.get
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="CI: 6 gets, 6 gateway reads, 2 puts a phase, a 30 s freeze (about 2 minutes)")
    ap.add_argument("--gets", type=int, default=None, help="mosaic gets per phase (default 20; quick 6)")
    ap.add_argument("--gateway-reads", type=int, default=None, help="gateway reads per phase (default 20; quick 6)")
    ap.add_argument("--puts", type=int, default=None, help="puts per phase (default 5; quick 2)")
    ap.add_argument("--pool", type=int, default=None, help="files put before the phases (default 24; quick 10)")
    ap.add_argument("--freeze", type=soak.parse_duration, default=None, help="phase 4's freeze (default 60s; quick 30s)")
    ap.add_argument("--resume-window", type=soak.parse_duration, default=None, help="phase 4's operations are tried this long after the resume (default 20s; quick 15s)")
    ap.add_argument("--resume-sample", type=soak.parse_duration, default=15.0, help="seconds of per-second DHT samples after the resume (default 15)")
    ap.add_argument("--label", default="", help="what the binary is, for the table (default: the git commit of the tree it was built in)")
    ap.add_argument("--phase-budget", type=soak.parse_duration, default=None, help="a phase's operations stop being tried after this (default 60s; quick 15s)")
    ap.add_argument("--settle", type=soak.parse_duration, default=None, help="pause after the pool's puts (default 5s; quick 2s)")
    ap.add_argument("--file-mib", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=int(env("MOSAIC_CHURN_SEED", "0")) or random.SystemRandom().randrange(1, 1 << 31))
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--bin", default=env("MOSAIC_BIN", str(Path(__file__).resolve().parent.parent / "target" / "debug" / "mosaic")))
    ap.add_argument("--base-port", type=int, default=int(env("MOSAIC_CHURN_PORT", "19000")))
    ap.add_argument("--json", default=env("MOSAIC_CHURN_JSON"), help="write the results here")
    ap.add_argument("--work-dir", default=None, help="default: a new temporary directory")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (node logs)")
    ap.add_argument("--connect-timeout", default="", help="clients' MOSAIC_CONNECT_TIMEOUT (default: the CLI's own, 5s)")
    ap.add_argument("--announce-interval", default="10m", help="nodes' settings (the defaults: no repair during the run)")
    ap.add_argument("--check-interval", default="30m")
    ap.add_argument("--repair-grace", default="1h")
    ap.add_argument("--repair-backoff", default="90m")
    ap.add_argument("--inject-wrong-byte", action="store_true", help="test the test: change the expected bytes of one file, so the run must fail")
    ap.add_argument("--put-timeout", type=soak.parse_duration, default=60.0)
    ap.add_argument("--get-timeout", type=soak.parse_duration, default=60.0)
    ap.add_argument("--gateway-timeout", type=soak.parse_duration, default=60.0)
    args = ap.parse_args()
    quick = args.quick
    for name, full, short in (("gets", 20, 6), ("gateway_reads", 20, 6), ("puts", 5, 2), ("pool", 24, 10), ("freeze", 60.0, 30.0), ("phase_budget", 60.0, 15.0), ("resume_window", 20.0, 15.0), ("settle", 5.0, 2.0)):
        if getattr(args, name) is None:
            setattr(args, name, short if quick else full)
    if args.nodes < 12:
        ap.error("--nodes must be at least 12 (3 bootstrap nodes, 5 disturbed, 5 for puts)")
    if args.nodes > 100:
        ap.error("--nodes is at most 100 (ports BASE+i, BASE+100+i, BASE+300+i)")
    # What tests/soak.py's cluster code reads from its arguments.
    args.stable_nodes = 0
    args.events = []
    args.large_mib = []
    args.max_disturbed = PARITY
    args.slow_put = args.put_timeout
    if args.work_dir is None:
        args.work_dir = tempfile.mkdtemp(prefix="mosaic-churn.")

    bench = Churn(args)
    bench.binary_note = args.label or binary_label(Path(args.bin))

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    ok = False
    try:
        bench.bench()
        ok = True
    except soak.SoakFailure as e:
        bench.fail(str(e))
    except KeyboardInterrupt as e:
        bench.fail(f"interrupted ({e or 'Ctrl-C'})")
    except Exception:  # noqa: BLE001 (a bug here still cleans up)
        bench.fail("the benchmark crashed:\n" + traceback.format_exc())
    finally:
        bench.sampler_stop.set()
        bench.cleanup()
        bench.pool.shutdown(wait=False, cancel_futures=True)
    targets = bench.targets() if bench.phases else []
    table = bench.markdown(targets)
    result = "pass" if ok and not bench.failures else "fail"
    print("")
    print(f"=== churn benchmark: {result.upper()} (seed {bench.seed}, {bench.now():.0f} s in all; DHT timeout metric: {bench.metric_name or 'n/a'})")
    if bench.phases:
        print(table)
    for f in bench.failures:
        print(f"FAILURE    {f.splitlines()[0]}")
    summary = {
        "result": result,
        "seed": bench.seed,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "binary": {"path": str(Path(args.bin).resolve()), "note": bench.binary_note},
        "settings": {
            "nodes": args.nodes, "file_mib": args.file_mib, "gets": args.gets, "gateway_reads": args.gateway_reads,
            "puts": args.puts, "pool": args.pool, "freeze_s": args.freeze, "resume_window_s": args.resume_window,
            "resume_sample_s": args.resume_sample, "phase_budget_s": args.phase_budget, "quick": quick,
            "connect_timeout": args.connect_timeout or "CLI default", "announce_interval": args.announce_interval,
            "check_interval": args.check_interval, "repair_grace": args.repair_grace, "gateway_cache": Churn.gateway_cache_size,
        },
        "elapsed_s": round(bench.now(), 1),
        "roles": bench.roles,
        "pool_put": getattr(bench, "pool_put", None),
        "metric": bench.metric_name,
        "phases": bench.phases,
        "targets": targets,
        "table_markdown": table,
        "events": bench.chaos_events,
        "failures": bench.failures,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2, default=str) + "\n")
        print(f"results written to {args.json}")
    if result == "pass" and not args.keep:
        shutil.rmtree(bench.work, ignore_errors=True)
    else:
        print(f"work dir kept: {bench.work} (node logs, gateway.log, chaos.log)")
    return 0 if result == "pass" else 1


if __name__ == "__main__":
    sys.exit(main())
