# react-express-mysql: the backend (its sources and package.json bind
# mounts, run with `npm run start-watch`) counts visits in MariaDB through
# port 80 and its inspector listens on 9229; the frontend serves its
# bind-mounted src/ on 3000. The count goes on after down and up.
round=$1
n=$(page http://127.0.0.1:80/ | sed -n 's/^Visits: //p')
m=$(page http://127.0.0.1:80/ | sed -n 's/^Visits: //p')
[ -n "$n" ] && [ "$m" = $((n + 1)) ] || fail "visits $n then $m"
if [ "$round" = 1 ]; then [ "$n" = 1 ] || fail "first visit counted $n"; fi
if [ "$round" = 2 ]; then [ "$n" = 3 ] || fail "after down and up the count restarted: $n"; fi
page http://127.0.0.1:3000/ | grep -q 'Hello from the frontend' || fail "the frontend page"
page http://127.0.0.1:9229/json/version | grep -q '"Browser"' || fail "the backend's inspector on 9229"
c exec -T backend sh -c 'touch /code/src/x' 2>/dev/null && fail "src is mounted read-only"
true
