#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on 127.0.0.1 for the tests that need one.
# Installs Debian's postgresql if it is missing, creates a database with a password-protected
# user, and prints two lines: the SQLAlchemy URL (psycopg 3 driver) and the data directory.
# Stop it with: runuser -u postgres -- "$PGBIN/pg_ctl" -D DATA stop   (see .ci/run)
set -euo pipefail
pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
if [ -z "$(pgbin)" ]; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
PGBIN=$(pgbin)
DATA=$(mktemp -d /tmp/harness-pg.XXXXXX)
PASSWORD=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "$PASSWORD" > "$DATA/.pw"
chown -R postgres "$DATA"
# PostgreSQL refuses to run as root; the Debian package made the postgres user.
runuser -u postgres -- "$PGBIN/initdb" -D "$DATA/db" -U harness --pwfile="$DATA/.pw" \
  --auth-host=scram-sha-256 --auth-local=trust >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DATA/db" -l "$DATA/log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DATA" start >/dev/null
runuser -u postgres -- "$PGBIN/createdb" -h "$DATA" -p "$PORT" -U harness harness
echo "postgresql+psycopg://harness:$PASSWORD@127.0.0.1:$PORT/harness"
echo "$DATA"
