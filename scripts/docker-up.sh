#!/usr/bin/env bash
# Makes sure a Docker engine answers on this machine: installs Debian's docker.io and
# docker-compose when missing, starts dockerd in the background when `docker info`
# fails, and waits (bounded) until it answers. Safe to run again.
set -euo pipefail

if docker info >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker-compose >/dev/null 2>&1; then
  echo "docker-up: installing docker.io and docker-compose" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io docker-compose >/dev/null
fi
if ! pgrep -x dockerd >/dev/null 2>&1; then
  echo "docker-up: starting dockerd" >&2
  nohup dockerd >/tmp/dockerd.log 2>&1 &
fi
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "docker-up: the engine did not answer within 60 s; see /tmp/dockerd.log" >&2
tail -20 /tmp/dockerd.log >&2 || true
exit 1
