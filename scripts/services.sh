#!/usr/bin/env bash
# Makes sure the services the tests need answer on this machine: Redis on
# 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres).
# Starts them if they are installed but stopped, installs them from Debian's
# packages on a fresh machine. Idempotent; safe to run again.
set -euo pipefail

log() { echo "services: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for() { # name, command...
  local name=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then log "$name is up"; return 0; fi
    sleep 0.5
  done
  log "$name did not come up"; return 1
}

# --- Redis -------------------------------------------------------------------
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  log "installing redis"; apt_install redis-server redis-tools
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting redis"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/showgate-redis.log
fi
wait_for redis redis-cli -h 127.0.0.1 -p 6379 ping

# --- Redis Cluster (three masters and three replicas on 7101-7106) --------------
# The tests seed from 7101-7103; the replicas make failover possible. Tests
# that kill a master start a cluster of their own on other ports.
cluster_ports="7101 7102 7103 7104 7105 7106"
for p in $cluster_ports; do
  if ! redis-cli -p "$p" ping >/dev/null 2>&1; then
    dir=/tmp/showgate-cluster/$p
    rm -rf "$dir"; mkdir -p "$dir"
    redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" \
      --cluster-node-timeout 2000 --dir "$dir" --save "" --appendonly no --daemonize yes --logfile "$dir/redis.log"
  fi
done
for p in $cluster_ports; do wait_for "redis cluster node $p" redis-cli -p "$p" ping; done
cluster_whole() {
  redis-cli -p 7101 cluster info 2>/dev/null | grep -q "cluster_state:ok" \
    && [ "$(redis-cli -p 7101 cluster nodes 2>/dev/null | grep -c connected)" = 6 ]
}
if ! cluster_whole; then
  log "creating the redis cluster (3 masters, 3 replicas)"
  for p in $cluster_ports; do
    redis-cli -p "$p" flushall >/dev/null 2>&1 || true
    redis-cli -p "$p" cluster reset hard >/dev/null 2>&1 || true
  done
  redis-cli --cluster create 127.0.0.1:7101 127.0.0.1:7102 127.0.0.1:7103 \
    127.0.0.1:7104 127.0.0.1:7105 127.0.0.1:7106 --cluster-replicas 1 --cluster-yes >/dev/null
fi
cluster_ok() { for p in $cluster_ports; do redis-cli -p "$p" cluster info | grep -q "cluster_state:ok" || return 1; done; }
wait_for "redis cluster" cluster_ok

# --- PostgreSQL --------------------------------------------------------------
if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
  log "installing postgresql"; apt_install postgresql postgresql-client
fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  version=$(ls /etc/postgresql | sort -V | tail -1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  # Local development trust, as on the project's machines.
  if ! grep -q "showgate-trust" "$hba"; then
    as_root sed -i '1i host all all 127.0.0.1/32 trust # showgate-trust\nhost all all ::1/128 trust # showgate-trust\nlocal all all trust # showgate-trust' "$hba"
  fi
  log "starting postgresql $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
fi
wait_for postgres pg_isready -h 127.0.0.1 -p 5432 -q
psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE test"

# Test databases from earlier runs (each test makes its own, sg_t_<uuid>).
psql -h 127.0.0.1 -U postgres -d postgres -tAc \
  "SELECT format('DROP DATABASE IF EXISTS %I;', datname) FROM pg_database WHERE datname LIKE 'sg\_t\_%'" \
  | psql -h 127.0.0.1 -U postgres -d postgres -q >/dev/null
