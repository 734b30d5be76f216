#!/usr/bin/env bash
# Everything the benchmarks need that the project itself does not: Debian's
# libmosquitto-dev (for the C publisher/subscriber) and wrk; py-spy, matplotlib and the
# MQTT client libraries of `bench.py clients` (requirements-clients.txt) in the project's
# venv (not in the project's dependencies); and Node-RED under bench/nodered.
# Idempotent: each step runs only when its result is missing.
set -euo pipefail
cd "$(dirname "$0")"
BENCH=$(pwd)
ROOT=$(cd .. && pwd)
VENV="$ROOT/.venv"

need_apt=""
[ -f /usr/include/mosquitto.h ] || need_apt="$need_apt libmosquitto-dev"
command -v wrk >/dev/null 2>&1 || need_apt="$need_apt wrk"
command -v cc >/dev/null 2>&1 || need_apt="$need_apt gcc libc6-dev"
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt="$need_apt mosquitto"
command -v influxd >/dev/null 2>&1 || need_apt="$need_apt influxdb"
command -v node >/dev/null 2>&1 || need_apt="$need_apt nodejs npm"
if [ -n "$need_apt" ]; then
  echo "setup: apt-get install$need_apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y $need_apt || { apt-get update && apt-get install -y $need_apt; }
fi

if [ ! -x "$VENV/bin/python" ]; then
  (cd "$ROOT" && make setup)
fi
"$VENV/bin/python" -c "import matplotlib" 2>/dev/null || "$VENV/bin/pip" install -q matplotlib
[ -x "$VENV/bin/py-spy" ] || "$VENV/bin/pip" install -q py-spy
# bench.py clients: the MQTT client libraries compared with the bridge's own connection
"$VENV/bin/python" -c "import mqtt5, gmqtt, aiomqtt" 2>/dev/null \
  || "$VENV/bin/pip" install -q -r requirements-clients.txt

mkdir -p bin
for prog in cpub csub; do
  if [ ! -x "bin/$prog" ] || [ "c/$prog.c" -nt "bin/$prog" ]; then
    echo "setup: building bin/$prog"
    cc -O2 -Wall -Wno-format-truncation -o "bin/$prog" "c/$prog.c" -lmosquitto
  fi
done

if [ ! -d nodered/node_modules/node-red ] || [ ! -d nodered/node_modules/node-red-contrib-influxdb ]; then
  echo "setup: npm install (Node-RED, node-red-contrib-influxdb) into bench/nodered"
  (cd nodered && npm install --no-audit --no-fund --loglevel=error)
fi
echo "setup: ok"
