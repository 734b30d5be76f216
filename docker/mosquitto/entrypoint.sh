#!/bin/sh
# Entrypoint of the `mosquitto` service in docker-compose.yml (eclipse-mosquitto:2, Alpine).
#
# It starts the broker and makes it re-read its password file when it changes. The
# devicedata containers write that file into the shared `broker-auth` volume. They use
# bridge/registry/broker_sync.py, the same code as the local stack. On one machine that code
# sends SIGHUP to the broker itself, but from another container it cannot. So this script
# compares the file's checksum every MOSQUITTO_RELOAD_SECONDS. When the checksum changes,
# it sends the broker SIGHUP: Mosquitto re-reads it and disconnects any client whose
# credentials no longer hold. broker_sync replaces the file atomically and only when its
# content changes, so the broker never reads a half-written file and a quiet system causes
# no reloads. The access rules (dynamic-security.json in the same volume) are not watched:
# the broker writes that file itself, and reads it only when it starts.
#
#   entrypoint.sh               run the broker and the reload loop (the container's process)
#   entrypoint.sh healthcheck   exit 0 when the broker listens on MOSQUITTO_PORT
#
# Plain POSIX sh (BusyBox ash in the image); `sh -n` and tests/integration/test_compose.py check it.
set -u

CONFIG="${MOSQUITTO_CONFIG:-/mosquitto/config/mosquitto.conf}"
AUTH_DIR="${MOSQUITTO_AUTH_DIR:-/mosquitto/auth}"
DATA_DIR="${MOSQUITTO_DATA_DIR:-/mosquitto/data}"
PORT="${MOSQUITTO_PORT:-1883}"
INTERVAL="${MOSQUITTO_RELOAD_SECONDS:-1}"
BROKER="${MOSQUITTO_BIN:-/usr/sbin/mosquitto}"
BROKER_USER="${MOSQUITTO_USER:-mosquitto}"
ADMIN_USER="${MOSQUITTO_ADMIN_USER:-devicedata-admin}"  # = DEVICEDATA_MQTT_ADMIN_USERNAME
PASSWD="$AUTH_DIR/passwd"
ACCESS="$AUTH_DIR/dynamic-security.json"

log() {
    echo "$(date -u +%Y-%m-%dT%H:%M:%S): reload: $*" >&2
}

# A socket in state LISTEN (0A) on the port. /proc/net/tcp lists only the sockets of
# this container's network namespace, and the image has no client that could log in.
healthcheck() {
    hex=$(printf '%04X' "$PORT")
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
        awk -v port=":$hex" '$2 ~ (port "$") && $4 == "0A" { found = 1 } END { exit !found }'
}

if [ "${1:-}" = healthcheck ]; then
    healthcheck
    exit $?
fi

fingerprint() {
    cksum < "$PASSWD" 2>/dev/null
}

give_to_broker() {
    if [ "$(id -u)" = 0 ]; then
        chown "$BROKER_USER:$BROKER_USER" "$@" || log "warning: cannot chown $* to $BROKER_USER"
    fi
}

# Creates $1 with content $2 unless it exists. The file is written aside and linked into
# place: if a devicedata container writes the real file meanwhile, link fails and the
# real file stays.
placeholder() {
    tmp="$AUTH_DIR/.placeholder.$$"
    printf '%s' "$2" > "$tmp" && chmod 600 "$tmp" && give_to_broker "$tmp"
    ln "$tmp" "$1" 2>/dev/null || true
    rm -f "$tmp"
}

mkdir -p "$AUTH_DIR" "$DATA_DIR"
# Whichever container first mounts an empty named volume decides its owner. In compose the
# `init` service (app image, uid 1883) mounts it first. This chown covers the other order.
# The app user and the broker user share uid 1883, so both can use the directory either way.
give_to_broker "$AUTH_DIR" "$DATA_DIR"

if [ ! -e "$PASSWD" ] || [ ! -e "$ACCESS" ]; then
    # Normally the `init` service has written both files already. Mosquitto cannot start
    # without them. An empty password file admits nobody, and the placeholder rules let
    # only the admin change them. The first sync by the bridge or the API replaces the
    # password file (the loop below reloads the broker) and sends the rules.
    log "no $PASSWD or $ACCESS yet: starting with placeholders that admit nobody"
    placeholder "$PASSWD" ""
    # The admin may change the rules over $CONTROL from the start, so the first sync of
    # the bridge or the API can bring them in step without a restart.
    placeholder "$ACCESS" "$(printf '{"defaultACLAccess": {"publishClientSend": false, "publishClientReceive": false, "subscribe": false, "unsubscribe": true}, "roles": [{"rolename": "dynsec-admin", "acls": [{"acltype": "publishClientSend", "topic": "$CONTROL/dynamic-security/#", "allow": true}, {"acltype": "publishClientReceive", "topic": "$CONTROL/dynamic-security/#", "allow": true}, {"acltype": "subscribePattern", "topic": "$CONTROL/dynamic-security/#", "allow": true}]}], "clients": [{"username": "%s", "roles": [{"rolename": "dynsec-admin"}]}]}' "$ADMIN_USER")"
fi

# Taken before the broker reads the files, so that no change can slip between the two.
last=$(fingerprint)
"$BROKER" -c "$CONFIG" &
pid=$!
log "started mosquitto (pid $pid); watching $PASSWD every ${INTERVAL}s"

# `docker stop` signals this script (PID 1). Pass the signal on and let the loop end when
# the broker has saved its state and exited.
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
trap 'kill -HUP "$pid" 2>/dev/null' HUP

while kill -0 "$pid" 2>/dev/null; do
    sleep "$INTERVAL" &
    wait $! 2>/dev/null  # returns at once when a trapped signal arrives
    now=$(fingerprint)
    if [ "$now" != "$last" ] && kill -0 "$pid" 2>/dev/null; then
        last=$now
        log "password file changed: sending SIGHUP to mosquitto (pid $pid)"
        kill -HUP "$pid"
    fi
done

wait "$pid"
status=$?
log "mosquitto exited with status $status"
exit "$status"
