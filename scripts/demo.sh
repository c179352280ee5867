#!/usr/bin/env bash
# `make demo`: the main job on a local 3-node cluster. A sample HTTP service
# runs as a clone on every node behind bulwark-proxy (itself a clone), whose
# frontend listens on a virtual IP; a singleton worker runs on one node.
# Steady client traffic goes through the VIP while the node holding it is
# killed (power-loss style); then a short report: failover time, requests
# served and failed, where each resource ended up. Leaves nothing running.
set -euo pipefail
bin=${1:-build/bin}
bulwark="$bin/bulwark"
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/bulwark-demo-XXXXXX)
traffic_pid=""
cleanup() {
  if [[ -n $traffic_pid ]]; then kill "$traffic_pid" 2>/dev/null || true; fi
  "$bulwark" dev down --dir "$dir/cluster" --purge >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
field() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# The online nodes where the cluster reports RESOURCE in STATE (default started).
where() {
  "$bulwark" resource list --json | field "' '.join(sorted(i['node'] for r in d['resources'] \
if r['name'] == '$1' for i in r['instances'] if i['state'] == '${2:-started}' and i['node_online']))"
}

say "starting a 3-node cluster on loopback (each node: bulwarkd + its etcd member)"
"$bulwark" dev up --nodes 3 --dir "$dir/cluster"
# shellcheck disable=SC1091
source "$dir/cluster/env"
subnet=$("$bulwark" dev ls --json --dir "$dir/cluster" | field "d['nodes'][0]['address'].rsplit('.', 1)[0]")
vip="$subnet.100"

say "applying the resources: web (clone), vip $vip, lb (bulwark-proxy clone on the VIP), worker (singleton)"
cat >"$dir/resources.yaml" <<EOF
resources:
  - name: web
    agent: exec
    command: [/usr/bin/python3, $here/demo_service.py, "\${BULWARK_NODE_ADDRESS}", "18000", "\${BULWARK_NODE}"]
    clone: {}
    monitor: {interval_ms: 500, tcp: "\${BULWARK_NODE_ADDRESS}:18000"}
  - name: vip
    agent: vip
    params: {address: $vip}
    monitor: {interval_ms: 500}
  - name: lb
    agent: proxy
    clone: {}
    proxy:
      global: {workers: 1}
      frontends: [{name: www, listen: "$vip:8080", backend: web}]
      backends:
        - name: web
          servers_from: {resource: web, port: 18000}
          check: {type: http, path: /, interval_ms: 300, rise: 1, fall: 1}
  - name: worker
    agent: exec
    command: [/bin/sleep, "86400"]
    singleton: true
    monitor: {interval_ms: 500}
EOF
cat "$dir/resources.yaml"
"$bulwark" apply "$dir/resources.yaml"

printf 'waiting until everything runs and the VIP serves'
for _ in $(seq 1 300); do
  if [[ $(where web | wc -w) == 3 && $(where lb | wc -w) == 3 && -n $(where worker) &&
        -n $(where vip) ]] && /usr/bin/python3 - "$vip" <<'EOF'
import sys, urllib.request
try:
    urllib.request.urlopen(f"http://{sys.argv[1]}:8080/", timeout=1).read()
except OSError:
    sys.exit(1)
EOF
  then
    break
  fi
  printf '.'
  sleep 0.1
done
echo
"$bulwark" resource list

holder=$(where vip)
say "steady traffic: a GET to http://$vip:8080/ every 20 ms for 12 s"
/usr/bin/python3 "$here/demo_traffic.py" --url "http://$vip:8080/" --duration-s 12 \
  --kill-file "$dir/kill_ms" >"$dir/traffic.json" &
traffic_pid=$!
sleep 4

say "killing $holder, the node holding the VIP (SIGKILL to its daemon, etcd member and resources)"
date +%s%3N >"$dir/kill_ms"
"$bulwark" dev kill "$holder" --dir "$dir/cluster"
wait "$traffic_pid"
traffic_pid=""

say "report"
/usr/bin/python3 - "$dir/traffic.json" "$holder" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
f = s["failover_ms"]
print(f"killed node:       {sys.argv[2]} (held the VIP)")
print(f"failover time:     {f} ms (from the kill until the VIP served again)" if f is not None
      else "failover time:     the VIP never served again!")
print(f"requests served:   {s['served']} of {s['requests']} "
      f"({', '.join(f'{n}: {c}' for n, c in sorted(s['by_node'].items()))})")
print(f"requests failed:   {s['failed']}")
EOF
echo "where each resource ended up:"
for r in web lb vip worker; do printf '  %-7s %s\n' "$r" "$(where $r)"; done
"$bulwark" status

say "tearing down"
"$bulwark" dev down --dir "$dir/cluster" --purge
