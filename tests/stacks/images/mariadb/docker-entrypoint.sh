#!/bin/bash
# The official image's contract, written from its documentation: on first
# start (no system tables in /var/lib/mysql) the data directory is made, the
# root password set from MARIADB_ROOT_PASSWORD (or MYSQL_…, each also as
# *_FILE), the database and user created, /docker-entrypoint-initdb.d run;
# then the server in the foreground as `mysql`, with the command's flags.
set -Eeo pipefail

# file_env NAME [DEFAULT]: MARIADB_NAME or MYSQL_NAME, each also from a _FILE.
file_env() {
  local name=$1 def=${2:-} v val=
  for v in "MARIADB_$name" "MYSQL_$name"; do
    local f="${v}_FILE"
    if [ -n "${!v:-}" ] && [ -n "${!f:-}" ]; then
      echo >&2 "error: both $v and $f are set (but are exclusive)"; exit 1
    fi
    if [ -n "${!v:-}" ]; then val=${!v}; break; fi
    if [ -n "${!f:-}" ]; then val=$(< "${!f}"); break; fi
  done
  printf -v "$name" '%s' "${val:-$def}"
}

if [ "${1:0:1}" = '-' ]; then set -- mariadbd "$@"; fi
case "$1" in mysqld|mariadbd) ;; *) exec "$@" ;; esac

if [ "$(id -u)" = 0 ]; then
  mkdir -p /var/lib/mysql /run/mysqld
  chown -R mysql:mysql /var/lib/mysql /run/mysqld
  exec setpriv --reuid=mysql --regid=mysql --init-groups "$BASH_SOURCE" "$@"
fi

sql() { mariadb --protocol=socket -uroot -hlocalhost --socket=/run/mysqld/mysqld.sock "$@"; }

if [ ! -d /var/lib/mysql/mysql ]; then
  file_env ROOT_PASSWORD
  file_env ALLOW_EMPTY_ROOT_PASSWORD
  file_env RANDOM_ROOT_PASSWORD
  file_env ROOT_HOST %
  file_env DATABASE
  file_env USER
  file_env PASSWORD
  if [ -z "$ROOT_PASSWORD" ] && [ -z "$ALLOW_EMPTY_ROOT_PASSWORD" ] && [ -z "$RANDOM_ROOT_PASSWORD" ]; then
    echo >&2 'error: database is uninitialized and password option is not specified'
    echo >&2 '  You need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ROOT_PASSWORD_HASH, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and MARIADB_RANDOM_ROOT_PASSWORD'
    exit 1
  fi
  if [ -n "$RANDOM_ROOT_PASSWORD" ]; then
    ROOT_PASSWORD=$(head -c 24 /dev/urandom | base64)
    echo "GENERATED ROOT PASSWORD: $ROOT_PASSWORD"
  fi
  echo 'Initializing database files'
  mariadb-install-db --datadir=/var/lib/mysql --rpm --skip-test-db \
    --auth-root-authentication-method=normal >/dev/null
  "$@" --skip-networking --socket=/run/mysqld/mysqld.sock &
  pid=$!
  for _ in $(seq 60); do
    sql -e 'SELECT 1' >/dev/null 2>&1 && break
    sleep 0.5
  done
  sql -e 'SELECT 1' >/dev/null || { echo >&2 'error: the temporary server did not start'; exit 1; }
  esc() { printf '%s' "$1" | sed "s/\\\\/\\\\\\\\/g; s/'/\\\\'/g"; }
  {
    echo "SET @@SESSION.SQL_LOG_BIN=0;"
    echo "DROP USER IF EXISTS root@'127.0.0.1', root@'::1';"
    echo "ALTER USER root@localhost IDENTIFIED BY '$(esc "$ROOT_PASSWORD")';"
    if [ "$ROOT_HOST" != localhost ]; then
      echo "CREATE USER root@'$(esc "$ROOT_HOST")' IDENTIFIED BY '$(esc "$ROOT_PASSWORD")';"
      echo "GRANT ALL ON *.* TO root@'$(esc "$ROOT_HOST")' WITH GRANT OPTION;"
    fi
    # The healthcheck's own user, as the official image makes it.
    echo "CREATE USER healthcheck@localhost IDENTIFIED BY 'healthcheck';"
    [ -n "$DATABASE" ] && echo "CREATE DATABASE IF NOT EXISTS \`$DATABASE\`;"
    if [ -n "$USER" ] && [ -n "$PASSWORD" ]; then
      echo "CREATE USER '$(esc "$USER")'@'%' IDENTIFIED BY '$(esc "$PASSWORD")';"
      [ -n "$DATABASE" ] && echo "GRANT ALL ON \`$DATABASE\`.* TO '$(esc "$USER")'@'%';"
    fi
    echo "FLUSH PRIVILEGES;"
  } | sql
  printf '[mariadb-client]\nport=3306\nsocket=/run/mysqld/mysqld.sock\nuser=healthcheck\npassword=healthcheck\nprotocol=socket\n' \
    > /var/lib/mysql/.my-healthcheck.cnf
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh) if [ -x "$f" ]; then "$f"; else . "$f"; fi ;;
      *.sql) sql -p"$ROOT_PASSWORD" ${DATABASE:+"$DATABASE"} < "$f" ;;
      *.sql.gz) gunzip -c "$f" | sql -p"$ROOT_PASSWORD" ${DATABASE:+"$DATABASE"} ;;
      *) [ -e "$f" ] && echo "$0: ignoring $f" ;;
    esac
  done
  kill -TERM "$pid"
  wait "$pid" || true
  echo 'MariaDB init process done. Ready for start up.'
fi

exec "$@"
