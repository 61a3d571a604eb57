# prometheus-grafana: Prometheus (its configuration a directory bind, its
# database the prom_data volume, running as nobody) scrapes itself; Grafana
# with the sample's admin account has the provisioned data source and
# queries Prometheus through it by service name. After down and up the
# samples scraped before are still there.
round=$1
up_now() {
  page 'http://127.0.0.1:9090/api/v1/query?query=up' | grep -q '"value":\[[0-9.]*,"1"\]'
}
deadline=$(( $(date +%s) + 30 ))
until up_now; do [ "$(date +%s)" -lt "$deadline" ] || fail "prometheus never scraped itself"; sleep 0.5; done
page http://127.0.0.1:3000/api/health | grep -q '"database": "ok"' || fail "grafana health"
page http://127.0.0.1:3000/api/datasources -u admin:grafana | grep -q '"url": "http://prometheus:9090"' \
  || fail "the provisioned data source"
page 'http://127.0.0.1:3000/api/datasources/proxy/uid/prometheus/api/v1/query?query=up' -u admin:grafana \
  | grep -q '"status":"success"' || fail "grafana's query through its data source"
mark="$work/prometheus-grafana-$engine.mark"
if [ "$round" = 1 ]; then
  sleep 2 # a few scrapes, then a moment they all precede
  date +%s > "$mark"
else
  t=$(cat "$mark")
  page "http://127.0.0.1:9090/api/v1/query?query=up&time=$t" | grep -q '"value":\[[0-9.]*,"1"\]' \
    || fail "the samples from before down are gone (prom_data)"
fi
