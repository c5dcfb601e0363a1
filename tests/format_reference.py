#!/usr/bin/env python3
"""Independent reference encoder/decoder for the Mosaic file format, version 1.

This program was written from ``docs/format.md`` alone, without reading any of Mosaic's
Rust code. Its purpose is to check the specification: if this program agrees with the
real implementation (the known-answer vectors of §11, and files encoded by the
``mosaic`` binary), then the document is enough to write a compatible implementation.

Section numbers (§n) in the comments refer to ``docs/format.md``.

Usage:

    python3 tests/format_reference.py --vectors
        Re-compute the two known-answer vectors of §11 by *encoding* them, and assert
        that the file ids, column hashes, convergent key and manifests match.

    python3 tests/format_reference.py --decode DIR CAP OUT
        Decode the file named by CAP (a readcap ``mr1…`` or a public id ``mi1…``) from
        the blobs in DIR/blobs/<lowercase hex BLAKE3>, using any k available columns,
        and write the plaintext to OUT. Every hash, tag and padding byte is checked.

Dependencies (PyPI): ``blake3``, ``pycryptodome``.
"""

from __future__ import annotations

import argparse
import hmac
import itertools
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import blake3
from Crypto.Cipher import ChaCha20_Poly1305

# ---------------------------------------------------------------------------------------
# Constants (§2, §3, §4, §7, §9)
# ---------------------------------------------------------------------------------------

FORMAT_VERSION = 0x01
SUITE_PUBLIC = 0x00
SUITE_XCHACHA = 0x01
ERASURE_RS = 0x01
MAGIC = b"mosaicmf"

T = 16  # tag length
MIN_S = 4096
MAX_S = 16 * 1024 * 1024
MAX_STRIPE = 64 * 1024 * 1024
DEFAULT_S = 1024 * 1024
MAX_LEN = 1 << 56
MAX_N = 255
MAX_MANIFEST = 12_612
PUBLIC_PART_FIXED = 41  # bytes before the column hashes

CTX_CONVERGENT_KEY = "mosaic 2026-11-21 v1 convergent key"
CTX_CONVERGENT_SALT = "mosaic 2026-11-21 v1 convergent salt"
CTX_SEGMENT_KEY = "mosaic 2026-11-21 v1 segment key"
CTX_METADATA_KEY = "mosaic 2026-11-21 v1 metadata key"
CTX_METADATA_NONCE_KEY = "mosaic 2026-11-21 v1 metadata nonce key"
CTX_PUBLIC_TAG = "mosaic 2026-11-21 v1 public segment tag"


class FormatError(Exception):
    """Anything that makes a manifest, cap, column or segment invalid."""


# ---------------------------------------------------------------------------------------
# BLAKE3 in its three modes (conventions paragraph)
# ---------------------------------------------------------------------------------------


def b3(data: bytes, n: int = 32) -> bytes:
    """First n bytes of BLAKE3(data)."""
    return blake3.blake3(data).digest(length=n)


def b3_keyed(key: bytes, data: bytes, n: int = 32) -> bytes:
    """First n bytes of BLAKE3_keyed(key, data)."""
    return blake3.blake3(data, key=key).digest(length=n)


def b3_derive(context: str, material: bytes, n: int = 32) -> bytes:
    """First n bytes of BLAKE3_derive_key(context, material)."""
    return blake3.blake3(material, derive_key_context=context).digest(length=n)


# ---------------------------------------------------------------------------------------
# GF(2^8) with the polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11D), §5
# ---------------------------------------------------------------------------------------

GF_POLY = 0x11D
GF_EXP = [0] * 512  # doubled so that exp[a + b] needs no reduction mod 255
GF_LOG = [0] * 256

_x = 1
for _i in range(255):
    GF_EXP[_i] = _x
    GF_LOG[_x] = _i
    _x <<= 1  # multiply by the generator 2 (x)
    if _x & 0x100:
        _x ^= GF_POLY
for _i in range(255, 512):
    GF_EXP[_i] = GF_EXP[_i - 255]


def gf_mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return GF_EXP[GF_LOG[a] + GF_LOG[b]]


def gf_inv(a: int) -> int:
    if a == 0:
        raise ZeroDivisionError("0 has no inverse in GF(2^8)")
    return GF_EXP[255 - GF_LOG[a]]


def gf_pow(a: int, e: int) -> int:
    """a^e with 0^0 = 1 (§5)."""
    if e == 0:
        return 1
    if a == 0:
        return 0
    return GF_EXP[(GF_LOG[a] * e) % 255]


# For fast bulk arithmetic: MUL_TABLE[c] is a 256-byte translation table for x -> c·x,
# so c·shard is shard.translate(MUL_TABLE[c]); addition of whole shards is an integer XOR.
MUL_TABLE = [bytes(gf_mul(c, x) for x in range(256)) for c in range(256)]


def gf_lincomb(coeffs: list[int], shards: list[bytes], length: int) -> bytes:
    """Σ coeffs[t] · shards[t], byte by byte, in GF(2^8)."""
    acc = 0
    for c, s in zip(coeffs, shards):
        if c == 0:
            continue
        v = s if c == 1 else s.translate(MUL_TABLE[c])
        acc ^= int.from_bytes(v, "little")
    return acc.to_bytes(length, "little")


# ---------------------------------------------------------------------------------------
# Matrices over GF(2^8), §5
# ---------------------------------------------------------------------------------------

Matrix = list[list[int]]


def mat_mul(a: Matrix, b: Matrix) -> Matrix:
    rows, inner, cols = len(a), len(b), len(b[0])
    out = [[0] * cols for _ in range(rows)]
    for r in range(rows):
        for c in range(cols):
            acc = 0
            for t in range(inner):
                acc ^= gf_mul(a[r][t], b[t][c])
            out[r][c] = acc
    return out


def mat_inv(a: Matrix) -> Matrix:
    """Inverse of a square matrix by Gauss–Jordan elimination; raises if singular."""
    n = len(a)
    # Augment with the identity.
    w = [list(row) + [1 if i == j else 0 for j in range(n)] for i, row in enumerate(a)]
    for col in range(n):
        pivot = next((r for r in range(col, n) if w[r][col] != 0), None)
        if pivot is None:
            raise FormatError("singular matrix")
        w[col], w[pivot] = w[pivot], w[col]
        inv = gf_inv(w[col][col])
        w[col] = [gf_mul(inv, x) for x in w[col]]
        for r in range(n):
            if r != col and w[r][col] != 0:
                f = w[r][col]
                w[r] = [x ^ gf_mul(f, y) for x, y in zip(w[r], w[col])]
    return [row[n:] for row in w]


_ENCODING_MATRIX_CACHE: dict[tuple[int, int], Matrix] = {}


def encoding_matrix(k: int, m: int) -> Matrix:
    """E = V · (V_top)^-1 with V[r][c] = r^c, an n × k matrix whose top is the identity."""
    key = (k, m)
    if key not in _ENCODING_MATRIX_CACHE:
        n = k + m
        v = [[gf_pow(r, c) for c in range(k)] for r in range(n)]
        e = mat_mul(v, mat_inv(v[:k]))
        assert e[:k] == [[1 if i == j else 0 for j in range(k)] for i in range(k)]
        _ENCODING_MATRIX_CACHE[key] = e
    return _ENCODING_MATRIX_CACHE[key]


# ---------------------------------------------------------------------------------------
# Layout, §2
# ---------------------------------------------------------------------------------------


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def round_up(x: int, a: int) -> int:
    return ceil_div(x, a) * a


@dataclass(frozen=True)
class Layout:
    k: int
    m: int
    S: int
    length: int

    @property
    def n(self) -> int:
        return self.k + self.m

    @property
    def segments(self) -> int:
        return max(1, ceil_div(self.length, self.S))

    def plain_len(self, i: int) -> int:
        N = self.segments
        return self.S if i < N - 1 else self.length - (N - 1) * self.S

    def sealed_len(self, i: int) -> int:
        return self.plain_len(i) + T

    @property
    def L(self) -> int:
        return round_up(ceil_div(self.S + T, self.k), 1024)

    @property
    def L_last(self) -> int:
        return round_up(ceil_div(self.plain_len(self.segments - 1) + T, self.k), 64)

    def shard_len(self, i: int) -> int:
        return self.L if i < self.segments - 1 else self.L_last

    @property
    def column_len(self) -> int:
        return (self.segments - 1) * self.L + self.L_last


def check_params(k: int, m: int, S: int, length: int) -> None:
    """The constraints of §2."""
    if k < 1:
        raise FormatError("k must be at least 1")
    if m < 1:
        raise FormatError("m must be at least 1")
    if k + m > MAX_N:
        raise FormatError("n = k + m must be at most 255")
    if S % 1024 != 0 or not (MIN_S <= S <= MAX_S):
        raise FormatError(f"bad segment size {S}")
    L = round_up(ceil_div(S + T, k), 1024)
    if (k - 1) * L >= S + T:
        raise FormatError(f"k = {k} leaves data shards of only padding at S = {S}")
    if (k + m) * L > MAX_STRIPE:
        raise FormatError(f"stripe of {(k + m) * L} bytes exceeds 64 MiB")
    if length > MAX_LEN:
        raise FormatError("length exceeds 2^56")


# ---------------------------------------------------------------------------------------
# Keys, §3
# ---------------------------------------------------------------------------------------


def convergent_key(secret: bytes, k: int, m: int, S: int, plaintext: bytes) -> bytes:
    base = b3_derive(CTX_CONVERGENT_KEY, secret)
    material = struct.pack("<BBBIQ", 0x01, k, m, S, len(plaintext)) + plaintext
    return b3_keyed(base, material)


def convergent_salt(K: bytes) -> bytes:
    return b3_derive(CTX_CONVERGENT_SALT, K, 16)


@dataclass(frozen=True)
class Subkeys:
    segment_key: bytes
    metadata_key: bytes
    metadata_nonce_key: bytes


def subkeys(K: bytes) -> Subkeys:
    return Subkeys(
        b3_derive(CTX_SEGMENT_KEY, K),
        b3_derive(CTX_METADATA_KEY, K),
        b3_derive(CTX_METADATA_NONCE_KEY, K),
    )


# ---------------------------------------------------------------------------------------
# Sealing and opening a segment, §4
# ---------------------------------------------------------------------------------------


def segment_context(suite: int, lay: Layout, i: int) -> bytes:
    is_last = 1 if i == lay.segments - 1 else 0
    ctx = struct.pack("<BBIQQB", FORMAT_VERSION, suite, lay.S, lay.length, i, is_last)
    assert len(ctx) == 23
    return ctx


def public_tag(ctx: bytes, plaintext: bytes) -> bytes:
    return b3_derive(CTX_PUBLIC_TAG, ctx + plaintext, T)


def seal_segment(suite: int, lay: Layout, i: int, plaintext: bytes,
                 segment_key: bytes | None, salt: bytes) -> bytes:
    ctx = segment_context(suite, lay, i)
    if suite == SUITE_PUBLIC:
        return plaintext + public_tag(ctx, plaintext)
    cipher = ChaCha20_Poly1305.new(key=segment_key, nonce=salt + struct.pack("<Q", i))
    cipher.update(ctx)
    ct, tag = cipher.encrypt_and_digest(plaintext)
    return ct + tag


def open_segment(suite: int, lay: Layout, i: int, sealed: bytes,
                 segment_key: bytes | None, salt: bytes) -> bytes:
    """Check the tag of a sealed segment and return its plaintext; raises on failure."""
    ctx = segment_context(suite, lay, i)
    body, tag = sealed[:-T], sealed[-T:]
    if suite == SUITE_PUBLIC:
        if not hmac.compare_digest(public_tag(ctx, body), tag):
            raise FormatError(f"segment {i}: public tag mismatch")
        return body
    cipher = ChaCha20_Poly1305.new(key=segment_key, nonce=salt + struct.pack("<Q", i))
    cipher.update(ctx)
    try:
        return cipher.decrypt_and_verify(body, tag)
    except ValueError:
        raise FormatError(f"segment {i}: authentication tag mismatch") from None


# ---------------------------------------------------------------------------------------
# Shards, §5
# ---------------------------------------------------------------------------------------


def encode_shards(sealed: bytes, k: int, m: int, Ls: int) -> list[bytes]:
    """Zero-pad a sealed segment to k·Ls bytes, split it into k shards, add m parity."""
    assert len(sealed) <= k * Ls
    B = sealed + bytes(k * Ls - len(sealed))
    data = [B[j * Ls:(j + 1) * Ls] for j in range(k)]
    E = encoding_matrix(k, m)
    parity = [gf_lincomb(E[j], data, Ls) for j in range(k, k + m)]
    return data + parity


def rebuild_data_shards(k: int, m: int, have: dict[int, bytes], Ls: int) -> list[bytes]:
    """Given exactly k shards {index: bytes}, return the k data shards."""
    assert len(have) == k
    rows = sorted(have)
    if rows == list(range(k)):
        return [have[j] for j in range(k)]
    E = encoding_matrix(k, m)
    dec = mat_inv([E[r] for r in rows])  # maps the given shards to the data shards
    given = [have[r] for r in rows]
    out = []
    for j in range(k):
        if j in have:
            out.append(have[j])  # a data shard we already hold
        else:
            out.append(gf_lincomb(dec[j], given, Ls))
    return out


# ---------------------------------------------------------------------------------------
# Metadata, §6
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metadata:
    name: str | None = None
    media_type: str | None = None
    mtime: tuple[int, int] | None = None  # (seconds since epoch, nanoseconds)


def _check_name(raw: bytes) -> None:
    if not (1 <= len(raw) <= 4096):
        raise FormatError("name must be 1 to 4096 bytes")
    if b"/" in raw or b"\x00" in raw:
        raise FormatError("name contains '/' or NUL")


def _check_media_type(raw: bytes) -> None:
    if not (1 <= len(raw) <= 255):
        raise FormatError("media type must be 1 to 255 bytes")
    if any(not (0x20 <= b <= 0x7E) for b in raw):
        raise FormatError("media type is not printable ASCII")


def encode_metadata(md: Metadata) -> bytes:
    out = bytearray()
    name = md.name.encode("utf-8") if md.name is not None else b""
    if md.name is not None:
        _check_name(name)
    out += struct.pack("<H", len(name)) + name
    mt = md.media_type.encode("ascii") if md.media_type is not None else b""
    if md.media_type is not None:
        _check_media_type(mt)
    out += struct.pack("<B", len(mt)) + mt
    if md.mtime is None:
        out += b"\x00"
    else:
        secs, nanos = md.mtime
        if not (0 <= nanos < 1_000_000_000):
            raise FormatError("nanoseconds out of range")
        out += b"\x01" + struct.pack("<qI", secs, nanos)
    return bytes(out)


def decode_metadata(raw: bytes) -> Metadata:
    """Parse encoded metadata, refusing anything that is not its unique encoding."""
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(raw):
            raise FormatError("metadata truncated")
        chunk = raw[pos:pos + n]
        pos += n
        return chunk

    (name_len,) = struct.unpack("<H", take(2))
    name = None
    if name_len:
        nb = take(name_len)
        _check_name(nb)
        try:
            name = nb.decode("utf-8")  # strict: invalid UTF-8 is refused
        except UnicodeDecodeError:
            raise FormatError("name is not valid UTF-8") from None
    (type_len,) = struct.unpack("<B", take(1))
    media_type = None
    if type_len:
        tb = take(type_len)
        _check_media_type(tb)
        media_type = tb.decode("ascii")
    flag = take(1)[0]
    mtime = None
    if flag == 0x01:
        secs, nanos = struct.unpack("<qI", take(12))
        if nanos >= 1_000_000_000:
            raise FormatError("nanoseconds out of range")
        mtime = (secs, nanos)
    elif flag != 0x00:
        raise FormatError("bad modification-time flag")
    if pos != len(raw):
        raise FormatError("trailing bytes after metadata")
    return Metadata(name, media_type, mtime)


def seal_metadata(encoded: bytes, H: bytes, keys: Subkeys) -> bytes:
    nonce = b3_keyed(keys.metadata_nonce_key, H + encoded, 24)
    cipher = ChaCha20_Poly1305.new(key=keys.metadata_key, nonce=nonce)
    cipher.update(H)
    ct, tag = cipher.encrypt_and_digest(encoded)
    return nonce + ct + tag


def open_metadata(sealed: bytes, H: bytes, keys: Subkeys) -> bytes:
    nonce, ct, tag = sealed[:24], sealed[24:-T], sealed[-T:]
    cipher = ChaCha20_Poly1305.new(key=keys.metadata_key, nonce=nonce)
    cipher.update(H)
    try:
        return cipher.decrypt_and_verify(ct, tag)
    except ValueError:
        raise FormatError("metadata does not open: wrong key") from None


# ---------------------------------------------------------------------------------------
# Manifest, §7
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    suite: int
    k: int
    m: int
    S: int
    length: int
    salt: bytes
    column_hashes: list[bytes]
    metadata_field: bytes  # plain (suite 0) or sealed (suite 1)
    public_part: bytes  # H

    @property
    def layout(self) -> Layout:
        return Layout(self.k, self.m, self.S, self.length)


def public_part(suite: int, k: int, m: int, S: int, length: int, salt: bytes,
                column_hashes: list[bytes]) -> bytes:
    head = MAGIC + struct.pack("<BBBBBIQ", FORMAT_VERSION, suite, ERASURE_RS, k, m, S, length)
    assert len(head) == 25
    return head + salt + b"".join(column_hashes)


def parse_manifest(raw: bytes) -> Manifest:
    """Parse and validate a manifest (§7); the caller checks BLAKE3(raw) = id."""
    if len(raw) > MAX_MANIFEST:
        raise FormatError("manifest larger than 12 612 bytes")
    if len(raw) < PUBLIC_PART_FIXED:
        raise FormatError("manifest truncated")
    if raw[0:8] != MAGIC:
        raise FormatError("bad magic")
    version, suite, code, k, m, S, length = struct.unpack("<BBBBBIQ", raw[8:25])
    if version != FORMAT_VERSION:
        raise FormatError(f"unsupported format version {version}")
    if suite not in (SUITE_PUBLIC, SUITE_XCHACHA):
        raise FormatError(f"unknown cipher suite {suite}")
    if code != ERASURE_RS:
        raise FormatError(f"unknown erasure code {code}")
    check_params(k, m, S, length)
    salt = raw[25:41]
    if suite == SUITE_PUBLIC and salt != bytes(16):
        raise FormatError("public manifest with a non-zero salt")
    n = k + m
    h_end = PUBLIC_PART_FIXED + 32 * n
    if len(raw) < h_end + 4:
        raise FormatError("manifest truncated")
    hashes = [raw[PUBLIC_PART_FIXED + 32 * j:PUBLIC_PART_FIXED + 32 * (j + 1)] for j in range(n)]
    (md_len,) = struct.unpack("<I", raw[h_end:h_end + 4])
    md = raw[h_end + 4:]
    if md_len != len(md):
        raise FormatError("metadata_len does not match the bytes that follow")
    if suite == SUITE_PUBLIC:
        decode_metadata(md)  # must parse
    elif len(md) < 24 + T:
        raise FormatError("sealed metadata shorter than 40 bytes")
    return Manifest(suite, k, m, S, length, salt, hashes, md, raw[:h_end])


# ---------------------------------------------------------------------------------------
# Text forms, §9
# ---------------------------------------------------------------------------------------

B32_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
B32_INDEX = {c: i for i, c in enumerate(B32_ALPHABET)}
READCAP_PREFIX = "mr1"
PUBLIC_ID_PREFIX = "mi1"
READCAP_CHARS = 112
PUBLIC_ID_CHARS = 61


def b32_encode(data: bytes) -> str:
    bits = int.from_bytes(data, "big")
    nbits = 8 * len(data)
    nchars = ceil_div(nbits, 5)
    bits <<= nchars * 5 - nbits  # unused trailing bits are zero
    return "".join(B32_ALPHABET[(bits >> (5 * (nchars - 1 - i))) & 31] for i in range(nchars))


def b32_decode(text: str, nbytes: int) -> bytes:
    """Decode exactly nbytes from unpadded base32; trailing bits must be zero."""
    nbits = 8 * nbytes
    if len(text) != ceil_div(nbits, 5):
        raise FormatError("wrong length")
    bits = 0
    for ch in text:
        bits = (bits << 5) | B32_INDEX[ch]
    spare = len(text) * 5 - nbits
    if bits & ((1 << spare) - 1):
        raise FormatError("non-zero trailing bits")
    return (bits >> spare).to_bytes(nbytes, "big")


def format_readcap(file_id: bytes, K: bytes) -> str:
    check = b3(READCAP_PREFIX.encode() + file_id + K, 4)
    return READCAP_PREFIX + b32_encode(file_id + K + check)


def format_public_id(file_id: bytes) -> str:
    check = b3(PUBLIC_ID_PREFIX.encode() + file_id, 4)
    return PUBLIC_ID_PREFIX + b32_encode(file_id + check)


@dataclass(frozen=True)
class Cap:
    file_id: bytes
    key: bytes | None  # None for a public id


def parse_cap(text: str) -> Cap:
    """Parse a readcap or a public id (either kind is accepted)."""
    s = text.strip().lower()
    if len(s) < 3 or s[0] != "m" or s[1] not in "ri" or not s[2].isdigit():
        raise FormatError("not a Mosaic capability (expected mr1… or mi1…)")
    if s[2] != "1":
        raise FormatError(f"unsupported capability version {s[2]} (newer software needed?)")
    prefix, body = s[:3], s[3:]
    for pos, ch in enumerate(body, start=3):
        if ch not in B32_INDEX:
            raise FormatError(f"invalid character {ch!r} at position {pos}")
    if prefix == READCAP_PREFIX:
        if len(s) != READCAP_CHARS:
            raise FormatError(f"wrong length {len(s)} for a readcap (expected 112)")
        payload = b32_decode(body, 68)
        file_id, K, check = payload[:32], payload[32:64], payload[64:]
        if b3(prefix.encode() + file_id + K, 4) != check:
            raise FormatError("wrong checksum (typo?)")
        return Cap(file_id, K)
    if len(s) != PUBLIC_ID_CHARS:
        raise FormatError(f"wrong length {len(s)} for a public id (expected 61)")
    payload = b32_decode(body, 36)
    file_id, check = payload[:32], payload[32:]
    if b3(prefix.encode() + file_id, 4) != check:
        raise FormatError("wrong checksum (typo?)")
    return Cap(file_id, None)


# ---------------------------------------------------------------------------------------
# Encoder (§2–§7), used for the known-answer vectors
# ---------------------------------------------------------------------------------------


@dataclass
class Encoded:
    manifest: bytes
    file_id: bytes
    columns: list[bytes]
    K: bytes | None


def encode(plaintext: bytes, *, k: int = 3, m: int = 2, S: int = DEFAULT_S,
           public: bool = False, K: bytes | None = None, salt: bytes | None = None,
           convergence_secret: bytes | None = None,
           metadata: Metadata = Metadata()) -> Encoded:
    check_params(k, m, S, len(plaintext))
    lay = Layout(k, m, S, len(plaintext))
    if public:
        suite, K, salt, keys = SUITE_PUBLIC, None, bytes(16), None
    else:
        suite = SUITE_XCHACHA
        if convergence_secret is not None:
            K = convergent_key(convergence_secret, k, m, S, plaintext)
            salt = convergent_salt(K)
        else:
            K = K if K is not None else os.urandom(32)
            salt = salt if salt is not None else os.urandom(16)
        keys = subkeys(K)

    columns = [bytearray() for _ in range(lay.n)]
    for i in range(lay.segments):
        seg = plaintext[i * S:i * S + lay.plain_len(i)]
        sealed = seal_segment(suite, lay, i, seg, keys.segment_key if keys else None, salt)
        for j, shard in enumerate(encode_shards(sealed, k, m, lay.shard_len(i))):
            columns[j] += shard
    columns_b = [bytes(c) for c in columns]
    assert all(len(c) == lay.column_len for c in columns_b)

    H = public_part(suite, k, m, S, len(plaintext), salt, [b3(c) for c in columns_b])
    md = encode_metadata(metadata)
    md_field = md if suite == SUITE_PUBLIC else seal_metadata(md, H, keys)
    manifest = H + struct.pack("<I", len(md_field)) + md_field
    parse_manifest(manifest)  # our own output must validate
    return Encoded(manifest, b3(manifest), columns_b, K)


# ---------------------------------------------------------------------------------------
# Decoder (§8)
# ---------------------------------------------------------------------------------------


def _read_blob(blob_dir: Path, h: bytes) -> bytes | None:
    p = blob_dir / h.hex()
    try:
        return p.read_bytes()
    except FileNotFoundError:
        return None


def decode_dir(store: str | os.PathLike, cap_text: str, *, log=None) -> tuple[bytes, Metadata]:
    """Decode the file named by cap_text from STORE/blobs/<hex>; return (plaintext, metadata).

    Uses any k available columns, preferring data columns; verifies the manifest hash,
    every column hash, every segment's zero padding and tag.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    blob_dir = Path(store) / "blobs"
    cap = parse_cap(cap_text)

    # Step 1: the manifest is the blob named by the file id.
    raw = _read_blob(blob_dir, cap.file_id)
    if raw is None:
        raise FormatError("manifest blob not found")
    if b3(raw) != cap.file_id:
        raise FormatError("manifest hash does not match the file id")
    mf = parse_manifest(raw)
    lay = mf.layout

    # Step 2: metadata (and the key material for private files).
    keys = None
    if mf.suite == SUITE_PUBLIC:
        metadata = decode_metadata(mf.metadata_field)
    else:
        if cap.key is None:
            raise FormatError("a public id cannot read a private file: a readcap is needed")
        keys = subkeys(cap.key)
        metadata = decode_metadata(open_metadata(mf.metadata_field, mf.public_part, keys))

    # Step 3: load columns, checking each in full against its hash. A missing column or
    # one with the wrong hash is simply unavailable.
    available: dict[int, bytes] = {}
    for j, h in enumerate(mf.column_hashes):
        data = _read_blob(blob_dir, h)
        if data is None:
            log(f"column {j}: missing")
            continue
        if b3(data) != h:
            log(f"column {j}: hash mismatch, ignored")
            continue
        if len(data) != lay.column_len:  # only an inconsistent manifest can cause this
            log(f"column {j}: wrong length, ignored")
            continue
        available[j] = data
    if len(available) < lay.k:
        raise FormatError(f"only {len(available)} of the k = {lay.k} columns needed are available")

    # Candidate k-subsets, best first: itertools.combinations over the sorted indices
    # yields the lowest indices first, so data columns are preferred.
    order = sorted(available)
    out = bytearray()
    seg_key = keys.segment_key if keys else None
    for i in range(lay.segments):
        Ls = lay.shard_len(i)
        start = i * lay.L
        shards = {j: available[j][start:start + Ls] for j in order}
        plaintext = None
        failures: list[tuple[int, ...]] = []
        # Step 4/5: rebuild, check padding, open; on failure try other k-subsets. Since
        # every column was checked in full against its hash, a failure here means the
        # uploader wrote columns that are not one Reed-Solomon codeword. Note that the
        # spec does not make the decoder check that all n columns agree, so such a file
        # can open to different plaintexts from different k-subsets.
        for subset in itertools.combinations(order, lay.k):
            data = rebuild_data_shards(lay.k, lay.m, {j: shards[j] for j in subset}, Ls)
            B = b"".join(data)
            sealed_len = lay.sealed_len(i)
            if any(B[sealed_len:]):
                failures.append(subset)
                continue
            try:
                plaintext = open_segment(mf.suite, lay, i, B[:sealed_len], seg_key, mf.salt)
            except FormatError:
                failures.append(subset)
                continue
            if failures:
                # Re-encode to learn which given shards were wrong.
                good = encode_shards(B[:sealed_len], lay.k, lay.m, Ls)
                bad = [j for j in order if shards[j] != good[j]]
                log(f"segment {i}: columns {bad} are inconsistent with the opened segment")
            break
        if plaintext is None:
            raise FormatError(f"segment {i}: no k-subset of the columns opens")
        out += plaintext

    if len(out) != lay.length:
        raise FormatError("decoded length does not match the manifest")
    return bytes(out), metadata


# ---------------------------------------------------------------------------------------
# Known-answer vectors, §11
# ---------------------------------------------------------------------------------------

VECTOR_PUBLIC = {
    "file_id": "30a9e548616124cbcf0cf2d77ff04c578c1077ba4ee6722c6ce86e04ac72f043",
    "column0": "46811bf785ad1582039c084c0616d1de178561da2ff79f8bd74575ee15eb804f",
    "column4": "1cad7371d6aff5ad594b6529cb31c11b830a9d0b3ccd8e72994a5249d60dfa6e",
    "manifest": (
        "6d6f736169636d6601000103020010000010270000000000000000000000000000000000000000"
        "000046811bf785ad1582039c084c0616d1de178561da2ff79f8bd74575ee15eb804f0eb5e94610"
        "d5344bafb825b5a260f8a0c1cc17f3632a1372f5c2c11bc25fc097b6e1be7f810bce716bc03537"
        "81e9f0992d63e85d9530089a69d1c24230ef8544fa8a8498af0849e01a717df62583d5bb0d5575"
        "1165799392bae69f324816d20d1cad7371d6aff5ad594b6529cb31c11b830a9d0b3ccd8e72994a"
        "5249d60dfa6e320000000a00766563746f722e62696e186170706c69636174696f6e2f6f637465"
        "742d73747265616d0180ab1f690000000000000000"
    ),
}

VECTOR_CONVERGENT = {
    "K": "efb440f7f275ba218df8d00cc53429a8b547d97c038214b490884152592c3092",
    "file_id": "ff99192e48caebcbca725c68ba21ac8f3b43759f4cd19bb85ad96f39e1c8fc33",
    "column0": "f6ed8fdf9e7c1b96b76de5da8a859e4d27595ee05a1c52cd9f5e28bc6d2c244c",
    "column4": "3db19910198807d96715310edd6f308ecefcf0335dcfee287a9421c06e3fe97d",
    "manifest": (
        "6d6f736169636d660101010302001000001027000000000000bd980762b22020a355e5729b83a1"
        "c42ef6ed8fdf9e7c1b96b76de5da8a859e4d27595ee05a1c52cd9f5e28bc6d2c244c07912904f8"
        "23a50c2efabb11106cb3b41025afacccf45d81e74d2ecc4261beb6b0b1046f84b52db44e652ffd"
        "5b9c50c227bcac45161363798fbb578784443d8d73d65680fdf467b54d6c1e2134a00ca3974ff0"
        "8d6acc831cf029c16ccf7299ac3db19910198807d96715310edd6f308ecefcf0335dcfee287a94"
        "21c06e3fe97d5a00000030eeef28b3ca26dc6d63fc80732fa0dd04ae6294211483fc48702a194d"
        "bd1872eae95102bcdd7716263dee266a7ca71f7e5b8a69a13939f5830e00cc1766457e0aa0f482"
        "95bda9c838c30ddd358303e20e224e3ac488f794894b"
    ),
}


def vector_plaintext() -> bytes:
    return bytes((7 * i + i // 251) % 256 for i in range(10_000))


VECTOR_METADATA = Metadata("vector.bin", "application/octet-stream", (1_763_683_200, 0))


def _check_vector(label: str, enc: Encoded, want: dict[str, str]) -> None:
    got = {
        "file_id": enc.file_id.hex(),
        "column0": b3(enc.columns[0]).hex(),
        "column4": b3(enc.columns[4]).hex(),
        "manifest": enc.manifest.hex(),
    }
    if "K" in want:
        got["K"] = enc.K.hex()
    for field, value in want.items():
        status = "ok" if got[field] == value else "MISMATCH"
        print(f"{label:10} {field:8} {status}")
        assert got[field] == value, f"{label} {field}: got {got[field]}, want {value}"


def _roundtrip_in_memory(enc: Encoded, cap: str, expect: bytes, lay: Layout) -> None:
    """Decode an encoded file from a temporary store with every choice of m lost columns."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        blobs = Path(tmp) / "blobs"
        blobs.mkdir()
        (blobs / enc.file_id.hex()).write_bytes(enc.manifest)
        for c in enc.columns:
            (blobs / b3(c).hex()).write_bytes(c)
        hashes = [b3(c) for c in enc.columns]
        for lost in itertools.combinations(range(lay.n), lay.m):
            # Columns with equal bytes share one blob (e.g. all-zero data shards, or k = 1
            # where every parity column equals the data column); deleting that blob loses
            # all of them, so skip sets that would lose more than m columns.
            gone = {hashes[j] for j in lost}
            if sum(h in gone for h in hashes) > lay.m:
                continue
            for j, c in enumerate(enc.columns):
                p = blobs / hashes[j].hex()
                if hashes[j] in gone:
                    p.unlink(missing_ok=True)
                else:
                    p.write_bytes(c)
            got, _ = decode_dir(tmp, cap, log=lambda _msg: None)
            assert got == expect, f"round trip failed with columns {lost} lost"


def run_vectors() -> None:
    pt = vector_plaintext()
    lay = Layout(3, 2, 4096, len(pt))

    pub = encode(pt, k=3, m=2, S=4096, public=True, metadata=VECTOR_METADATA)
    _check_vector("public", pub, VECTOR_PUBLIC)

    conv = encode(pt, k=3, m=2, S=4096, convergence_secret=b"\x42" * 32,
                  metadata=VECTOR_METADATA)
    _check_vector("convergent", conv, VECTOR_CONVERGENT)

    # Our own decoder on our own encodings, with every set of m columns lost.
    _roundtrip_in_memory(pub, format_public_id(pub.file_id), pt, lay)
    _roundtrip_in_memory(conv, format_readcap(conv.file_id, conv.K), pt, lay)
    print("round trips with every m-subset of columns lost: ok")

    # Cap text forms round-trip and have the documented lengths.
    rc = format_readcap(conv.file_id, conv.K)
    pi = format_public_id(pub.file_id)
    assert len(rc) == READCAP_CHARS and len(pi) == PUBLIC_ID_CHARS
    assert parse_cap("  " + rc.upper() + "\n") == Cap(conv.file_id, conv.K)
    assert parse_cap(pi) == Cap(pub.file_id, None)
    print(f"public id  {pi}")
    print(f"readcap    {rc}")
    print("all vectors match")


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--vectors", action="store_true",
                       help="re-compute the known-answer vectors of §11")
    group.add_argument("--decode", nargs=3, metavar=("DIR", "CAP", "OUT"),
                       help="decode CAP from DIR/blobs into OUT")
    args = ap.parse_args(argv)
    if args.vectors:
        run_vectors()
        return 0
    store, cap, out = args.decode
    try:
        plaintext, md = decode_dir(store, cap)
    except FormatError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    Path(out).write_bytes(plaintext)
    print(f"decoded {len(plaintext)} bytes; metadata: {md}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
