#!/usr/bin/env bash
# Regenerates the seed corpora of the fuzz harnesses in tests/fuzz/corpus/
# from the shipped sample (configs/sample-events.ndjson) and example configs:
# envelopes, bodies (plain, gzip, zstd, JSON array), policies, the agent
# config, a warm and a cold archive segment (cold sealed with the harnesses'
# fixed test key, tests/fuzz/fuzz.h) and a signed incident bundle (signed
# with a throwaway key whose public half is written to
# tests/fuzz/bundle-test.pub). Crash reproducers under
# tests/fuzz/regressions/ are kept. Needs a built flightrec (BUILD, default
# build) and zstd/gzip. Run by hand; the result is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
FR="$BUILD/flightrec"
C=tests/fuzz/corpus
# only what this script makes: the otlp and query seeds are written by hand
# (segment: *-v3.seg and *-v4.seg, written by formats 3 and 4, are kept)
rm -rf "$C"/{wire,redact,config,bundle,body}; mkdir -p "$C"/{wire,redact,config,segment,bundle,body}
rm -f "$C"/segment/{warm,cold}.seg "$C"/segment/{warm,cold}.seg.raw
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export FLIGHTREC_KEYS_DIR="$tmp/keys" # no key of this script in ~/.config
sample=configs/sample-events.ndjson

# wire: one envelope per file, a line of each kind
for k in conversation turn provider tool middleware transport runtime timeline sem error; do
  grep -m1 "\"kind\":\"$k\"" "$sample" > "$C/wire/$k.json" || true
done
find "$C/wire" -size 0 -delete
# redact: 0x00 + text (free text with secrets and personal data), 0x01 + a user policy
printf '\0%s' 'key sk-proj-Zq8XbN3kLm5PqR7sT9vW2yA4cE6gI8kM0oQ mail jane.doe@example.com card 4111 1111 1111 1111 from 10.1.2.3' > "$C/redact/text"
printf '\0%s' 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2lnbmF0dXJl https://bob:hunter2@db.example.com' > "$C/redact/bearer"
printf '\0' > "$C/redact/event"; grep -m1 '"kind":"provider"' "$sample" >> "$C/redact/event"
printf '\1%s' 'actions:
  pii: hash
fields:
  - {kind: provider, path: data.request, tag: secret}
detectors:
  - name: ticket
    class: pii
    pattern: "TICKET-[0-9]{6}"
' > "$C/redact/policy"
# config
cp configs/flightrec.yaml "$C/config/flightrec.yaml"
printf 'http:\n  listen: 127.0.0.1:8080\n  auth_token_file: /dev/null\nstorage:\n  path: x.db\n' > "$C/config/small.yaml"
# body: encoding byte (0 identity, 1 gzip, 2 zstd, 3 snappy, 4 x-snappy-framed, 5 lz4) + body
head -20 "$sample" > "$tmp/body.ndjson"
{ printf '\0'; cat "$tmp/body.ndjson"; } > "$C/body/ndjson"
{ printf '\1'; gzip -c "$tmp/body.ndjson"; } > "$C/body/gzip"
{ printf '\2'; zstd -q -c "$tmp/body.ndjson"; } > "$C/body/zstd"
{ printf '\5'; lz4 -q -c "$tmp/body.ndjson"; } > "$C/body/lz4"
# snappy written here (no packaged tool writes it): a block of literals, and the framing
# format with a stored chunk, padding and a compressed chunk, each with its masked CRC-32C
python3 - "$tmp/body.ndjson" "$C/body" <<'PY'
import struct, sys
data = open(sys.argv[1], 'rb').read()
def varint(n):
    out = b''
    while n >= 0x80:
        out += bytes([n & 0x7f | 0x80]); n >>= 7
    return out + bytes([n])
def block(d):  # literals of at most 65,536 bytes each (tag 62: a 3-byte length)
    out = varint(len(d))
    for i in range(0, len(d), 65536):
        part = d[i:i + 65536]
        out += bytes([62 << 2]) + struct.pack('<I', len(part) - 1)[:3] + part
    return out
def crc32c(d):
    c = 0xffffffff
    for b in d:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ 0x82f63b78 if c & 1 else c >> 1
    c ^= 0xffffffff
    return ((c >> 15 | c << 17) + 0xa282ead8) & 0xffffffff
def chunk(t, payload):
    return bytes([t]) + struct.pack('<I', len(payload))[:3] + payload
half = len(data) // 2
framed = (chunk(0xff, b'sNaPpY') + chunk(0x01, struct.pack('<I', crc32c(data[:half])) + data[:half])
          + chunk(0xfe, b'\0\0') + chunk(0x00, struct.pack('<I', crc32c(data[half:])) + block(data[half:])))
open(sys.argv[2] + '/snappy', 'wb').write(b'\3' + block(data))
open(sys.argv[2] + '/snappy-framed', 'wb').write(b'\4' + framed)
PY
{ printf '\0['; head -5 "$sample" | paste -sd, -; printf ']'; } > "$C/body/array"
# segment: a warm and a cold one (the fuzz key as the cold and the archive key)
mkdir -p "$tmp/keys"
printf '%s\n' "$(printf 'FUZZ TEST KEY 01FUZZ TEST KEY 02' | od -An -tx1 | tr -d ' \n')" > "$tmp/keys/cold.key"
chmod 600 "$tmp/keys/cold.key"
head -60 "$sample" > "$tmp/seg.ndjson"
"$FR" ingest --no-progress --db "$tmp/db" "$tmp/seg.ndjson" 2> /dev/null
cp -p "$tmp/keys/cold.key" "$tmp/keys/archive.key"
printf 'archive_key: %s/keys/archive.key\nhot:\n  max_age: 1d\nwarm:\n  max_age: 30d\ncold:\n  key: %s/keys/cold.key\n' "$tmp" "$tmp" > "$tmp/ret.yaml"
"$FR" retention run --no-progress --db "$tmp/db" --policy "$tmp/ret.yaml" --now 2026-02-20 > /dev/null 2>&1
# segment: a selector byte (0: the harness recomputes the checksum, 1: as is) + the file
seg() { { printf '\0'; cat "$1"; } > "$2"; { printf '\1'; cat "$1"; } > "$2.raw"; }
seg "$(find "$tmp/archive" -name '*.seg' | head -1)" "$C/segment/warm.seg"
"$FR" retention run --no-progress --db "$tmp/db" --policy "$tmp/ret.yaml" --now 2026-04-01 > /dev/null 2>&1
seg "$(find "$tmp/archive" -name '*.seg' | head -1)" "$C/segment/cold.seg"
# bundle: a small conversation, signed with a throwaway key
"$FR" ingest --no-progress --db "$tmp/b.db" "$sample" 2> /dev/null
"$FR" incident keygen --key "$tmp/sign.pem" --pubkey tests/fuzz/bundle-test.pub > /dev/null
"$FR" incident create --db "$tmp/b.db" --conv c-000002 --key "$tmp/sign.pem" \
  --out "$C/bundle/c-000002.tar.zst" > /dev/null 2>&1
rm -f "$C"/bundle/*.sha256
ls -l "$C"/*/ | awk 'NF > 5 {print $5, $9}' | sort -k2 | head -40
