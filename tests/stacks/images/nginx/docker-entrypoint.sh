#!/bin/sh
# The official image's entrypoint: when the command is nginx, the scripts of
# /docker-entrypoint.d run first (unless NGINX_ENTRYPOINT_QUIET_LOGS asks
# for quiet, they say what they do), then the command.
set -e
if [ "$1" = nginx ] || [ "$1" = nginx-debug ]; then
  for f in /docker-entrypoint.d/*; do
    case "$f" in
      *.sh) [ -x "$f" ] && { [ -n "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ] || echo "$0: running $f"; "$f"; } ;;
      *.envsh) [ -x "$f" ] && . "$f" ;;
    esac
  done
fi
exec "$@"
