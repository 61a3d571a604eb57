#!/bin/bash
# First start: the application into /var/www/html when it is not there;
# the database and Redis settings from the environment into config/.
set -Eeo pipefail
file_env() {
  local var=$1 file=${1}_FILE
  if [ -n "${!file:-}" ]; then export "$var"="$(< "${!file}")"; fi
}
if [[ "$1" == apache2* ]]; then
  cd /var/www/html
  if [ ! -f version.php ]; then
    echo "Initializing nextcloud $(sed -n "s/.*OC_VersionString = '\(.*\)';/\1/p" /usr/src/nextcloud/version.php) ..."
    cp -a /usr/src/nextcloud/. .
    mkdir -p config data
    chown -R www-data:www-data .
  fi
  for v in MYSQL_DATABASE MYSQL_USER MYSQL_PASSWORD MYSQL_HOST REDIS_HOST_PASSWORD; do file_env "$v"; done
  if [ -n "${MYSQL_DATABASE:-}" ] && [ -n "${MYSQL_USER:-}" ] && [ -n "${MYSQL_PASSWORD:-}" ]; then
    php -r 'var_export(["dbtype" => "mysql", "dbname" => getenv("MYSQL_DATABASE"), "dbuser" => getenv("MYSQL_USER"), "dbpass" => getenv("MYSQL_PASSWORD"), "dbhost" => getenv("MYSQL_HOST") ?: "localhost"]);' \
      | sed '1s/^/<?php $AUTOCONFIG = /; $s/$/;/' > config/autoconfig.php
  fi
  if [ -n "${REDIS_HOST:-}" ]; then
    php -r 'var_export(["host" => getenv("REDIS_HOST"), "port" => (int)(getenv("REDIS_HOST_PORT") ?: 6379), "password" => (string)getenv("REDIS_HOST_PASSWORD")]);' \
      | sed '1s/^/<?php $CONFIG_REDIS = /; $s/$/;/' > config/redis.config.php
  fi
  chown -R www-data:www-data config
fi
exec "$@"
