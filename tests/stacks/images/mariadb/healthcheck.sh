#!/bin/bash
# The official image's healthcheck.sh, for the tests the samples use:
#   --connect             the server accepts a connection
#   --innodb_initialized  InnoDB has started
# (--su-mysql and --defaults-file are accepted; the checks connect over the
# socket as the healthcheck user the entrypoint made.)
set -eo pipefail
cnf=/var/lib/mysql/.my-healthcheck.cnf
args=()
for a in "$@"; do
  case "$a" in
    --defaults-file=*) cnf=${a#*=} ;;
    --su-mysql|--su=*) ;;
    *) args+=("$a") ;;
  esac
done
q() { mariadb --defaults-file="$cnf" --skip-column-names -e "$1"; }
[ ${#args[@]} -gt 0 ] || args=(--connect)
for a in "${args[@]}"; do
  case "$a" in
    --connect) q 'SELECT 1' >/dev/null ;;
    --innodb_initialized) [ "$(q "SELECT 1 FROM information_schema.ENGINES WHERE engine='InnoDB' AND support IN ('YES','DEFAULT')")" = 1 ] ;;
    *) echo "healthcheck.sh: unknown test $a" >&2; exit 2 ;;
  esac
done
