#!/usr/bin/env bash
# Creates the laptop-only secrets deploy/compose.yaml reads (BILLING_JWT_SECRET,
# BILLING_MASTER_KEYS), once, in .run/dev-secrets.env (git-ignored). It is the same file and
# format `make up` uses, so both ways of running share sealed data. Never used in Kubernetes.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .run
if [[ ! -f .run/dev-secrets.env ]]; then
  umask 077
  {
    echo "BILLING_JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')"
    echo "BILLING_MASTER_KEYS=dev1:$(head -c 32 /dev/urandom | base64)"
  } >.run/dev-secrets.env
  echo "created .run/dev-secrets.env"
else
  echo ".run/dev-secrets.env exists; kept"
fi
