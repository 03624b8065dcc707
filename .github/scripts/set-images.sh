#!/usr/bin/env bash
# Pin the overlay's images to the digests ci.yml built, scanned and pushed (digest-<name> files).
set -euo pipefail
overlay="$1"
for name in user product order edge storefront migrate; do
  digest="$(cat "digest-${name}")" # e.g. ghcr.io/org/marketplace-user@sha256:...
  (cd "${overlay}" && kustomize edit set image "marketplace-${name}=${digest}")
done
kubectl kustomize "${overlay}" > /dev/null # still renders
