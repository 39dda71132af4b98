#!/usr/bin/env python3
"""Checks behind scripts/k8s-validate.sh. Each sub-command prints one line per problem and
exits non-zero when there is any.

  check.py manifests ENV FILE      rendered overlay: Kubernetes schemas (kubernetes-validate,
                                   strict, every version in K8S_VERSIONS), bundled KEDA schemas,
                                   secret material, and this repository's deployment rules
  check.py secrets FILE...         secret patterns in raw files (k8s/ sources)
  check.py secrets-dev FILE...     the same, tolerating the documented dev-only literals of
                                   ALLOWED_DEV_LITERALS (deploy/compose.yaml)
  check.py compose FILE            deploy/compose.yaml structure (services, healthchecks, deps)
  check.py dashboards FILE...      Grafana dashboard JSON: panels, queries only on known metrics
  check.py rules FILE              Prometheus rule file: alerts named, labelled, on known metrics
  check.py dashboard-promql DASH OUT  the dashboard's queries as a rule file, for promtool
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
import sys
from typing import Any, Iterator

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
K8S_VERSIONS = os.environ.get("K8S_VERSIONS", "1.30.0 1.33.0").split()

SERVICES = {  # name -> (port, schema)
    "ingress": (8081, "ingress"),
    "sync-worker": (9102, "billing"),
    "matcher": (9103, "matching"),
    "risk-engine": (9104, "risk"),
    "query-api": (8080, "integration"),
}
PUBLIC = {"ingress", "query-api"}
# Env each service needs from Secret billing-secrets (it refuses to start without them).
REQUIRED_SECRET_ENV = {
    "ingress": {"DATABASE_URL", "AMQP_URL", "STRIPE_WEBHOOK_SECRET"},
    "sync-worker": {"DATABASE_URL", "AMQP_URL"},
    "matcher": {"DATABASE_URL", "AMQP_URL"},
    "risk-engine": {"DATABASE_URL", "AMQP_URL"},
    "query-api": {"DATABASE_URL", "AMQP_URL", "BILLING_JWT_SECRET", "BILLING_MASTER_KEYS"},
}
SECRET_NAMES = {"billing-secrets"}          # referenced, never defined in the manifests
TLS_SECRET_NAMES = {"billing-tls"}          # Ingress certificates, issued outside the manifests
ALLOWED_ROUTES = {
    ("/api/integrations/stripe/webhook", "Exact", "ingress"),
    ("/api/integrations/stripe/webhook/connect", "Exact", "ingress"),
    ("/api", "Prefix", "query-api"),
    ("/ui", "Prefix", "query-api"),
}
KEDA_QUEUES = {
    "sync-worker": {"sync-worker.stripe-events", "sync-worker.jobs"},
    "risk-engine": {"risk-engine.billing", "risk-engine.matching"},
}
# Schemas bundled here for custom resources (kubernetes-validate only knows built-in kinds).
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh-v1alpha1-ScaledObject.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda.sh-v1alpha1-TriggerAuthentication.json",
}

# ---------------------------------------------------------------- secret material

SECRET_PATTERNS = [
    ("Stripe webhook secret", re.compile(r"whsec_[A-Za-z0-9]{4,}")),
    ("Stripe secret key", re.compile(r"\bsk_(?:live|test)_[A-Za-z0-9]{4,}")),
    ("Stripe restricted key", re.compile(r"\brk_(?:live|test)_[A-Za-z0-9]{4,}")),
    ("Stripe publishable/other live key", re.compile(r"\b(?:pk|sk|rk)_live_[A-Za-z0-9]+")),
    ("private key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")),
    ("password in URL", re.compile(r"\b[a-z][a-z0-9+.\-]*://[^\s/:@'\"]+:[^\s/@'\"]+@")),
    ("AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("JWT", re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*")),
    ("Slack/GitHub token", re.compile(r"\b(?:xox[abprs]-[A-Za-z0-9\-]{10,}|gh[pousr]_[A-Za-z0-9]{30,})")),
]
# Literals that are documented dev-only values (README: `whsec_demo_local_only`; RabbitMQ's
# built-in guest account on a laptop; the Stripe fake's built-in test key). Tolerated in deploy/compose.yaml only, never in k8s/.
ALLOWED_DEV_LITERALS = ["whsec_demo_local_only", "amqp://guest:guest@", "sk_test_fake"]
SENSITIVE_NAME = re.compile(
    r"(SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|CREDENTIAL|API_?KEY|MASTER_?KEY|SIGNING_?KEY|_KEY$|^KEY$"
    r"|DATABASE_URL|AMQP_URL|DSN$)", re.I)
# Non-secret settings whose names happen to match SENSITIVE_NAME.
NOT_SENSITIVE = {"BILLING__AMQP__DELIVERY_LIMIT"}


def shannon(s: str) -> float:
    counts = {c: s.count(c) for c in set(s)}
    return -sum(n / len(s) * math.log2(n / len(s)) for n in counts.values())


def looks_like_blob(value: str) -> bool:
    """A long base64/hex string with high entropy: key material, not configuration."""
    v = value.strip()
    if len(v) < 24 or any(c.isspace() for c in v):
        return False
    if re.fullmatch(r"[0-9a-fA-F]{32,}", v):
        return True
    if re.fullmatch(r"[A-Za-z0-9+/_\-]{24,}={0,2}", v) and shannon(v) > 4.0:
        try:
            base64.b64decode(v + "=" * (-len(v) % 4), altchars=b"-_" if ("-" in v or "_" in v) else None)
            return True
        except (binascii.Error, ValueError):
            return False
    return False


def scan_text(text: str, where: str, allowed: list[str] = ()) -> list[str]:
    problems = []
    for lineno, line in enumerate(text.splitlines(), 1):
        for a in allowed:
            line = line.replace(a, "")
        for label, rx in SECRET_PATTERNS:
            if rx.search(line):
                problems.append(f"{where}:{lineno}: looks like a secret ({label}): {line.strip()[:100]}")
    return problems


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, f"{path}[{i}]")


def secret_problems(objects: list[dict]) -> list[str]:
    problems = []
    for o in objects:
        where = f"{o.get('kind')}/{o.get('metadata', {}).get('name')}"
        if o.get("kind") in ("Secret", "SealedSecret"):
            problems.append(f"{where}: Secrets must not be defined in the manifests "
                            "(reference Secret billing-secrets, created out of band)")
        if o.get("kind") == "ConfigMap":
            for k, v in (o.get("data") or {}).items():
                if SENSITIVE_NAME.search(k) and k not in NOT_SENSITIVE:
                    problems.append(f"{where}: key {k} looks sensitive: put it in billing-secrets")
                if isinstance(v, str) and looks_like_blob(v):
                    problems.append(f"{where}: value of {k} looks like key material")
            if o.get("binaryData"):
                problems.append(f"{where}: binaryData not allowed in ConfigMaps")
        for path, node in walk(o):
            if path.endswith(".env") and isinstance(node, list):
                for e in node:
                    if "value" not in e:
                        continue
                    name, value = e.get("name", ""), str(e["value"])
                    if SENSITIVE_NAME.search(name) and name not in NOT_SENSITIVE:
                        problems.append(f"{where}: env {name} has a literal value; use valueFrom.secretKeyRef")
                    if looks_like_blob(value):
                        problems.append(f"{where}: env {name} value looks like key material")
            if isinstance(node, str) and "\n" not in node and looks_like_blob(node) \
                    and not path.endswith(".image") and "annotations" not in path:
                problems.append(f"{where}: {path} looks like key material")
    text = yaml.safe_dump_all(objects)
    problems += scan_text(text, "rendered")
    return problems


# ---------------------------------------------------------------- schemas

def schema_problems(objects: list[dict]) -> list[str]:
    import jsonschema
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

    problems = []
    for o in objects:
        where = f"{o.get('kind')}/{o.get('metadata', {}).get('name')}"
        crd = CRD_SCHEMAS.get((o.get("apiVersion"), o.get("kind")))
        if crd:
            with open(os.path.join(HERE, "schemas", crd)) as f:
                schema = json.load(f)
            v = jsonschema.Draft202012Validator(schema)
            for err in sorted(v.iter_errors(o), key=lambda e: list(e.path)):
                path = ".".join(str(p) for p in err.path)
                problems.append(f"{where}: {path}: {err.message} (bundled {crd})")
            continue
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(o, version, strict=True)
            except ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                problems.append(f"{where}: k8s {version}: {path}: {e.message}")
            except SchemaNotFoundError as e:
                problems.append(f"{where}: {e.message} (add a schema to k8s/tools/schemas/)")
    return problems


# ---------------------------------------------------------------- deployment rules

def pod_spec(o: dict) -> dict | None:
    if o.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return o["spec"]["template"]["spec"]
    if o.get("kind") == "CronJob":
        return o["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def rule_problems(env: str, objects: list[dict]) -> list[str]:
    p: list[str] = []
    by_kind: dict[str, list[dict]] = {}
    for o in objects:
        by_kind.setdefault(o["kind"], []).append(o)
    name = lambda o: o["metadata"]["name"]  # noqa: E731
    deployments = {name(d): d for d in by_kind.get("Deployment", [])}

    # Namespace: exactly one, every namespaced object in it, restricted Pod Security.
    namespaces = by_kind.get("Namespace", [])
    if len(namespaces) != 1:
        p.append(f"expected exactly one Namespace, found {len(namespaces)}")
    else:
        ns = name(namespaces[0])
        if namespaces[0]["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce") != "restricted":
            p.append(f"Namespace/{ns}: must enforce the restricted Pod Security Standard")
        for o in objects:
            if o["kind"] != "Namespace" and o["metadata"].get("namespace") != ns:
                p.append(f"{o['kind']}/{name(o)}: namespace {o['metadata'].get('namespace')!r}, expected {ns!r}")

    # Every service has its Deployment, Service, PDB and migration Job.
    for svc, (port, schema) in SERVICES.items():
        if svc not in deployments:
            p.append(f"Deployment/{svc} missing")
            continue
        c = deployments[svc]["spec"]["template"]["spec"]["containers"][0]
        if c.get("command") != [f"/usr/local/bin/{svc}"] or c.get("args") != ["serve"]:
            p.append(f"Deployment/{svc}: must run `/usr/local/bin/{svc} serve`")
        refs = {e["name"] for e in c.get("env", [])
                if e.get("valueFrom", {}).get("secretKeyRef", {}).get("optional") is not True
                and "secretKeyRef" in e.get("valueFrom", {})}
        for missing in sorted(REQUIRED_SECRET_ENV[svc] - refs):
            p.append(f"Deployment/{svc}: env {missing} must come from a (non-optional) secretKeyRef")
        if not any(x.get("containerPort") == port for x in c.get("ports", [])):
            p.append(f"Deployment/{svc}: must expose port {port}")
        if not any(name(s) == svc for s in by_kind.get("Service", [])):
            p.append(f"Service/{svc} missing")
        if not any(name(s) == svc for s in by_kind.get("PodDisruptionBudget", [])):
            p.append(f"PodDisruptionBudget/{svc} missing")
        jobs = [j for j in by_kind.get("Job", [])
                if j["spec"]["template"]["spec"]["containers"][0].get("command") == [f"/usr/local/bin/{svc}"]
                and j["spec"]["template"]["spec"]["containers"][0].get("args") == ["migrate"]]
        if len(jobs) != 1:
            p.append(f"schema {schema}: expected one migration Job running `{svc} migrate`, found {len(jobs)}")

    # Pods: hardened, sized, probed, pinned images, secrets only by reference.
    for o in objects:
        spec = pod_spec(o)
        if spec is None:
            continue
        where = f"{o['kind']}/{name(o)}"
        psc = spec.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True:
            p.append(f"{where}: pod securityContext.runAsNonRoot must be true")
        if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            p.append(f"{where}: pod seccompProfile must be RuntimeDefault")
        if spec.get("automountServiceAccountToken") is not False:
            p.append(f"{where}: automountServiceAccountToken must be false")
        if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
            p.append(f"{where}: host namespaces are not allowed")
        for c in spec.get("initContainers", []) + spec.get("containers", []):
            cw = f"{where} container {c['name']}"
            sc = c.get("securityContext", {})
            if sc.get("allowPrivilegeEscalation") is not False:
                p.append(f"{cw}: allowPrivilegeEscalation must be false")
            if sc.get("readOnlyRootFilesystem") is not True:
                p.append(f"{cw}: readOnlyRootFilesystem must be true")
            if "ALL" not in (sc.get("capabilities", {}).get("drop") or []):
                p.append(f"{cw}: capabilities must drop ALL")
            if sc.get("capabilities", {}).get("add"):
                p.append(f"{cw}: no capability may be added")
            if sc.get("privileged"):
                p.append(f"{cw}: privileged is not allowed")
            res = c.get("resources", {})
            for k in ("cpu", "memory"):
                if k not in res.get("requests", {}):
                    p.append(f"{cw}: resources.requests.{k} missing")
            if "memory" not in res.get("limits", {}):
                p.append(f"{cw}: resources.limits.memory missing")
            image = c.get("image", "")
            if "/" not in image or not re.search(r"(:[\w.\-]+|@sha256:[0-9a-f]{64})$", image.split("/")[-1]):
                p.append(f"{cw}: image {image!r} must be a registry path with a tag or digest (overlay `images:`)")
            if image.endswith(":latest"):
                p.append(f"{cw}: image tag latest is not allowed")
            if o["kind"] == "Deployment":
                for probe in ("livenessProbe", "readinessProbe"):
                    if probe not in c:
                        p.append(f"{cw}: {probe} missing")
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref and ref.get("name") not in SECRET_NAMES:
                    p.append(f"{cw}: env {e['name']} references Secret {ref.get('name')!r}, expected one of {sorted(SECRET_NAMES)}")
            for ef in c.get("envFrom", []):
                if "secretRef" in ef:
                    p.append(f"{cw}: envFrom secretRef imports a whole Secret; reference single keys")
        if o["kind"] == "Deployment" and name(o) in SERVICES:
            tgps = spec.get("terminationGracePeriodSeconds", 30)
            if not 30 <= tgps <= 120:
                p.append(f"{where}: terminationGracePeriodSeconds {tgps} outside 30..120 (drain time)")
        for v in spec.get("volumes", []):
            if "secret" in v and v["secret"].get("secretName") not in SECRET_NAMES:
                p.append(f"{where}: volume {v['name']} mounts an unexpected Secret")
            if "hostPath" in v:
                p.append(f"{where}: hostPath volumes are not allowed")

    # Migration Jobs run before rollout: PreSync hook, no ttl (re-apply would re-create them).
    for j in by_kind.get("Job", []):
        ann = j["metadata"].get("annotations", {})
        if ann.get("argocd.argoproj.io/hook") != "PreSync":
            p.append(f"Job/{name(j)}: needs argocd.argoproj.io/hook: PreSync (runs before rollout)")
        if "ttlSecondsAfterFinished" in j["spec"]:
            p.append(f"Job/{name(j)}: no ttlSecondsAfterFinished (deploy/k8s-rollout.sh deletes old Jobs)")
        labels = j["spec"]["template"]["metadata"].get("labels", {})
        if labels.get("app.kubernetes.io/component") != "migration":
            p.append(f"Job/{name(j)}: pod label app.kubernetes.io/component=migration missing")

    # Services and PDBs select Deployment pods (and never migration pods).
    pod_labels = {n: d["spec"]["template"]["metadata"]["labels"] for n, d in deployments.items()}
    job_labels = [j["spec"]["template"]["metadata"]["labels"] for j in by_kind.get("Job", [])]
    for s in by_kind.get("Service", []):
        sel = s["spec"].get("selector", {})
        if not any(selects(sel, lab) for lab in pod_labels.values()):
            p.append(f"Service/{name(s)}: selector {sel} matches no Deployment")
        if any(selects(sel, lab) for lab in job_labels):
            p.append(f"Service/{name(s)}: selector also matches migration Job pods")
    for b in by_kind.get("PodDisruptionBudget", []):
        sel = b["spec"]["selector"].get("matchLabels", {})
        if not any(selects(sel, lab) for lab in pod_labels.values()):
            p.append(f"PodDisruptionBudget/{name(b)}: selects no Deployment")

    # Autoscaling: one owner per Deployment, no `replicas` fighting it, PDB below the floor.
    owners: dict[str, tuple[str, int]] = {}
    for h in by_kind.get("HorizontalPodAutoscaler", []):
        owners.setdefault(h["spec"]["scaleTargetRef"]["name"], ("hpa", h["spec"].get("minReplicas", 1)))
    for so in by_kind.get("ScaledObject", []):
        t = so["spec"]["scaleTargetRef"]["name"]
        if t in owners:
            p.append(f"Deployment/{t}: scaled by both an HPA and a ScaledObject")
        owners[t] = ("keda", so["spec"].get("minReplicaCount", 0))
        queues = {tr["metadata"].get("queueName") for tr in so["spec"]["triggers"]}
        if t in KEDA_QUEUES and queues != KEDA_QUEUES[t]:
            p.append(f"ScaledObject/{name(so)}: scales on {sorted(queues)}, expected {sorted(KEDA_QUEUES[t])}")
        tas = {name(x) for x in by_kind.get("TriggerAuthentication", [])}
        for tr in so["spec"]["triggers"]:
            if "host" in tr["metadata"] or "hostFromEnv" in tr["metadata"]:
                p.append(f"ScaledObject/{name(so)}: broker address must come from a TriggerAuthentication")
            if tr.get("authenticationRef", {}).get("name") not in tas:
                p.append(f"ScaledObject/{name(so)}: authenticationRef names no TriggerAuthentication")
    for ta in by_kind.get("TriggerAuthentication", []):
        for ref in ta["spec"].get("secretTargetRef", []):
            if ref["name"] not in SECRET_NAMES:
                p.append(f"TriggerAuthentication/{name(ta)}: references Secret {ref['name']!r}")
    for t in owners:
        if t not in deployments:
            p.append(f"autoscaler targets missing Deployment/{t}")
        elif "replicas" in deployments[t]["spec"]:
            p.append(f"Deployment/{t}: has spec.replicas but is autoscaled ({owners[t][0]}); drop it")
    for b in by_kind.get("PodDisruptionBudget", []):
        n = name(b)
        floor = owners.get(n, ("", deployments.get(n, {}).get("spec", {}).get("replicas", 1)))[1]
        m = b["spec"].get("minAvailable")
        if isinstance(m, int) and m >= max(floor, 1):
            p.append(f"PodDisruptionBudget/{n}: minAvailable {m} >= minimum replicas {floor}: nodes could never drain")
    if env == "prod":
        for svc in ("ingress", "query-api"):
            if owners.get(svc, ("", 0))[0] != "hpa":
                p.append(f"prod: {svc} must be scaled by an HPA")
        for svc in KEDA_QUEUES:
            if owners.get(svc, ("", 0))[0] != "keda":
                p.append(f"prod: {svc} must be scaled by a KEDA ScaledObject")
        for b in by_kind.get("PodDisruptionBudget", []):
            if "minAvailable" not in b["spec"]:
                p.append(f"prod: PodDisruptionBudget/{name(b)} must use minAvailable")
        for svc in SERVICES:
            floor = owners.get(svc, ("", deployments.get(svc, {}).get("spec", {}).get("replicas", 1)))[1]
            if floor < 2:
                p.append(f"prod: {svc} runs fewer than 2 replicas at minimum ({floor})")

    # Ingress: only the allowed routes, to existing Services' named ports, with TLS.
    svc_ports = {name(s): {x.get("name") for x in s["spec"]["ports"]} for s in by_kind.get("Service", [])}
    for ing in by_kind.get("Ingress", []):
        if not ing["spec"].get("tls"):
            p.append(f"Ingress/{name(ing)}: TLS missing")
        for t in ing["spec"].get("tls", []):
            if t.get("secretName") not in TLS_SECRET_NAMES:
                p.append(f"Ingress/{name(ing)}: TLS secret {t.get('secretName')!r} unexpected")
        if ing["spec"].get("defaultBackend"):
            p.append(f"Ingress/{name(ing)}: defaultBackend would expose everything else")
        for rule in ing["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                be = path["backend"]["service"]
                route = (path["path"], path["pathType"], be["name"])
                if route not in ALLOWED_ROUTES:
                    p.append(f"Ingress/{name(ing)}: route {route} not allowed (only webhooks, /api, /ui)")
                if be["port"].get("name") not in svc_ports.get(be["name"], set()):
                    p.append(f"Ingress/{name(ing)}: backend {be['name']}:{be['port']} has no such Service port")

    # NetworkPolicies: default deny; from outside the namespace only the public services
    # (ingress controller) and metrics scraping from `monitoring`.
    nps = by_kind.get("NetworkPolicy", [])
    if not any(np_["spec"].get("podSelector") == {} and "Ingress" in np_["spec"].get("policyTypes", [])
               and not np_["spec"].get("ingress") for np_ in nps):
        p.append("NetworkPolicy: a default-deny-ingress policy (podSelector {}, no rules) is required")
    for np_ in nps:
        for rule in np_["spec"].get("ingress", []):
            for peer in rule.get("from", []):
                if "ipBlock" in peer:
                    p.append(f"NetworkPolicy/{name(np_)}: ipBlock peers not allowed")
                nsl = peer.get("namespaceSelector")
                if nsl is None:
                    continue
                ns_name = (nsl.get("matchLabels") or {}).get("kubernetes.io/metadata.name")
                if ns_name == "monitoring":
                    continue
                sel = np_["spec"]["podSelector"]
                targets = set()
                for ex in sel.get("matchExpressions", []):
                    if ex["key"] == "app.kubernetes.io/name" and ex["operator"] == "In":
                        targets |= set(ex["values"])
                if sel.get("matchLabels", {}).get("app.kubernetes.io/name"):
                    targets.add(sel["matchLabels"]["app.kubernetes.io/name"])
                if not targets or not targets <= PUBLIC:
                    p.append(f"NetworkPolicy/{name(np_)}: traffic from namespace {ns_name or nsl} "
                             f"may only reach {sorted(PUBLIC)}")
    return p


# ---------------------------------------------------------------- compose

def compose_problems(path: str) -> list[str]:
    p = []
    with open(path) as f:
        doc = yaml.safe_load(f)
    services = doc.get("services", {})
    want = {"postgres", "rabbitmq", "stripe-fake", *SERVICES}
    for missing in sorted(want - set(services)):
        p.append(f"{path}: service {missing} missing")
    for n, s in services.items():
        if "image" not in s and "build" not in s:
            p.append(f"{path}: {n}: needs image or build")
        if "healthcheck" not in s:
            p.append(f"{path}: {n}: healthcheck missing")
        deps = s.get("depends_on", {})
        for d in (deps if isinstance(deps, list) else deps.keys()):
            if d not in services:
                p.append(f"{path}: {n}: depends_on unknown service {d}")
        for port in s.get("ports", []):
            if not str(port).startswith("127.0.0.1:"):
                p.append(f"{path}: {n}: port {port} must bind 127.0.0.1 (laptop only)")
    for n in SERVICES:
        s = services.get(n, {})
        env = s.get("environment", {})
        if isinstance(env, list):
            env = dict(x.split("=", 1) for x in env)
        for k in ("DATABASE_URL", "AMQP_URL"):
            if k not in env:
                p.append(f"{path}: {n}: {k} missing")
        section = n.replace("-", "_").upper()
        if not str(env.get(f"BILLING__{section}__LISTEN", "")).startswith("0.0.0.0:"):
            p.append(f"{path}: {n}: BILLING__{section}__LISTEN must bind 0.0.0.0")
    qa = services.get("query-api", {})
    if "../.run/dev-secrets.env" not in (qa.get("env_file") or []):
        p.append(f"{path}: query-api needs env_file ../.run/dev-secrets.env (BILLING_JWT_SECRET, BILLING_MASTER_KEYS)")
    fake = " ".join(map(str, services.get("stripe-fake", {}).get("command", [])))
    if "http://ingress:8081/api/integrations/stripe/webhook" not in fake:
        p.append(f"{path}: stripe-fake must deliver webhooks to http://ingress:8081/api/integrations/stripe/webhook")
    return p


# ---------------------------------------------------------------- observability

KNOWN_METRICS = {
    "ingress_webhooks_received_total", "ingress_webhooks_rejected_total", "sync_jobs_total",
    "ingress_webhooks_duplicate_total", "ingress_events_published_total",
    "ingress_events_connect_total", "ingress_outbox_lag_seconds",
    "ingress_outbox_lag_seconds_sum", "ingress_outbox_lag_seconds_count",
    "ingress_group_commit_size", "ingress_group_commit_size_sum",
    "ingress_group_commit_size_count", "amqp_published_total", "amqp_consumed_total",
    "amqp_dead_lettered_total", "amqp_connects_total", "up", "kube_deployment_status_replicas_available",
    "kube_deployment_spec_replicas", "kube_pod_container_status_ready",
    "kube_pod_container_status_restarts_total", "container_memory_working_set_bytes",
    "container_cpu_usage_seconds_total", "kube_job_status_failed",
}
PROMQL_WORDS = {
    "sum", "rate", "irate", "increase", "by", "without", "max", "min", "avg", "count", "on",
    "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool", "topk",
    "bottomk", "histogram_quantile", "clamp_min", "clamp_max", "abs", "absent", "vector",
    "label_replace", "max_over_time", "min_over_time", "avg_over_time", "delta", "deriv",
    "changes", "resets", "time", "scalar", "sort", "sort_desc", "quantile", "count_over_time",
    "le", "quantile_over_time", "absent_over_time", "last_over_time", "round", "ceil", "floor",
}


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', '""', expr)                 # label values
    expr = re.sub(r"\{[^}]*\}", "{}", expr)               # matchers
    expr = re.sub(r"\[[^\]]*\]", "[]", expr)              # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\$\{?\w+\}?", "", expr)                # Grafana variables
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b", expr))
    return {n for n in names if n not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhdw]?", n)
            and not n.startswith(("rabbitmq_",))} | {n for n in names if n.startswith("rabbitmq_")}


def unknown_metrics(expr: str) -> set[str]:
    out = set()
    for n in metric_names(expr):
        if n.startswith("rabbitmq_"):
            if n not in {"rabbitmq_queue_messages_ready", "rabbitmq_queue_messages_unacked",
                         "rabbitmq_queue_messages", "rabbitmq_identity_info", "rabbitmq_build_info",
                         "rabbitmq_connections", "rabbitmq_queue_consumers"}:
                out.add(n)
        elif n not in KNOWN_METRICS and not re.fullmatch(r"e\d*|inf|Inf|NaN|nan|x", n):
            out.add(n)
    return out


def dashboard_problems(path: str) -> list[str]:
    p = []
    with open(path) as f:
        d = json.load(f)
    panels = []
    stack = list(d.get("panels", []))
    while stack:
        x = stack.pop(0)
        panels.append(x)
        stack.extend(x.get("panels", []))
    ids = [x.get("id") for x in panels]
    if len(ids) != len(set(ids)):
        p.append(f"{path}: duplicate panel ids")
    used: set[str] = set()
    for x in panels:
        if x.get("type") == "row":
            continue
        if not x.get("targets"):
            p.append(f"{path}: panel {x.get('title')!r} has no query")
        for t in x.get("targets", []):
            expr = t.get("expr", "")
            used |= metric_names(expr)
            for n in unknown_metrics(expr):
                p.append(f"{path}: panel {x.get('title')!r}: unknown metric {n}")
    required = {"ingress_webhooks_received_total", "ingress_webhooks_rejected_total",
                "ingress_webhooks_duplicate_total", "ingress_events_published_total",
                "ingress_outbox_lag_seconds", "ingress_group_commit_size", "amqp_published_total",
                "amqp_consumed_total", "amqp_dead_lettered_total", "amqp_connects_total",
                "rabbitmq_queue_messages_ready"}
    for n in sorted(required - used):
        p.append(f"{path}: no panel shows {n}")
    return p


def rules_problems(path: str) -> list[str]:
    p = []
    with open(path) as f:
        doc = yaml.safe_load(f)
    alerts = set()
    for g in doc.get("groups", []):
        for r in g.get("rules", []):
            n = r.get("alert") or r.get("record")
            if r.get("alert"):
                alerts.add(n)
                if r.get("labels", {}).get("severity") not in ("page", "ticket", "info"):
                    p.append(f"{path}: {n}: labels.severity must be page|ticket|info")
                for k in ("summary", "description", "runbook_url"):
                    if k not in r.get("annotations", {}):
                        p.append(f"{path}: {n}: annotations.{k} missing")
            for m in unknown_metrics(r.get("expr", "")):
                p.append(f"{path}: {n}: unknown metric {m}")
    for want in ("BillingOutboxLagHigh", "BillingDeadLetterQueueNotEmpty", "BillingDeadLetteringRate",
                 "BillingWebhookRejectionSpike", "BillingBrokerReconnects", "BillingServiceNotReady",
                 "BillingSyncJobsFailing"):
        if want not in alerts:
            p.append(f"{path}: alert {want} missing")
    return p


# ---------------------------------------------------------------- main

def report(title: str, problems: list[str]) -> int:
    if problems:
        print(f"  FAIL  {title}: {len(problems)} problem(s)")
        for x in problems:
            print(f"          - {x}")
        return 1
    print(f"  ok    {title}")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "manifests":
        env, path = args
        with open(path) as f:
            objects = [o for o in yaml.safe_load_all(f) if o]
        kinds = sorted({o["kind"] for o in objects})
        print(f"  ..    {env}: {len(objects)} objects ({', '.join(kinds)})")
        failed = report(f"{env}: schemas (Kubernetes {', '.join(K8S_VERSIONS)} strict; KEDA bundled)",
                        schema_problems(objects))
        failed |= report(f"{env}: no secret material", secret_problems(objects))
        failed |= report(f"{env}: deployment rules", rule_problems(env, objects))
        return failed
    if cmd in ("secrets", "secrets-dev"):
        allowed = ALLOWED_DEV_LITERALS if cmd == "secrets-dev" else []
        problems = []
        for path in args:
            with open(path) as f:
                problems += scan_text(f.read(), path, allowed)
        files = ", ".join(args) if len(args) <= 3 else f"{len(args)} files"
        return report(f"no secret material in {files}", problems)
    if cmd == "compose":
        return report(f"{args[0]} structure", compose_problems(args[0]))
    if cmd == "dashboards":
        return max(report(f"{a} panels and metrics", dashboard_problems(a)) for a in args)
    if cmd == "dashboard-promql":
        # Writes the dashboard's queries as recording rules so `promtool check rules` parses them.
        src, out = args
        with open(src) as f:
            d = json.load(f)
        rules, stack = [], list(d.get("panels", []))
        while stack:
            x = stack.pop(0)
            stack.extend(x.get("panels", []))
            for t in x.get("targets", []):
                expr = (t.get("expr", "").replace("$__rate_interval", "5m").replace("$__range", "1h")
                        .replace("$__interval", "1m").replace("$namespace", "billing.*"))
                rules.append({"record": f"dashboard:panel_{x['id']}_{t['refId']}", "expr": expr})
        with open(out, "w") as f:
            yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, f)
        print(f"  ..    {src}: {len(rules)} queries written for promtool")
        return 0
    if cmd == "rules":
        return report(f"{args[0]} alerts and metrics", rules_problems(args[0]))
    print(f"unknown command {cmd}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
