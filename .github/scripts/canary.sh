#!/usr/bin/env bash
# `start`: give each <name>-canary Deployment the new image (the digests in the production
# overlay) and one replica, and wait until it passes its probes. `stop`: scale them to zero.
set -euo pipefail
ns="${NAMESPACE:-marketplace}"
action="$1"
if [ "${action}" = "stop" ]; then
  kubectl -n "${ns}" scale deployment -l track=canary --replicas=0
  exit 0
fi
rendered="$(mktemp)"
kubectl kustomize k8s/overlays/production > "${rendered}"
for name in ${COMPONENTS:-user product order edge}; do
  # Apply the canary exactly as rendered (new digests), then give it its one replica.
  yq "select(.kind == \"Deployment\" and .metadata.name == \"${name}-canary\")" "${rendered}" \
    | kubectl apply -f -
  kubectl -n "${ns}" scale "deployment/${name}-canary" --replicas=1
done
for name in ${COMPONENTS:-user product order edge}; do
  kubectl -n "${ns}" rollout status "deployment/${name}-canary" --timeout=10m
done
