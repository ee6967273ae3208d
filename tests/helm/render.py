#!/usr/bin/env python3
"""Lint and render charts/paved with the real Helm engine (helm-python-sdk: the Helm Go SDK as a
Python package, no helm binary needed). Used by tests/integration/packaging.rs and tests/common/chart.rs, and
by hand to regenerate the kustomize base:

  render.py lint     [--values JSON]   lint report as JSON; exit 1 on any warning or error
  render.py template [--values JSON] [--name paved] [--namespace paved-system] [--include-crds]
                                       rendered manifests as multi-document YAML on stdout
  render.py base DIR                   write the default render, without Helm's own labels, as
                                       the kustomize base in DIR (deploy/base)

Run it with the venv e2e/install.sh creates: ~/.cache/paved/venv/bin/python.
"""
import argparse
import json
import os
import sys

import helm_python
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHART = os.path.join(ROOT, "charts", "paved")
# Labels only Helm adds; the kustomize base carries the others.
HELM_ONLY_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by")


def lint(values):
    report = helm_python.lint(CHART, values, strict=True, namespace="paved-system")
    json.dump(report, sys.stdout, indent=2)
    print()
    bad = report.get("errors") or [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
    return 1 if bad else 0


def render_docs(values, name, namespace, include_crds):
    chart = helm_python.Chart.load(CHART)
    chart.validate_schema(values)
    rendered = chart.render(values, name=name, namespace=namespace, is_install=True)
    docs = []  # (source, text)
    if include_crds:
        for crd in sorted(chart.crds, key=lambda c: c["filename"]):
            docs.append((crd["filename"], crd["data"]))
    for path in sorted(rendered):
        if path.endswith("NOTES.txt"):
            continue
        for text in rendered[path].split("\n---"):
            if yaml.safe_load(text) is not None:
                docs.append((path, text.lstrip("-\n")))
    return docs


def template(values, name, namespace, include_crds):
    for source, text in render_docs(values, name, namespace, include_crds):
        sys.stdout.write("---\n# Source: %s\n%s\n" % (source, text.rstrip("\n")))
    return 0


def strip_helm_labels(obj):
    if isinstance(obj, dict):
        for key in ("labels",):
            if isinstance(obj.get(key), dict):
                for label in HELM_ONLY_LABELS:
                    obj[key].pop(label, None)
        for v in obj.values():
            strip_helm_labels(v)
    elif isinstance(obj, list):
        for v in obj:
            strip_helm_labels(v)
    return obj


def base(directory):
    """The kustomize base: the chart's default render (release paved in paved-system)."""
    os.makedirs(directory, exist_ok=True)
    files = []
    for source, text in render_docs({}, "paved", "paved-system", include_crds=False):
        obj = strip_helm_labels(yaml.safe_load(text))
        fname = "%s-%s.yaml" % (obj["kind"].lower(), obj["metadata"]["name"])
        with open(os.path.join(directory, fname), "w") as f:
            f.write("# Generated from charts/paved (%s) by tests/helm/render.py base; do not edit.\n" % source)
            yaml.safe_dump(obj, f, sort_keys=False, default_flow_style=False)
        files.append(fname)
    return files


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for cmd in ("lint", "template"):
        s = sub.add_parser(cmd)
        s.add_argument("--values", default="{}", help="values as a JSON object")
        if cmd == "template":
            s.add_argument("--name", default="paved")
            s.add_argument("--namespace", default="paved-system")
            s.add_argument("--include-crds", action="store_true")
    b = sub.add_parser("base")
    b.add_argument("dir")
    args = p.parse_args()
    try:
        if args.cmd == "lint":
            return lint(json.loads(args.values))
        if args.cmd == "template":
            return template(json.loads(args.values), args.name, args.namespace, args.include_crds)
        for f in base(args.dir):
            print(f)
        return 0
    except helm_python.HelmError as e:
        print("helm: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
