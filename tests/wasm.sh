#!/usr/bin/env bash
# The browser's codec: builds the share page's module (mosaic-web, which compiles
# mosaic-codec for wasm32-unknown-unknown) from source and checks that it is the very
# module committed in gateway/assets/mosaic.wasm, which the gateway binary embeds.
# A difference means the committed module is stale (run gateway/web/build.sh and
# commit it) or the build is not reproducible; either way CI must not ship it.
# rustup cannot fetch the wasm32 target here; Debian's rustc-web toolchain builds std
# for it from source (docs/architecture.md). .ci/run installs the packages.
set -euo pipefail
cd "$(dirname "$0")/.."
committed="$(mktemp)"
trap 'rm -f "$committed"' EXIT
cp gateway/assets/mosaic.wasm "$committed"
gateway/web/build.sh
if ! cmp -s "$committed" gateway/assets/mosaic.wasm; then
  echo "gateway/assets/mosaic.wasm differs from what gateway/web builds: rebuild it with gateway/web/build.sh and commit it" >&2
  cp "$committed" gateway/assets/mosaic.wasm
  exit 1
fi
# The module imports only the page's randomness: no JavaScript glue is needed.
python3 - gateway/assets/mosaic.wasm <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
assert data[:4] == b"\0asm", "not a wasm module"
def leb(b, i):
    r = s = 0
    while True:
        x = b[i]; i += 1; r |= (x & 0x7f) << s; s += 7
        if x < 0x80: return r, i
i, imports = 8, []
while i < len(data):
    sid = data[i]; size, i = leb(data, i + 1); end = i + size
    if sid == 2:
        n, j = leb(data, i)
        for _ in range(n):
            l, j = leb(data, j); mod = data[j:j + l].decode(); j += l
            l, j = leb(data, j); name = data[j:j + l].decode(); j += l
            kind = data[j]; j += 1
            if kind == 0: _, j = leb(data, j)
            else: raise SystemExit(f"unexpected import kind {kind}")
            imports.append(f"{mod}.{name}")
    i = end
assert imports == ["env.mosaic_random"], imports
print(f"mosaic.wasm: {len(data)} bytes, reproducible from source, imports {imports}")
PY
