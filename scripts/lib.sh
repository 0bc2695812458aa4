# Shared by scripts/dev, scripts/test and .ci/run: start the local services Wingman needs
# when they are not answering. Everything listens on loopback only.

: "${CARGO_TARGET_DIR:=/var/tmp/wingman-target}"
export CARGO_TARGET_DIR
: "${NATS_URL:=nats://127.0.0.1:4222}"
export NATS_URL

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for_port() { # host port what
  for _ in $(seq 1 100); do
    port_open "$1" "$2" && return 0
    sleep 0.2
  done
  echo "error: $3 did not start on $1:$2" >&2
  return 1
}

apt_install() {
  if [ -z "${WINGMAN_APT_UPDATED:-}" ]; then
    apt-get update -qq >/dev/null
    export WINGMAN_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_nats() {
  port_open 127.0.0.1 4222 && return 0
  say "starting NATS with JetStream on 127.0.0.1:4222"
  command -v nats-server >/dev/null || apt_install nats-server
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec "$(command -v nats-server)" -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_for_port 127.0.0.1 4222 "nats-server"
}

# The Postgres server the tests and scripts/dev use, without a database name:
# WINGMAN_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432). A password comes from
# the URL, PGPASSWORD or ~/.pgpass (psql and Wingman read all three); nothing ever prompts.
postgres_server() { echo "${WINGMAN_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432}"; }

ensure_postgres() {
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    say "starting PostgreSQL on 127.0.0.1:5432"
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
      apt_install postgresql
    fi
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
    wait_for_port 127.0.0.1 5432 "postgres"
  fi
  check_postgres_login
}

# Says what is missing when Postgres does not let us in, instead of a prompt or a hang.
check_postgres_login() {
  local server answer
  server=$(postgres_server)
  if ! answer=$(psql -w "$server/postgres" -tAc 'SELECT 1' 2>&1); then
    {
      echo "error: cannot log in to Postgres at ${server%%\?*}:"
      echo "  ${answer}"
      echo "  Wingman needs a superuser login there (it creates a database per test run)."
      echo "  If the server asks for a password: export PGPASSWORD=… (or put it in ~/.pgpass,"
      echo "  or in the URL: WINGMAN_TEST_POSTGRES=postgres://postgres:…@127.0.0.1:5432)."
    } >&2
    return 1
  fi
}

ensure_database() { # name
  local server
  server=$(postgres_server)
  if ! psql -w "$server/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = '$1'" | grep -q 1; then
    say "creating database $1"
    psql -w "$server/postgres" -qc "CREATE DATABASE $1"
  fi
}

# The web console's browser tests (tests/it/web_console.rs) drive Debian's headless chromium
# through chromedriver (WebDriver).
ensure_chromium() {
  if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    return 0
  fi
  say "installing chromium and chromium-driver (the web console's browser tests)"
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }
  else
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
}

# schemathesis (PyPI) fuzzes the HTTP API against its OpenAPI description (tests/it/api_fuzz.rs).
SCHEMATHESIS_VERSION=4.32.5
ensure_schemathesis() {
  if command -v st >/dev/null && st --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    return 0
  fi
  say "installing schemathesis $SCHEMATHESIS_VERSION (pip; fuzzes the API against its OpenAPI description)"
  python3 -m pip install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" \
    || { echo "error: could not install schemathesis from PyPI (python3 -m pip)" >&2; return 1; }
  hash -r
}

ensure_docker_engine() {
  local exports
  exports=$(scripts/docker-engine.sh) || { echo "error: could not start the Docker Engine" >&2; return 1; }
  eval "$(grep '^export ' <<<"$exports")"
}

# Debian's Prometheus and Alertmanager binaries (prometheus, promtool, prometheus-alertmanager,
# amtool), installed without starting their system services: scripts/dev and the tests start
# their own on loopback (tests/it/alerting.rs, tests/it/dashboards.rs). Also python3's yaml
# module (python3-yaml), without which scripts/check-observability refuses to run.
ensure_prometheus() {
  command -v prometheus >/dev/null && command -v promtool >/dev/null &&
    command -v prometheus-alertmanager >/dev/null && command -v amtool >/dev/null &&
    python3 -c 'import yaml' 2>/dev/null && return 0
  say "installing Prometheus, Alertmanager and python3-yaml (Debian's packages, services not started)"
  local policy=/usr/sbin/policy-rc.d added_policy=0 status=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added_policy=1
  fi
  apt_install prometheus prometheus-alertmanager python3-yaml || status=$?
  if [ "$added_policy" -eq 1 ]; then rm -f "$policy"; fi
  return "$status"
}
