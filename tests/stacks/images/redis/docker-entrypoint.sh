#!/bin/sh
# The official image's contract: flags or a .conf file as the command go to
# redis-server; it runs as `redis` with protected mode off unless asked.
set -e
case "$1" in -*|*.conf) set -- redis-server "$@" ;; esac
if [ "$1" = redis-server ]; then
  if [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
  fi
  shift
  conf=
  case "$1" in *.conf) conf=$1; shift ;; esac
  case " $* " in *" --protected-mode "*) ;; *) set -- --protected-mode no "$@" ;; esac
  [ -z "$conf" ] || set -- "$conf" "$@"
  set -- redis-server "$@"
fi
exec "$@"
