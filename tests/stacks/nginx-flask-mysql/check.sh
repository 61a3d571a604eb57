# nginx-flask-mysql: the page through the proxy's published port counts
# visits in MariaDB; the count goes on after down and up (named volume).
round=$1
visits http://127.0.0.1:80/ 1 4
# The backend's own published port answers too.
page http://127.0.0.1:8000/ | grep -q '^Visits: ' || fail "backend port 8000"
