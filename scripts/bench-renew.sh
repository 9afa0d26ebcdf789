#!/usr/bin/env bash
# Benchmark: what `moonauth renew` adds in front of a worker command.
#   1. nothing (the baseline: starting a no-op process),
#   2. `moonauth renew codex --dir D` and `moonauth renew claude --dir D` on fresh logins
#      (no refresh needed: read the file, decide, exit; no lock is taken),
#   3. the same through the lock path: `--lead` puts the login inside the lead while a
#      loopback token service answers every refresh (lease + Claude's locks + refresh +
#      atomic write + fsync),
#   4. `moonauth renew codex --dir D1 … --dir D8` over 8 logins, one of them needing a
#      refresh (reset before each run).
# Medians over many runs (hyperfine -N). Everything is local: a Python token service on
# 127.0.0.1 stands in for the real endpoints. Target: under 5 ms added per run for (2).
#
# Usage: scripts/bench-renew.sh [--runs N] [--bin PATH]
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs=300
bin="${CARGO_TARGET_DIR:-$repo/target}/release/moonauth"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --bin) bin="$2"; shift 2 ;;
        *) echo "bench-renew: unknown argument $1" >&2; exit 2 ;;
    esac
done
command -v hyperfine >/dev/null || { apt-get install -y -qq hyperfine >/dev/null; }
command -v python3 >/dev/null || { echo "bench-renew: needs python3" >&2; exit 1; }
[[ -x "$bin" ]] || (cd "$repo" && cargo build --release -q)

work="$(mktemp -d "${TMPDIR:-/tmp}/moonauth-bench-renew.XXXXXX")"
server_pid=""
cleanup() {
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# A token service that answers every refresh (Codex and Claude shapes) at once.
cat >"$work/token.py" <<'PY'
import base64, http.server, json, sys, time
def jwt(claims):
    enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    return "eyJhbGciOiJub25lIn0." + enc(json.dumps(claims).encode()) + ".c2ln"
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        exp = int(time.time()) + 10 * 86400
        body = json.dumps({"id_token": jwt({"exp": exp, "email": "bench@example.com"}),
                           "access_token": jwt({"exp": exp}), "refresh_token": "rt_bench",
                           "expires_in": 28800, "scope": "user:inference user:profile"}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
python3 "$work/token.py" >"$work/port" &
server_pid=$!
for _ in $(seq 100); do [[ -s "$work/port" ]] && break; sleep 0.05; done
port="$(cat "$work/port")"
export CODEX_REFRESH_TOKEN_URL_OVERRIDE="http://127.0.0.1:$port/oauth/token"
export MOONAUTH_CLAUDE_TOKEN_URL="http://127.0.0.1:$port/v1/oauth/token"

# Logins: Codex valid for 10 days, Claude for 8 hours; one Codex login expired.
python3 - "$work" <<'PY'
import base64, json, os, sys, time
work = sys.argv[1]
def jwt(claims):
    enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    return "eyJhbGciOiJub25lIn0." + enc(json.dumps(claims).encode()) + ".c2ln"
now = int(time.time())
def codex(exp):
    return {"OPENAI_API_KEY": None, "tokens": {"id_token": jwt({"exp": exp, "email": "b@example.com"}),
            "access_token": jwt({"exp": exp}), "refresh_token": "rt_bench", "account_id": "a"},
            "last_refresh": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3600))}
def write(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f: json.dump(value, f)
    os.chmod(path, 0o600)
write(f"{work}/codex/auth.json", codex(now + 10 * 86400))
write(f"{work}/claude/.credentials.json", {"claudeAiOauth": {"accessToken": "sk-ant-oat01-bench",
      "refreshToken": "sk-ant-ort01-bench", "expiresAt": (now + 8 * 3600) * 1000,
      "scopes": ["user:inference", "user:profile"], "subscriptionType": "max"}})
for i in range(1, 9):
    write(f"{work}/fleet/d{i}/auth.json", codex(now + 10 * 86400))
write(f"{work}/expired.json", codex(now - 60))
PY

dirs=()
for i in $(seq 1 8); do dirs+=(--dir "$work/fleet/d$i"); done

hyperfine -N --style basic --warmup 20 --runs "$runs" --export-json "$work/fresh.json" \
    -n nothing "true" \
    -n "renew codex (fresh)" "$bin renew codex --dir $work/codex" \
    -n "renew claude (fresh)" "$bin renew claude --dir $work/claude"

hyperfine -N --style basic --warmup 5 --runs "$((runs / 3))" --export-json "$work/locked.json" \
    -n "renew codex (lease + refresh + write)" "$bin renew codex --dir $work/codex --lead 30d" \
    -n "renew claude (lease + Claude locks + refresh + write)" "$bin renew claude --dir $work/claude --lead 30d"

hyperfine -N --style basic --warmup 5 --runs "$((runs / 3))" --export-json "$work/fleet.json" \
    --prepare "cp $work/expired.json $work/fleet/d1/auth.json" \
    -n "renew 8 logins, 1 refresh" "$bin renew codex ${dirs[*]}"

python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
rows = []
for name in ("fresh", "locked", "fleet"):
    for r in json.load(open(f"{work}/{name}.json"))["results"]:
        rows.append((r["command"], r["median"] * 1000, r["mean"] * 1000, r["stddev"] * 1000 if r["stddev"] else 0.0))
base = rows[0][1]
print("\n| command | median ms | mean ms | σ ms | median added over nothing |")
print("|---|---|---|---|---|")
for cmd, med, mean, sd in rows:
    print(f"| {cmd} | {med:.2f} | {mean:.2f} | {sd:.2f} | {med - base:+.2f} |")
PY
