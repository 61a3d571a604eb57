# nginx-nodejs-redis: nginx balances between web1 and web2 (two services
# built from one context, each with its hostname), which count visits in
# Redis; each is also reached on its own published port; Redis answers on
# its published port.
hosts=
prev=0
for _ in 1 2 3 4; do
  line=$(page http://127.0.0.1:80/) || fail "the balanced page"
  n=${line##*: }
  [ "$n" -gt "$prev" ] || fail "visits did not grow: $line"
  prev=$n
  hosts+=" ${line%%:*}"
done
case "$hosts" in *web1*) ;; *) fail "web1 never answered:$hosts" ;; esac
case "$hosts" in *web2*) ;; *) fail "web2 never answered:$hosts" ;; esac
page http://127.0.0.1:81/ | grep -q '^web1: ' || fail "web1 on port 81"
page http://127.0.0.1:82/ | grep -q '^web2: ' || fail "web2 on port 82"
[ "$(printf 'PING\r\n' | in_ns timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/6379; cat >&3; head -c 7 <&3')" = "+PONG"$'\r' ] \
  || fail "redis on its published port"
