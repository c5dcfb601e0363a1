#!/usr/bin/env python3
"""The map keeps true: docs/architecture.md against the code (CI runs this).

Checks, and names every difference it finds:
- every Rust source file of every workspace crate (`src/**.rs`) is in the "What is
  where" table, and every file the table names exists;
- the crates table's "depends on (Mosaic crates)" column is exactly each crate's
  normal (non-dev) dependencies on other workspace crates, read from `cargo metadata`;
- the errors table lists exactly each crate's error types (`pub enum|struct
  …Error`, crate-public too), for the crates it has a row for.

The tables' conventions: a row with an empty crate cell belongs to the crate above it;
paths are in backticks, relative to the crate's directory, and may use braces
(`src/{a,b}.rs`); a path ending in `/` names a directory of non-Rust files.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"


def expand(pattern: str) -> list[str]:
    """`src/{a,b}.rs` -> [`src/a.rs`, `src/b.rs`] (nested braces are not used)."""
    m = re.search(r"\{([^{}]*)\}", pattern)
    if not m:
        return [pattern]
    out = []
    for alt in m.group(1).split(","):
        out += expand(pattern[: m.start()] + alt + pattern[m.end():])
    return out


def rows(section: str) -> list[list[str]]:
    """The cells of every body row of the first table in `section`."""
    out = []
    fenced = False
    for line in section.splitlines():
        line = line.strip()
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and out and not line.startswith("|"):
            break  # the first table ended
        if fenced or not (line.startswith("| ") and line.endswith("|")) or set(line) <= set("|-: "):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        out.append(cells)
    return out[1:]  # the header


def section(text: str, heading: str) -> str:
    start = text.index(heading)
    rest = text[start + len(heading):]
    end = re.search(r"^#{1,3} ", rest, re.M)
    return rest[: end.start()] if end else rest


def main() -> int:
    text = DOC.read_text()
    problems: list[str] = []

    # The crates table: crate -> (directory, documented Mosaic dependencies).
    crates: dict[str, tuple[str, set[str]]] = {}
    for cells in rows(section(text, "\n## Crates\n")):
        name = cells[0].strip("`")
        directory = re.findall(r"`([^`]+)`", cells[1])[0].rstrip("/")
        deps_cell = cells[3]
        # "client, wire, codec"; other crates and parenthesized notes may follow.
        deps = {d.strip().strip("`") for d in re.sub(r"\([^)]*\)", "", deps_cell).split(",")}
        crates[name] = (directory, deps - {"none", ""})

    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--no-deps", "--locked", "--format-version", "1"],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
    )
    members = {p["name"]: p for p in meta["packages"]}
    short = {name: name.removeprefix("mosaic-") for name in members}
    for name, pkg in sorted(members.items()):
        if name not in crates:
            problems.append(f"crate {name} is not in docs/architecture.md's crates table")
            continue
        directory = Path(pkg["manifest_path"]).parent.relative_to(ROOT).as_posix()
        directory = "." if directory == "" else directory
        if crates[name][0] != directory:
            problems.append(f"crate {name}: the table says directory `{crates[name][0]}`, it is `{directory}`")
        actual = {
            short[d["name"]]
            for d in pkg["dependencies"]
            if d["name"] in members and d.get("kind") is None
        }
        documented = {w for w in crates[name][1] if w in short.values()}
        if actual != documented:
            problems.append(
                f"crate {name}: the table says it depends on {sorted(documented) or 'none'}, "
                f"Cargo.toml says {sorted(actual) or 'none'}"
            )
    for name in crates:
        if name not in members:
            problems.append(f"the crates table names {name}, which is not a workspace crate")

    # The "What is where" table: every source file, and nothing that is not there.
    listed: set[Path] = set()
    crate = None
    for cells in rows(section(text, "### What is where")):
        if cells[0]:
            crate = cells[0].strip("`")
        if crate not in crates:
            problems.append(f"'What is where' names crate {crate!r}, not in the crates table")
            continue
        base = ROOT / crates[crate][0]
        for pattern in re.findall(r"`([^`]+)`", cells[1]):
            for rel in expand(pattern):
                path = (base / rel).resolve()
                if not path.exists():
                    problems.append(f"'What is where' names {path.relative_to(ROOT)}, which does not exist")
                elif path.is_file():
                    listed.add(path)
    for name, (directory, _) in crates.items():
        src = ROOT / directory / "src"
        for path in sorted(src.rglob("*.rs")):
            if path.resolve() not in listed:
                problems.append(f"{path.relative_to(ROOT)} is not in docs/architecture.md's 'What is where' table")

    # The errors table: crate -> the public error types its row lists.
    for cells in rows(section(text, "\n## Errors\n")):
        name = cells[0].strip("`")
        if name not in crates:
            problems.append(f"the errors table names crate {name!r}, not in the crates table")
            continue
        documented = set(re.findall(r"`(\w+Error)`", cells[1]))
        actual = set()
        for path in (ROOT / crates[name][0] / "src").rglob("*.rs"):
            actual |= set(re.findall(r"^pub(?:\(crate\))? (?:enum|struct) (\w+Error)\b", path.read_text(), re.M))
        for e in sorted(actual - documented):
            problems.append(f"error type {e} of {name} is not in docs/architecture.md's errors table")
        for e in sorted(documented - actual):
            problems.append(f"the errors table lists {e} for {name}, which has no such public type")

    if problems:
        print("docs/architecture.md no longer matches the code:")
        for p in problems:
            print(f"  - {p}")
        return 1
    n = len(listed)
    print(f"map: {len(members)} crates and their dependencies, {n} source files, the error types: docs/architecture.md matches")
    return 0


if __name__ == "__main__":
    sys.exit(main())
