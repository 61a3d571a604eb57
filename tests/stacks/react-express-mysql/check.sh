# react-express-mysql: the backend (its sources and package.json bind
# mounts, run with `npm run start-watch`) counts visits in MariaDB through
# port 80 and its inspector listens on 9229; the frontend serves its
# bind-mounted src/ on 3000. The count goes on after down and up.
round=$1
visits http://127.0.0.1:80/ 1 3
page http://127.0.0.1:3000/ | grep -q 'Hello from the frontend' || fail "the frontend page"
page http://127.0.0.1:9229/json/version | grep -q '"Browser"' || fail "the backend's inspector on 9229"
c exec -T backend sh -c 'touch /code/src/x' 2>/dev/null && fail "src is mounted read-only"
true
