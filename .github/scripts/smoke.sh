#!/usr/bin/env bash
# Smoke test through the public edge: the edge itself, every service behind it, the catalog's
# public reads, and the category tree the bootstrap Job created.
set -euo pipefail
base="$1"
curl -fsS --retry 10 --retry-delay 5 --retry-all-errors "${base}/readyz" > /dev/null
curl -fsS --retry 10 --retry-delay 5 --retry-all-errors "${base}/healthz"
echo
curl -fsS "${base}/v1/products?page_size=1" > /dev/null
categories="$(curl -fsS "${base}/v1/categories")"
python3 -c 'import json,sys; assert json.loads(sys.argv[1]).get("categories"), "no categories"' "${categories}"
curl -fsS "${base}/.well-known/jwks.json" > /dev/null
echo "smoke test passed: ${base}"
