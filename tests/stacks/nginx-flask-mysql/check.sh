# nginx-flask-mysql: the page through the proxy's published port counts
# visits in MariaDB; the count goes on after down and up (named volume).
round=$1
n=$(page http://127.0.0.1:80/ | sed -n 's/^Visits: //p')
m=$(page http://127.0.0.1:80/ | sed -n 's/^Visits: //p')
[ -n "$n" ] && [ "$m" = $((n + 1)) ] || fail "visits $n then $m"
if [ "$round" = 1 ]; then [ "$n" = 1 ] || fail "first visit counted $n"; fi
if [ "$round" = 2 ]; then [ "$n" = 4 ] || fail "after down and up the count restarted: $n"; fi
# The backend's own published port answers too.
page http://127.0.0.1:8000/ | grep -q '^Visits: ' || fail "backend port 8000"
