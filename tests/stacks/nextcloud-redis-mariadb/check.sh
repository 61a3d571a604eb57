# nextcloud-redis-mariadb: installation through the published port writes
# the admin account to MariaDB, logins are counted in Redis; the networks
# are segmented: db and redis share none, so neither resolves nor reaches
# the other. After down and up the installation is still there (nc_data and
# db_data volumes).
round=$1
if [ "$round" = 1 ]; then
  page http://127.0.0.1/ | grep -q 'Create an admin account' || fail "the installation page"
  page http://127.0.0.1/index.php -d adminlogin=admin -d adminpass=stack-pw >/dev/null || fail "install"
fi
page http://127.0.0.1/status.php | grep -q '"installed":true' || fail "not installed"
page http://127.0.0.1/index.php -d user=admin -d password=stack-pw | grep -q 'Logged in as admin; logins: [0-9]' \
  || fail "login (account in MariaDB, count in Redis)"
in_ns curl -s -o /dev/null -w '%{http_code}' -d user=admin -d password=wrong http://127.0.0.1/index.php | grep -qx 401 \
  || fail "a wrong password was accepted"
c exec -T db getent hosts redis >/dev/null && fail "db resolves redis"
c exec -T redis getent hosts db >/dev/null && fail "redis resolves db"
redis_ip=$(c exec -T nc getent hosts redis | awk '{print $1; exit}')
[ -n "$redis_ip" ] || fail "nc does not resolve redis"
c exec -T db bash -c "timeout 2 bash -c 'echo > /dev/tcp/$redis_ip/6379'" 2>/dev/null && fail "db reaches redis at $redis_ip"
c exec -T nc bash -c "timeout 2 bash -c 'echo > /dev/tcp/$redis_ip/6379'" || fail "nc does not reach redis"
