# postgresql-pgadmin: PostgreSQL on its published port with the user,
# password and database of the sample's .env; pgAdmin's login with its
# default account and its query tool reaching the server by the container
# name `postgres`: a table written through pgAdmin is read back with psql.
round=$1
login=$(page http://127.0.0.1:5050/authenticate/login -c - -d email=your@email.com -d password=changeit) \
  || fail "pgadmin login"
cookie=$(printf '%s\n' "$login" | awk '$6 == "pga4_session" { print $7 }')
[ -n "$cookie" ] || fail "pgadmin gave no session"
query() {
  page http://127.0.0.1:5050/sqleditor/query -H "Cookie: pga4_session=$cookie" \
    -d "{\"host\": \"postgres\", \"user\": \"yourUser\", \"password\": \"changeit\", \"database\": \"postgres\", \"sql\": \"$1\"}"
}
query "CREATE TABLE IF NOT EXISTS notes (body text)" >/dev/null || fail "create through pgadmin"
query "INSERT INTO notes VALUES ('round $round')" >/dev/null || fail "insert through pgadmin"
[ "$(in_ns env PGPASSWORD=changeit psql -h 127.0.0.1 -U yourUser -d postgres -Atc "SELECT body FROM notes")" = "round $round" ] \
  || fail "psql does not read what pgadmin wrote"
