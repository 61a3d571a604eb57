# nginx-golang-postgres: the page through nginx (its configuration a
# read-only bind mount) counts visits in PostgreSQL, which runs as `postgres`
# with its password from a secret; the count goes on after down and up.
round=$1
visits http://127.0.0.1:80/ 1 3
# The bind mount is read-only inside the container.
c exec -T proxy sh -c 'echo x >> /etc/nginx/conf.d/default.conf' 2>/dev/null && fail "the read-only bind was writable"
c exec -T db sh -c 'test "$(id -un)" = postgres' || fail "db does not run as postgres"
true
