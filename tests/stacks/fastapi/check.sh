# fastapi: the API answers through its published port, keeps what it was
# sent, and the container has the name the compose file gives it.
page http://127.0.0.1:8000/ | grep -q '"message":"OK"' || fail "GET /"
page "http://127.0.0.1:8000/items/stack?value=$1" -X PUT >/dev/null || fail "PUT an item"
page http://127.0.0.1:8000/items/stack | grep -q "\"value\":\"$1\"" || fail "the item was not kept"
c ps --format '{{.Name}}' | grep -qx fastapi-application || fail "container_name"
