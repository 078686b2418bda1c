#!/usr/bin/env bash
# A small, bounded run of every load-test command against debug builds, so
# the harness cannot rot. Seconds each, a few hundred users; loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BIN_DIR:-target/debug}
PG=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}

echo "== sg-load journey (Goose)"
timeout 120 "$B/sg-load" journey --users 20 --hatch-rate 20 --seconds 5 --gate-rate 100 --server-bin "$B/showgate" | tail -25

echo "== sg-load flash-sale"
db="sg_t_loadsmoke_$$"
psql "$PG/postgres" -qc "CREATE DATABASE $db"
timeout 180 "$B/sg-load" flash-sale --shoppers 400 --sockets 80 --rate 200 --nodes 2 --max-seconds 20 \
  --database-url "$PG/$db" --server-bin "$B/showgate"
psql "$PG/postgres" -qc "CREATE DATABASE ${db}_best"
timeout 180 "$B/sg-load" flash-sale --shoppers 400 --sockets 80 --rate 200 --nodes 2 --max-seconds 20 \
  --database-url "$PG/${db}_best" --server-bin "$B/showgate" --best

echo "== sg-load ws-idle"
timeout 120 "$B/sg-load" ws-idle --sockets 300 --server-bin "$B/showgate"

echo "== sg-load stampede"
timeout 120 "$B/sg-load" stampede --sockets 300 --nodes 2 --processes 2 --server-bin "$B/showgate"
echo "== sg-load churn"
timeout 120 "$B/sg-load" churn --sockets 300 --rate 100 --seconds 2 --shoppers 50 --server-bin "$B/showgate"

echo "== sg-load bench"
timeout 240 "$B/sg-load" bench --parts holds,joins,fanout --fanout 500 --seconds 2 --connections 16 --server-bin "$B/showgate"
echo "load-test smoke: every command ran"
