# nginx-golang-postgres: the page through nginx (its configuration a
# read-only bind mount) counts visits in PostgreSQL, which runs as `postgres`
# with its password from a secret; the count goes on after down and up.
round=$1
n=$(page http://127.0.0.1:80/ | sed -n 's/^Visits: //p')
m=$(page http://127.0.0.1:80/ | sed -n 's/^Visits: //p')
[ -n "$n" ] && [ "$m" = $((n + 1)) ] || fail "visits $n then $m"
if [ "$round" = 1 ]; then [ "$n" = 1 ] || fail "first visit counted $n"; fi
if [ "$round" = 2 ]; then [ "$n" = 3 ] || fail "after down and up the count restarted: $n"; fi
# The bind mount is read-only inside the container.
c exec -T proxy sh -c 'echo x >> /etc/nginx/conf.d/default.conf' 2>/dev/null && fail "the read-only bind was writable"
c exec -T db sh -c 'test "$(id -un)" = postgres' || fail "db does not run as postgres"
true
