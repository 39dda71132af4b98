#!/usr/bin/env python3
"""Fallback renderer for k8s/overlays/* when no real kustomize is installed.

scripts/k8s-validate.sh renders with `kubectl kustomize` (or `kustomize build`) whenever one
is on the machine, and only falls back to this file otherwise. It implements exactly the
kustomize features this repository uses, and refuses (exit 2) any kustomization field it does
not implement, so it can never silently render something different:

  resources            files and directories holding a kustomization.yaml, in order
  namespace            set on every namespaced object
  images               name -> newName / newTag / digest, in containers and initContainers
  patches              strategic-merge patches (file or inline, target from the patch's own
                       kind/name or from `target`), and JSON 6902 patches (add, remove,
                       replace, test) with a `target`
  patchesStrategicMerge  (legacy spelling) strategic-merge patch files

k8s/tools/test_tools.py checks this renderer's output object-for-object against
`kubectl kustomize` for every overlay whenever both are available.

Usage: render.py DIR   (prints the rendered multi-document YAML on stdout)
"""
from __future__ import annotations

import copy
import os
import sys
from typing import Any

import yaml

SUPPORTED_FIELDS = {
    "apiVersion", "kind", "resources", "namespace", "images", "patches", "patchesStrategicMerge",
}
CLUSTER_SCOPED = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
    "PersistentVolume", "StorageClass", "PriorityClass", "IngressClass", "APIService",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "Node",
    "ClusterTriggerAuthentication",
}
# Strategic-merge list fields merged by key (Kubernetes' patchMergeKey); others are replaced.
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "volumes": "name", "env": "name", "imagePullSecrets": "name", "volumeMounts": "mountPath",
}
# kustomize's legacy output order (kinds not listed sort after these, alphabetically).
ORDER_FIRST = [
    "Namespace", "ResourceQuota", "StorageClass", "CustomResourceDefinition", "ServiceAccount",
    "PodSecurityPolicy", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "ConfigMap",
    "Secret", "Endpoints", "Service", "LimitRange", "PriorityClass", "PersistentVolume",
    "PersistentVolumeClaim", "Deployment", "StatefulSet", "CronJob", "PodDisruptionBudget",
]
ORDER_LAST = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]


class RenderError(Exception):
    pass


def load_docs(path: str) -> list[dict]:
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def kustomization_file(directory: str) -> str:
    for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        p = os.path.join(directory, name)
        if os.path.isfile(p):
            return p
    raise RenderError(f"{directory}: no kustomization.yaml")


def render(directory: str) -> list[dict]:
    kfile = kustomization_file(directory)
    with open(kfile) as f:
        k = yaml.safe_load(f) or {}
    unknown = set(k) - SUPPORTED_FIELDS
    if unknown:
        raise RenderError(
            f"{kfile}: field(s) {sorted(unknown)} not implemented by the fallback renderer; "
            "install kustomize/kubectl or extend k8s/tools/render.py (and its tests)")
    if k.get("kind", "Kustomization") != "Kustomization":
        raise RenderError(f"{kfile}: kind {k.get('kind')} not supported (components are not)")

    objects: list[dict] = []
    for res in k.get("resources", []) or []:
        p = os.path.normpath(os.path.join(directory, res))
        if os.path.isdir(p):
            objects.extend(render(p))
        elif os.path.isfile(p):
            objects.extend(load_docs(p))
        else:
            raise RenderError(f"{kfile}: resource {res} not found")
    seen = set()
    for o in objects:
        key = ident(o)
        if key in seen:
            raise RenderError(f"{kfile}: duplicate object {key}")
        seen.add(key)

    patches = []
    for p in k.get("patchesStrategicMerge", []) or []:
        patches.append({"path": p})
    patches.extend(k.get("patches", []) or [])
    for patch in patches:
        apply_patch_entry(directory, kfile, patch, objects)

    if "namespace" in k:
        for o in objects:
            if o.get("kind") not in CLUSTER_SCOPED:
                o.setdefault("metadata", {})["namespace"] = k["namespace"]

    for image in k.get("images", []) or []:
        for o in objects:
            set_images(o, image)
    return objects


def ident(o: dict) -> tuple:
    md = o.get("metadata", {})
    return (o.get("apiVersion"), o.get("kind"), md.get("namespace"), md.get("name"))


def group_of(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


def matches(o: dict, target: dict) -> bool:
    md = o.get("metadata", {})
    av = o.get("apiVersion", "")
    checks = {
        "kind": o.get("kind"), "name": md.get("name"), "namespace": md.get("namespace"),
        "group": group_of(av), "version": av.split("/")[-1],
    }
    for field, value in target.items():
        if field not in checks:
            raise RenderError(f"patch target field {field!r} not implemented by the fallback renderer")
        if checks[field] != value:
            return False
    return True


def apply_patch_entry(directory: str, kfile: str, entry: dict, objects: list[dict]) -> None:
    unknown = set(entry) - {"path", "patch", "target"}
    if unknown:
        raise RenderError(f"{kfile}: patch option(s) {sorted(unknown)} not implemented")
    if "path" in entry:
        with open(os.path.join(directory, entry["path"])) as f:
            text = f.read()
    else:
        text = entry["patch"]
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    target = entry.get("target")
    if len(docs) == 1 and isinstance(docs[0], list):  # JSON 6902
        if not target:
            raise RenderError(f"{kfile}: a JSON 6902 patch needs a target")
        hit = [o for o in objects if matches(o, target)]
        if not hit:
            raise RenderError(f"{kfile}: JSON patch target {target} matched nothing")
        for o in hit:
            json_patch(o, docs[0])
        return
    for doc in docs:
        if target:
            hit = [o for o in objects if matches(o, target)]
        else:
            hit = [o for o in objects
                   if o.get("kind") == doc.get("kind")
                   and o["metadata"]["name"] == doc["metadata"]["name"]
                   and group_of(o.get("apiVersion", "")) == group_of(doc.get("apiVersion", ""))]
        if not hit:
            raise RenderError(
                f"{kfile}: patch for {doc.get('kind')}/{doc.get('metadata', {}).get('name')} matched nothing")
        for o in hit:
            patch = copy.deepcopy(doc)
            if target:  # a targeted patch must not rename its target
                patch.get("metadata", {}).pop("name", None)
            merged = strategic_merge(o, patch)
            o.clear()
            o.update(merged)


def strategic_merge(base: Any, patch: Any, field: str | None = None) -> Any:
    if isinstance(patch, dict) and isinstance(base, dict):
        directive = patch.get("$patch")
        if directive == "replace":
            return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
        if directive is not None and directive != "merge":
            raise RenderError(f"$patch: {directive} not implemented by the fallback renderer")
        out = copy.deepcopy(base)
        for k, v in patch.items():
            if k == "$patch":
                continue
            if v is None:
                out.pop(k, None)
            elif k in out:
                out[k] = strategic_merge(out[k], v, k)
            else:
                out[k] = copy.deepcopy(v)
        return out
    if isinstance(patch, list) and isinstance(base, list) and field in MERGE_KEYS:
        key = MERGE_KEYS[field]
        out = copy.deepcopy(base)
        for item in patch:
            if not isinstance(item, dict) or key not in item:
                raise RenderError(f"strategic merge: items of {field} need {key!r}")
            if item.get("$patch") == "delete":
                out = [x for x in out if x.get(key) != item[key]]
                continue
            for i, existing in enumerate(out):
                if existing.get(key) == item[key]:
                    out[i] = strategic_merge(existing, item, None)
                    break
            else:
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(patch)


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise RenderError(f"JSON patch path {path!r} must start with /")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for p in parts:
        doc = doc[int(p)] if isinstance(doc, list) else doc[p]
    return doc


def json_patch(doc: dict, ops: list[dict]) -> None:
    for op in ops:
        parts = _pointer(op["path"])
        parent = _walk(doc, parts[:-1])
        last = parts[-1]
        kind = op["op"]
        try:
            if kind == "test":
                if _walk(doc, parts) != op["value"]:
                    raise RenderError(f"JSON patch test failed at {op['path']}")
            elif kind == "remove":
                if isinstance(parent, list):
                    del parent[int(last)]
                else:
                    del parent[last]
            elif kind in ("add", "replace"):
                value = copy.deepcopy(op["value"])
                if isinstance(parent, list):
                    if kind == "add":
                        parent.insert(len(parent) if last == "-" else int(last), value)
                    else:
                        parent[int(last)] = value
                else:
                    if kind == "replace" and last not in parent:
                        raise RenderError(f"JSON patch replace: {op['path']} does not exist")
                    parent[last] = value
            else:
                raise RenderError(f"JSON patch op {kind!r} not implemented by the fallback renderer")
        except (KeyError, IndexError, ValueError) as e:
            raise RenderError(f"JSON patch {kind} {op['path']}: {e!r}") from e


def _image_name(image: str) -> str:
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def set_images(node: Any, rule: dict) -> None:
    if isinstance(node, dict):
        for key in ("containers", "initContainers"):
            for c in node.get(key) or []:
                if isinstance(c, dict) and isinstance(c.get("image"), str) \
                        and _image_name(c["image"]) == rule["name"]:
                    c["image"] = rewrite_image(c["image"], rule)
        for v in node.values():
            set_images(v, rule)
    elif isinstance(node, list):
        for v in node:
            set_images(v, rule)


def rewrite_image(image: str, rule: dict) -> str:
    name = _image_name(image)
    rest = image[len(name):]
    tag = rest[1:] if rest.startswith(":") else None
    digest = image.split("@", 1)[1] if "@" in image else None
    if tag and "@" in tag:
        tag = tag.split("@", 1)[0]
    name = rule.get("newName", name)
    if "digest" in rule:
        return f"{name}@{rule['digest']}"
    if "newTag" in rule:
        return f"{name}:{rule['newTag']}"
    if digest:
        return f"{name}@{digest}"
    return f"{name}:{tag}" if tag else name


def sort_key(o: dict) -> tuple:
    kind = o.get("kind", "")
    if kind in ORDER_FIRST:
        rank = ORDER_FIRST.index(kind)
    elif kind in ORDER_LAST:
        rank = 1000 + ORDER_LAST.index(kind)
    else:
        rank = 500
    md = o.get("metadata", {})
    return (rank, kind, o.get("apiVersion", ""), md.get("namespace") or "", md.get("name") or "")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        objects = render(argv[1])
    except (RenderError, OSError, yaml.YAMLError) as e:
        print(f"render.py: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(yaml.safe_dump_all(sorted(objects, key=sort_key), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
