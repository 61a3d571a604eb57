#!/bin/bash
# First start: WordPress into /var/www/html when it is not there, and a
# wp-config.php that reads the WORDPRESS_* environment; then the command.
set -Eeo pipefail
if [[ "$1" == apache2* ]] || [ "$1" = php-fpm ]; then
  cd /var/www/html
  if [ ! -e index.php ] && [ ! -e wp-includes/version.php ]; then
    echo "WordPress not found in $PWD - copying now..."
    cp -a /usr/share/wordpress/. .
    # Debian keeps wp-content (themes, plugins, uploads) apart; the image's
    # volume holds it all, as the official one does.
    if [ -L wp-content ]; then rm wp-content && cp -aL /var/lib/wordpress/wp-content wp-content; fi
    rm -f wp-config.php
    chown -R www-data:www-data .
    echo "Complete! WordPress has been successfully copied to $PWD"
  fi
  if [ ! -s wp-config.php ] && env | grep -q '^WORDPRESS_'; then
    echo "No 'wp-config.php' found in $PWD, but 'WORDPRESS_...' variables supplied; copying 'wp-config-docker.php'"
    salts=
    for k in AUTH_KEY SECURE_AUTH_KEY LOGGED_IN_KEY NONCE_KEY AUTH_SALT SECURE_AUTH_SALT LOGGED_IN_SALT NONCE_SALT; do
      salts+="define('$k', getenv_docker('WORDPRESS_$k', '$(head -c 48 /dev/urandom | base64 | tr -d "/+=\n")'));"$'\n'
    done
    awk -v salts="$salts" '/@SALTS@/ { printf "%s", salts; next } { print }' \
      /usr/src/wordpress/wp-config-docker.php > wp-config.php
    chown www-data:www-data wp-config.php
  fi
fi
exec "$@"
