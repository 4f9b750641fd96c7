#!/bin/sh
# sim's HTTP buyers against wrk on one fast endpoint (nginx-light answering 201 {"seat": 1}):
# requests/s of `wrk -c C -t C` and purchases/s of sim with C buyer processes, each keeping
# one connection alive and recording every purchase, in interleaved rounds; then sim's open
# loop at 80 % of its closed loop's mean, and the rate it held. A benchmark, not a test: it
# prints the figures quoted in docs/performance.md.
#
#   sh benches/service/against-wrk.sh [CONNECTIONS] [ROUNDS]
#
# Needs the Debian packages wrk and nginx-light, and a release build (cargo build --release).
set -eu
C=${1:-2}
ROUNDS=${2:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DIR=$(mktemp -d "${TMPDIR:-/tmp}/sim-against-wrk.XXXXXX")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed "s|DIR|$DIR|g; s|PORT|$PORT|g" "$HERE/nginx.conf" > "$DIR/nginx.conf"
nginx -c "$DIR/nginx.conf" -e "$DIR/error.log"
trap 'kill "$(cat "$DIR/nginx.pid")"; rm -rf "$DIR"' EXIT
echo 'wrk.method = "POST"' > "$DIR/post.lua"
sed "s|PORT|$PORT|g; s|BUYERS|$C|g" "$HERE/endpoint.toml" > "$DIR/endpoint.toml"
for round in $(seq "$ROUNDS"); do
  wrk -t"$C" -c"$C" -d3s -s "$DIR/post.lua" "http://127.0.0.1:$PORT/o" | awk -v r="$round" '/Requests\/sec/ {print "round " r ": wrk " $2 " requests/s"}'
  rm -rf "$DIR/out"
  "$ROOT/target/release/sim" run "$DIR/endpoint.toml" --out "$DIR/out" --keep-histories none > /dev/null
  python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["runs"][0]["trials"][0]; print("round", sys.argv[2] + ": sim", round(t["purchases_per_s"]), "purchases/s,", t["attempts"], "recorded")' "$DIR/out/results.json" "$round" | tee -a "$DIR/closed.txt"
done
RATE=$(awk '{s += $4; n++} END {printf "%d", 0.8 * s / n}' "$DIR/closed.txt")
# Each buyer's share of 3 s at that rate, as attempts: a trial, not a soak, keeps every
# purchase's send time for the service time.
ATTEMPTS=$((RATE * 3 / C))
sed "s|^duration_ms = 3000|attempts = $ATTEMPTS\nrate = $RATE|" "$DIR/endpoint.toml" > "$DIR/open.toml"
rm -rf "$DIR/out"
"$ROOT/target/release/sim" run "$DIR/open.toml" --out "$DIR/out" --keep-histories none > /dev/null
python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["runs"][0]["trials"][0]; r=float(sys.argv[2]); print("open loop at", int(r), "purchases/s planned:", round(t["purchases_per_s"]), "held (" + format(100 * t["purchases_per_s"] / r, ".1f") + " %); p99 from the planned time", t["latency"]["p99_us"], "us, service time p99", t["service_time"]["p99_us"], "us")' "$DIR/out/results.json" "$RATE"
