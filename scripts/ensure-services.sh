#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on 127.0.0.1 (they run on development machines
# and CI); start them with the machine's own commands if they stopped.
set -uo pipefail

wait_for() {  # name, check command
  for _ in $(seq 1 30); do
    if eval "$2" >/dev/null 2>&1; then echo "$1: up"; return 0; fi
    sleep 1
  done
  echo "$1: not reachable" >&2
  return 1
}

port_open() {  # port
  python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)" "$1"
}

if ! port_open 5432 >/dev/null 2>&1; then
  command -v pg_ctlcluster >/dev/null && pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
wait_for postgresql "port_open 5432" || exit 1

if ! port_open 6379 >/dev/null 2>&1; then
  command -v redis-server >/dev/null && redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
fi
wait_for redis "port_open 6379" || exit 1
