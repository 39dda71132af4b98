"""Tests of the fallback renderer and of the checks (run by scripts/k8s-validate.sh).

  python -m unittest discover -s k8s/tools -p 'test_*.py'
"""
from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import check  # noqa: E402
import render  # noqa: E402

OVERLAYS = sorted(
    os.path.join(ROOT, "k8s", "overlays", d)
    for d in os.listdir(os.path.join(ROOT, "k8s", "overlays"))
    if os.path.isfile(os.path.join(ROOT, "k8s", "overlays", d, "kustomization.yaml"))
)


def by_id(objects):
    return {render.ident(o): o for o in objects}


def real_kustomize():
    """`kubectl kustomize` or `kustomize build` when installed (the reference implementation)."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        try:
            subprocess.run(["kubectl", "kustomize", "--help"], check=True, capture_output=True, timeout=20)
            return ["kubectl", "kustomize"]
        except (subprocess.SubprocessError, OSError):
            return None
    return None


class FallbackRendererMatchesKustomize(unittest.TestCase):
    def test_every_overlay_renders_identically(self):
        tool = real_kustomize()
        if tool is None:
            self.skipTest("no kustomize/kubectl to compare with")
        for overlay in OVERLAYS:
            with self.subTest(overlay=os.path.basename(overlay)):
                out = subprocess.run(tool + [overlay], check=True, capture_output=True, text=True).stdout
                expected = by_id(d for d in yaml.safe_load_all(out) if d)
                got = by_id(render.render(overlay))
                self.assertEqual(sorted(map(str, got)), sorted(map(str, expected)))
                for key, obj in expected.items():
                    self.assertEqual(got[key], obj, f"{key} differs")


class FallbackRendererFeatures(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.dir)

    def write(self, rel, text):
        path = os.path.join(self.dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text))

    def base(self):
        self.write("base/kustomization.yaml", """
            resources: [deploy.yaml]
        """)
        self.write("base/deploy.yaml", """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web}
            spec:
              replicas: 1
              template:
                spec:
                  containers:
                    - name: web
                      image: billing
                      env: [{name: A, value: "1"}, {name: B, value: "2"}]
                    - name: side
                      image: other:1.0
            ---
            apiVersion: policy/v1
            kind: PodDisruptionBudget
            metadata: {name: web}
            spec: {maxUnavailable: 1}
            ---
            apiVersion: v1
            kind: Namespace
            metadata: {name: ns1}
        """)

    def test_namespace_images_and_strategic_merge(self):
        self.base()
        self.write("ov/kustomization.yaml", """
            namespace: ns1
            resources: [../base]
            images: [{name: billing, newName: reg.io/x/billing, newTag: "2.0"}]
            patches:
              - path: p.yaml
        """)
        self.write("ov/p.yaml", """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web}
            spec:
              replicas: 3
              template:
                spec:
                  containers:
                    - name: web
                      env: [{name: B, value: "20"}, {name: C, value: "3"}]
            ---
            apiVersion: policy/v1
            kind: PodDisruptionBudget
            metadata: {name: web}
            spec: {maxUnavailable: null, minAvailable: 2}
        """)
        objs = {o["kind"]: o for o in render.render(os.path.join(self.dir, "ov"))}
        d = objs["Deployment"]
        self.assertEqual(d["metadata"]["namespace"], "ns1")
        self.assertNotIn("namespace", objs["Namespace"]["metadata"])
        self.assertEqual(d["spec"]["replicas"], 3)
        web, side = d["spec"]["template"]["spec"]["containers"]
        self.assertEqual(web["image"], "reg.io/x/billing:2.0")
        self.assertEqual(side["image"], "other:1.0")
        self.assertEqual(web["env"], [{"name": "A", "value": "1"}, {"name": "B", "value": "20"},
                                      {"name": "C", "value": "3"}])
        self.assertEqual(objs["PodDisruptionBudget"]["spec"], {"minAvailable": 2})

    def test_json6902_patch(self):
        self.base()
        self.write("ov/kustomization.yaml", """
            resources: [../base]
            patches:
              - target: {kind: Deployment, name: web}
                patch: |-
                  - op: replace
                    path: /spec/replicas
                    value: 5
                  - op: add
                    path: /spec/template/spec/containers/0/env/-
                    value: {name: Z, value: "9"}
                  - op: remove
                    path: /spec/template/spec/containers/1
        """)
        d = [o for o in render.render(os.path.join(self.dir, "ov")) if o["kind"] == "Deployment"][0]
        self.assertEqual(d["spec"]["replicas"], 5)
        self.assertEqual(len(d["spec"]["template"]["spec"]["containers"]), 1)
        self.assertEqual(d["spec"]["template"]["spec"]["containers"][0]["env"][-1], {"name": "Z", "value": "9"})

    def test_unknown_fields_and_unmatched_patches_fail_loudly(self):
        self.base()
        self.write("ov/kustomization.yaml", """
            resources: [../base]
            commonLabels: {a: b}
        """)
        with self.assertRaises(render.RenderError):
            render.render(os.path.join(self.dir, "ov"))
        self.write("ov/kustomization.yaml", """
            resources: [../base]
            patches: [{path: p.yaml}]
        """)
        self.write("ov/p.yaml", """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: nope}
            spec: {replicas: 2}
        """)
        with self.assertRaises(render.RenderError):
            render.render(os.path.join(self.dir, "ov"))


def rendered(env):
    return render.render(os.path.join(ROOT, "k8s", "overlays", env))


def deployment(objects, name):
    return next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == name)


class Checks(unittest.TestCase):
    """Each check passes on the real overlays and fails on a planted problem."""

    def test_overlays_pass(self):
        for env in ("dev", "prod"):
            objs = rendered(env)
            self.assertEqual(check.secret_problems(objs), [], env)
            self.assertEqual(check.rule_problems(env, objs), [], env)

    def test_secret_material_is_found(self):
        samples = {
            "whsec_" + "abcdEFGH1234": "Stripe webhook secret",
            "sk_" + "live_51Habcdef": "Stripe secret key",
            "rk_" + "test_51Habcdef": "Stripe restricted key",
            "-----BEGIN " + "RSA PRIVATE KEY-----": "private key",
            "postgres://billing:" + "hunter2@db:5432/billing": "password in URL",
        }
        for value, label in samples.items():
            objs = rendered("prod")
            c = deployment(objs, "matcher")["spec"]["template"]["spec"]["containers"][0]
            c["env"].append({"name": "HARMLESS_LOOKING", "value": value})
            problems = check.secret_problems(objs)
            self.assertTrue(any(label in p for p in problems), (value, problems))

    def test_literal_secret_env_and_blobs_and_secret_objects(self):
        objs = rendered("prod")
        c = deployment(objs, "ingress")["spec"]["template"]["spec"]["containers"][0]
        c["env"] = [e for e in c["env"] if e["name"] != "STRIPE_WEBHOOK_SECRET"]
        c["env"].append({"name": "STRIPE_WEBHOOK_SECRET", "value": "not-even-prefixed"})
        c["env"].append({"name": "SOMETHING", "value": "q83vEjRWeJCrze8SNFZ4kKvN7xI0Vn0t9d2Qf4hY1gE="})
        objs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "billing-secrets"},
                     "data": {"database-url": "cG9zdGdyZXM6Ly8="}})
        problems = "\n".join(check.secret_problems(objs))
        self.assertIn("env STRIPE_WEBHOOK_SECRET has a literal value", problems)
        self.assertIn("env SOMETHING value looks like key material", problems)
        self.assertIn("Secrets must not be defined", problems)

    def test_ordinary_values_are_not_secrets(self):
        for v in ("info,lapin=warn,actix_server=warn", "http://otel-collector.monitoring:4318/v1/traces",
                  "registry.example.com/cscx/billing:0.1.0", "0.0.0.0:8081", "sync-worker.stripe-events"):
            self.assertFalse(check.looks_like_blob(v), v)
            self.assertEqual(check.scan_text(v, "x"), [], v)

    def test_rules_catch_unsafe_changes(self):
        cases = []
        objs = rendered("prod")
        deployment(objs, "query-api")["spec"]["template"]["spec"]["containers"][0]["securityContext"][
            "readOnlyRootFilesystem"] = False
        cases.append((objs, "readOnlyRootFilesystem"))
        objs = rendered("prod")
        del deployment(objs, "matcher")["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
        cases.append((objs, "readinessProbe missing"))
        objs = rendered("prod")
        deployment(objs, "sync-worker")["spec"]["replicas"] = 3
        cases.append((objs, "has spec.replicas but is autoscaled"))
        objs = rendered("prod")
        ing = next(o for o in objs if o["kind"] == "Ingress")
        ing["spec"]["rules"][0]["http"]["paths"].append(copy.deepcopy(ing["spec"]["rules"][0]["http"]["paths"][-1]))
        ing["spec"]["rules"][0]["http"]["paths"][-1]["path"] = "/metrics"
        cases.append((objs, "not allowed"))
        objs = rendered("prod")
        objs = [o for o in objs if not (o["kind"] == "Job" and o["metadata"]["name"] == "migrate-risk")]
        cases.append((objs, "schema risk"))
        objs = rendered("prod")
        next(o for o in objs if o["kind"] == "PodDisruptionBudget" and o["metadata"]["name"] == "ingress")[
            "spec"]["minAvailable"] = 3
        cases.append((objs, "nodes could never drain"))
        objs = rendered("dev")
        deployment(objs, "ingress")["spec"]["template"]["spec"]["containers"][0]["image"] = "billing"
        cases.append((objs, "must be a registry path"))
        for objs, needle in cases:
            problems = check.rule_problems("prod" if any(o["kind"] == "ScaledObject" for o in objs) else "dev", objs)
            self.assertTrue(any(needle in p for p in problems), (needle, problems))

    def test_schemas_reject_typos(self):
        try:
            import kubernetes_validate  # noqa: F401
        except ImportError:
            self.skipTest("kubernetes-validate not installed")
        objs = rendered("prod")
        self.assertEqual(check.schema_problems(objs), [])
        deployment(objs, "matcher")["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
        so = next(o for o in objs if o["kind"] == "ScaledObject")
        so["spec"]["triggers"][0]["metadata"]["mode"] = "QueueLenght"
        problems = "\n".join(check.schema_problems(objs))
        self.assertIn("livenesProbe", problems)
        self.assertIn("QueueLenght", problems)


if __name__ == "__main__":
    unittest.main()
