#!/usr/bin/env bash
# Deploys an overlay with plain kubectl: migrations first, then the services.
#   deploy/k8s-rollout.sh prod [--context CTX]
# 1. applies the Namespace, ServiceAccount and ConfigMap (label component=config; the Jobs need them),
# 2. deletes the previous migration Jobs (a Job's pod template is immutable) and applies the new
#    ones, 3. waits until every one completed (exits non-zero, nothing rolled out, if one fails),
# 4. applies everything else and waits for each Deployment's rollout.
# Argo CD users need none of this: the Jobs carry PreSync hook annotations.
set -euo pipefail
cd "$(dirname "$0")/.."
ENV=${1:?usage: deploy/k8s-rollout.sh <overlay> [kubectl flags…]}
shift
DIR=k8s/overlays/$ENV
[[ -f $DIR/kustomization.yaml ]] || { echo "no overlay $DIR" >&2; exit 2; }
KUBECTL=(kubectl "$@")
TIMEOUT=${MIGRATION_TIMEOUT:-15m}

manifests=$(mktemp)
trap 'rm -f "$manifests"' EXIT
if command -v kustomize >/dev/null; then kustomize build "$DIR" >"$manifests"; else "${KUBECTL[@]}" kustomize "$DIR" >"$manifests"; fi
NS=$(awk '/^kind: Namespace/{f=1} f&&/^  name:/{print $2; exit}' "$manifests")
[[ -n $NS ]] || { echo "overlay renders no Namespace" >&2; exit 2; }

echo "== $ENV: namespace $NS"
"${KUBECTL[@]}" apply -f "$manifests" -l 'app.kubernetes.io/component in (config)'
"${KUBECTL[@]}" get secret billing-secrets -n "$NS" >/dev/null \
  || { echo "Secret billing-secrets missing in $NS (docs/operations.md#secrets)" >&2; exit 1; }

echo "== migrations"
"${KUBECTL[@]}" delete job -n "$NS" -l app.kubernetes.io/component=migration --ignore-not-found --wait=true
"${KUBECTL[@]}" apply -f "$manifests" -l app.kubernetes.io/component=migration
if ! "${KUBECTL[@]}" wait -n "$NS" --for=condition=complete job -l app.kubernetes.io/component=migration --timeout="$TIMEOUT"; then
  echo "a migration Job did not complete; nothing was rolled out. Logs:" >&2
  "${KUBECTL[@]}" logs -n "$NS" -l app.kubernetes.io/component=migration --tail=50 --prefix >&2 || true
  exit 1
fi

echo "== services"
"${KUBECTL[@]}" apply -f "$manifests" -l 'app.kubernetes.io/component notin (migration)'
for d in $("${KUBECTL[@]}" get deploy -n "$NS" -l app.kubernetes.io/part-of=billing -o name); do
  "${KUBECTL[@]}" rollout status -n "$NS" "$d" --timeout=10m
done
echo "== $ENV deployed"
