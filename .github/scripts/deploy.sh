#!/usr/bin/env bash
# Apply an overlay in order: migration Jobs (and wait), then everything, then wait for every
# Deployment's rollout (probes passing) and the bootstrap Job. `--migrations-only` stops after
# the migrations (production runs them before its canary).
set -euo pipefail
overlay="$1"
mode="${2:-}"
ns="${NAMESPACE:-marketplace}"
rendered="$(mktemp)"
kubectl kustomize "${overlay}" > "${rendered}"

# A Job's pod template is immutable: the previous release's finished Jobs go first.
kubectl -n "${ns}" delete job -l 'app.kubernetes.io/component in (migration, bootstrap)' \
  --ignore-not-found --wait=true
# Namespace, Secrets (ExternalSecrets) and the migration Jobs; the rest waits for the schema.
yq 'select(.kind == "Namespace" or .kind == "ExternalSecret" or .kind == "Secret" or .kind == "NetworkPolicy" or (.kind == "Job" and .metadata.labels."app.kubernetes.io/component" == "migration"))' \
  "${rendered}" | kubectl apply -f -
kubectl -n "${ns}" wait --for=condition=complete job/user-migrate job/order-migrate --timeout=15m
if [ "${mode}" = "--migrations-only" ]; then
  exit 0
fi

kubectl apply -f "${rendered}"
# Rules, scrape config and dashboards are ConfigMaps with stable names: reload by restarting.
kubectl -n "${ns}" rollout restart statefulset/prometheus deployment/grafana
for deployment in $(yq 'select(.kind == "Deployment") | .metadata.name' "${rendered}"); do
  kubectl -n "${ns}" rollout status "deployment/${deployment}" --timeout=10m
done
kubectl -n "${ns}" wait --for=condition=complete job/bootstrap --timeout=15m
