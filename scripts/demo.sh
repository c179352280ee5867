#!/usr/bin/env bash
# The demo for issue 2: a local 3-node cluster; show its status, kill the
# coordinator (power-loss style), show another node taking over, tear down.
set -euo pipefail
bin=${1:-build/bin}
bulwark="$bin/bulwark"
dir=$(mktemp -d /tmp/bulwark-demo-XXXXXX)
cleanup() { "$bulwark" dev down --dir "$dir/cluster" --purge >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "starting a 3-node cluster on loopback (each node: bulwarkd + its etcd member)"
"$bulwark" dev up --nodes 3 --dir "$dir/cluster"
# shellcheck disable=SC1091
source "$dir/cluster/env"

say "bulwark status"
"$bulwark" status

say "a write: bulwark node attr n2 zone=rack2"
"$bulwark" node attr n2 zone=rack2

coordinator=$("$bulwark" status --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["coordinator"])')
say "killing the coordinator $coordinator (SIGKILL to its daemon, etcd member and children)"
start_ms=$(date +%s%3N)
"$bulwark" dev kill "$coordinator" --dir "$dir/cluster"
while :; do
  new=$("$bulwark" status --json 2>/dev/null | /usr/bin/python3 -c '
import json,sys
d=json.load(sys.stdin)
online={n["name"]: n["online"] for n in d["nodes"]}
c=d["coordinator"]
print(c if d["quorate"] and c and online.get(c) else "")' || true)
  if [[ -n $new && $new != "$coordinator" ]]; then break; fi
  sleep 0.02
done
since=$("$bulwark" status --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["coordinator_since_wall_ms"])')
say "$new took over as coordinator $((since - start_ms)) ms after the kill"
"$bulwark" status

say "a write after the failover still works: bulwark node attr n3 zone=rack3"
"$bulwark" node attr n3 zone=rack3

say "restarting $coordinator: it rejoins and does not take the role back"
"$bulwark" dev start "$coordinator" --dir "$dir/cluster"
sleep 2
"$bulwark" status

say "tearing down"
"$bulwark" dev down --dir "$dir/cluster" --purge
