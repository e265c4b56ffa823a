#!/usr/bin/env bash
# The PostgreSQL store's tests start their own throwaway clusters (test/helpers/postgres.ts):
# they need the server binaries (the postgresql package) and its unprivileged `postgres` user,
# never the system cluster the package may start on 5432. Checked here for a clear message.
set -euo pipefail
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { echo "40-postgres: no /usr/lib/postgresql/*/bin/initdb (install the postgresql package)" >&2; exit 1; }
id -u postgres >/dev/null 2>&1 || { echo "40-postgres: no postgres system user (the postgresql package creates it)" >&2; exit 1; }
