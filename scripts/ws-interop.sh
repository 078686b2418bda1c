#!/usr/bin/env bash
# The seat socket against a second, independent WebSocket implementation
# (Python `websockets`, pinned, in a venv under ~/.cache): with and without
# permessage-deflate, fragmented and compressed client messages, the 64 KiB
# limit on a message's inflated size (tests/interop/seat_socket.py). Needs
# the debug binary (SHOWGATE_BIN for another). CI runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

WEBSOCKETS_VERSION=15.0.1
VENV=${XDG_CACHE_HOME:-$HOME/.cache}/showgate-interop
BIN=${SHOWGATE_BIN:-target/debug/showgate}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import websockets, sys; sys.exit(websockets.__version__ != '$WEBSOCKETS_VERSION')" 2>/dev/null; then
  echo "ws-interop: installing websockets $WEBSOCKETS_VERSION into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "websockets==$WEBSOCKETS_VERSION"
fi
[ -x "$BIN" ] || { echo "ws-interop: $BIN is missing; run cargo build first" >&2; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp)
BIND="127.0.0.1:$port" RATE_LIMIT_USER_PER_SEC=0 RATE_LIMIT_IP_PER_SEC=0 RUST_LOG=warn "$BIN" >"$log" 2>&1 &
server=$!
trap 'kill -9 $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
  sleep 0.1
done
SHOWGATE_URL="http://127.0.0.1:$port" "$VENV/bin/python" tests/interop/seat_socket.py
if grep -q "panicked" "$log"; then
  grep -B2 -A10 "panicked" "$log" >&2
  echo "ws-interop: the server panicked" >&2
  exit 1
fi
