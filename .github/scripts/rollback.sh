#!/usr/bin/env bash
# Put every stable Deployment back on its previous ReplicaSet and wait until it serves.
set -euo pipefail
ns="${NAMESPACE:-marketplace}"
for name in ${COMPONENTS:-user product order edge}; do
  kubectl -n "${ns}" rollout undo "deployment/${name}" || true
done
for name in ${COMPONENTS:-user product order edge}; do
  kubectl -n "${ns}" rollout status "deployment/${name}" --timeout=10m
done
kubectl -n "${ns}" scale deployment -l track=canary --replicas=0
