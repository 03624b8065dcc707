#!/usr/bin/env bash
# Watch a track (canary or stable) for SECONDS: fail as soon as one of its pods restarts, a
# page alert fires, or its server-side error ratio or p99 latency leaves the SLOs' fast-burn
# thresholds (14.4 x the 0.5% availability budget; checkout p99 over 2.5 s).
set -euo pipefail
track="$1"
seconds="$2"
ns="${NAMESPACE:-marketplace}"
kubectl -n "${ns}" port-forward svc/prometheus 9090:9090 > /dev/null 2>&1 &
forward=$!
trap 'kill ${forward}' EXIT
sleep 5

query() {
  curl -fsS --get http://127.0.0.1:9090/api/v1/query --data-urlencode "query=$1" \
    | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "0")'
}
faults='grpc_code=~"INTERNAL|UNKNOWN|UNAVAILABLE|DEADLINE_EXCEEDED|DATA_LOSS"'
end=$(( $(date +%s) + seconds ))
while [ "$(date +%s)" -lt "${end}" ]; do
  restarts="$(kubectl -n "${ns}" get pods -l "track=${track}" \
    -o jsonpath='{range .items[*]}{range .status.containerStatuses[*]}{.restartCount}{"\n"}{end}{end}' \
    | awk '{s+=$1} END {print s+0}')"
  pages="$(query 'count(ALERTS{alertstate="firing",severity="page"})')"
  errors="$(query "sum(rate(grpc_server_handled_total{track=\"${track}\",${faults}}[5m])) / sum(rate(grpc_server_handled_total{track=\"${track}\"}[5m]))")"
  p99="$(query "histogram_quantile(0.99, sum by (le) (rate(grpc_server_handling_seconds_bucket{track=\"${track}\",grpc_method=\"CreateOrder\"}[5m])))")"
  echo "track=${track} restarts=${restarts} page_alerts=${pages} error_ratio=${errors} checkout_p99=${p99}"
  python3 - "${restarts}" "${pages}" "${errors}" "${p99}" <<'PY'
import math, sys
restarts, pages, errors, p99 = (float(v) if v not in ("NaN", "") else 0.0 for v in sys.argv[1:])
problems = []
if restarts > 0: problems.append("a pod restarted")
if pages > 0: problems.append("a page alert fires")
if not math.isnan(errors) and errors > 14.4 * 0.005: problems.append("error ratio over the fast-burn threshold")
if not math.isnan(p99) and p99 > 2.5: problems.append("checkout p99 over 2.5 s")
if problems:
    sys.exit("SLO gate failed: " + ", ".join(problems))
PY
  sleep 30
done
echo "SLO gate passed for track=${track}"
