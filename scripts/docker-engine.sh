#!/usr/bin/env bash
# Start (or reuse) Wingman's private Docker Engine for development and CI.
#
# The engine listens only on its own unix socket, keeps its state in its own data and exec
# roots, creates no bridge and no iptables rules: containers run with network mode `none`.
# It also makes sure the test image `wingman-test/busybox:latest` exists (built with
# `docker import` from the host's static busybox; no registry is needed), and that the
# compose binary the gateway runs for `compose up` / `pull` is installed (Debian's
# `docker-compose` 1.29; the gateway's WINGMAN_COMPOSE_BIN defaults to it).
#
# Idempotent: safe to run repeatedly. Needs root the first time (apt-get, dockerd).
#
# Usage:
#   eval "$(scripts/docker-engine.sh)"     # stdout is only the export line(s)
#
# Environment (all optional):
#   WINGMAN_DOCKER_SOCKET     socket path            (default /var/run/wingman-docker/docker.sock)
#   WINGMAN_DOCKER_DATA_ROOT  dockerd --data-root    (default /var/lib/wingman-docker)
#   WINGMAN_DOCKER_EXEC_ROOT  dockerd --exec-root    (default /var/run/wingman-docker/exec)
#   WINGMAN_DOCKER_LOG        dockerd log file       (default /var/log/wingman-dockerd.log)
#   WINGMAN_DOCKER_WAIT_SECS  start-up wait bound    (default 60)
#
# Output: progress on stderr; on stdout `export DOCKER_HOST=unix://<socket>`.
# Exit status: 0 when the engine answers and the test image exists, non-zero otherwise
# (with the tail of the dockerd log when the engine did not come up).
set -euo pipefail

SOCKET="${WINGMAN_DOCKER_SOCKET:-/var/run/wingman-docker/docker.sock}"
DATA_ROOT="${WINGMAN_DOCKER_DATA_ROOT:-/var/lib/wingman-docker}"
EXEC_ROOT="${WINGMAN_DOCKER_EXEC_ROOT:-/var/run/wingman-docker/exec}"
LOG_FILE="${WINGMAN_DOCKER_LOG:-/var/log/wingman-dockerd.log}"
WAIT_SECS="${WINGMAN_DOCKER_WAIT_SECS:-60}"
PID_FILE="$(dirname "$SOCKET")/dockerd.pid"
HOST="unix://$SOCKET"
IMAGE="wingman-test/busybox:latest"

log() { printf 'docker-engine: %s\n' "$*" >&2; }
die() { printf 'docker-engine: error: %s\n' "$*" >&2; exit 1; }

# Debian's client (/usr/bin/docker, 20.10) matches the daemon; a newer client on PATH
# (e.g. /usr/local/bin/docker 28.x) also works because it negotiates the API version.
# Chosen after install_packages, since /usr/bin/docker arrives with docker.io.
docker_client() {
    if [[ -x /usr/bin/docker ]]; then echo /usr/bin/docker; else command -v docker; fi
}

docker_cli() {
    "$(docker_client)" -H "$HOST" "$@"
}

engine_answers() {
    [[ -S "$SOCKET" ]] && timeout 5 "$(docker_client)" -H "$HOST" version >/dev/null 2>&1
}

busybox_is_static() {
    # ldd exits non-zero for a static binary ("not a dynamic executable").
    [[ -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1
}

install_packages() {
    if command -v dockerd >/dev/null 2>&1 && busybox_is_static && command -v docker-compose >/dev/null 2>&1; then
        return 0
    fi
    [[ $EUID -eq 0 ]] || die "dockerd, docker-compose or a static /bin/busybox is missing; run as root to install docker.io docker-compose busybox-static"
    log "installing docker.io, docker-compose and busybox-static"
    # Keep package scripts from starting the system dockerd (which would create docker0).
    local own_policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        own_policy=1
    fi
    local status=0
    {
        DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                docker.io docker-compose busybox-static
    } >&2 || status=$?
    if [[ -n "$own_policy" ]]; then rm -f /usr/sbin/policy-rc.d; fi
    [[ $status -eq 0 ]] || die "apt-get failed (exit $status)"
    command -v dockerd >/dev/null 2>&1 || die "dockerd still missing after installing docker.io"
    busybox_is_static || die "/bin/busybox is not a static binary after installing busybox-static"
    command -v docker-compose >/dev/null 2>&1 || die "docker-compose still missing after installing docker-compose"
}

dockerd_running_from_pidfile() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] && [[ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" == dockerd ]]
}

start_engine() {
    if engine_answers; then
        log "engine already answers on $SOCKET"
        return 0
    fi
    [[ $EUID -eq 0 ]] || die "no engine answers on $SOCKET and starting one needs root"
    if dockerd_running_from_pidfile; then
        log "dockerd (pid $(cat "$PID_FILE")) is running but not answering yet; waiting"
    else
        mkdir -p "$(dirname "$SOCKET")" "$DATA_ROOT" "$EXEC_ROOT" "$(dirname "$LOG_FILE")"
        log "starting dockerd on $SOCKET (log $LOG_FILE)"
        # setsid: the daemon must outlive this script and the job that ran it.
        setsid dockerd \
            --host "$HOST" \
            --data-root "$DATA_ROOT" \
            --exec-root "$EXEC_ROOT" \
            --pidfile "$PID_FILE" \
            --bridge=none \
            --iptables=false \
            --ip6tables=false \
            --ip-forward=false \
            --ip-masq=false \
            </dev/null >>"$LOG_FILE" 2>&1 &
    fi
    local waited=0
    until engine_answers; do
        if ((waited >= WAIT_SECS)); then
            log "dockerd did not answer on $SOCKET within ${WAIT_SECS}s; last lines of $LOG_FILE:"
            tail -n 40 "$LOG_FILE" >&2 || true
            exit 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    log "engine answers on $SOCKET after ${waited}s"
}

build_test_image() {
    if docker_cli image inspect "$IMAGE" >/dev/null 2>&1; then
        log "test image $IMAGE present"
        return 0
    fi
    log "building test image $IMAGE from /bin/busybox"
    local root
    root="$(mktemp -d)"
    # shellcheck disable=SC2064 # expand now: the variable is local
    trap "rm -rf '$root'" EXIT
    mkdir -p "$root/bin" "$root/tmp" "$root/etc"
    chmod 1777 "$root/tmp"
    cp /bin/busybox "$root/bin/busybox"
    local applet
    for applet in $(/bin/busybox --list); do
        [[ "$applet" == busybox ]] || ln -sf busybox "$root/bin/$applet"
    done
    tar -C "$root" -cf "$root.tar" .
    docker_cli import \
        --change 'ENV PATH=/bin' \
        --change 'CMD ["sleep","3600"]' \
        "$root.tar" "$IMAGE" >/dev/null
    rm -f "$root.tar"
    log "built $IMAGE"
}

install_packages
start_engine
build_test_image
echo "export DOCKER_HOST=$HOST"
