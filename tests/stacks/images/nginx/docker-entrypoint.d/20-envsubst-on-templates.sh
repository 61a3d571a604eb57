#!/bin/sh
# Each /etc/nginx/templates/X.template becomes /etc/nginx/conf.d/X with the
# environment's variables substituted (only variables that are set, so
# nginx's own $variables stay). NGINX_ENVSUBST_TEMPLATE_DIR, _SUFFIX and
# NGINX_ENVSUBST_OUTPUT_DIR change where.
set -e
dir=${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}
suffix=${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}
out=${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}
[ -d "$dir" ] || exit 0
vars=$(printf '${%s} ' $(env | cut -d= -f1))
find "$dir" -follow -type f -name "*$suffix" -print | while read -r t; do
  rel=${t#"$dir"/}
  dest="$out/${rel%"$suffix"}"
  mkdir -p "$(dirname "$dest")"
  envsubst "$vars" < "$t" > "$dest"
done
