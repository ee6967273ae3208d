"""make corpus: run every entry of the real-world Composition corpus on the local control plane.

For each entry directory of CORPUS_DIR (definition.yaml, composition.yaml, example-claim.yaml,
optionally environment-config.yaml) this
  1. renders the Composition offline with `paved render` and the entry's own claim,
  2. applies the XRD, the Composition (and EnvironmentConfig), the example's Secrets and claim,
  3. waits for the claim to become Ready, and records the first problem when it does not,
  4. deletes what it applied.
It writes target/corpus/report.md and report.json and prints the table. The corpus is read in
place and never copied into the project; the claim documents it splits out go to target/corpus.

Exit status: 1 when an entry listed in the expectations file (e2e/corpus-expected.txt: lines
`render <entry>` or `ready <entry>`) no longer renders or reaches Ready, else 0. The list holds
what paved achieved when it was last raised, so the corpus guards against regressions while it
also reports, honestly, how far the field is from working.
"""

import json
import os
import subprocess
import sys
import time

import yaml

CORPUS, KUBECTL, PAVED, OUT, EXPECTED = sys.argv[1:6]
TIMEOUT = int(os.environ.get("CORPUS_READY_TIMEOUT", "45"))
SETTLED = int(os.environ.get("CORPUS_SETTLED", "10"))
# CORPUS_ONLY=a,b runs just those entries (while working on them).
ONLY = [n for n in os.environ.get("CORPUS_ONLY", "").split(",") if n]


def run(args, stdin=None, timeout=120):
    try:
        p = subprocess.run(
            args, input=stdin, capture_output=True, text=True, timeout=timeout
        )
        return p.returncode, (p.stdout + p.stderr).strip()
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout}s: {' '.join(args)}"


def first_line(text, limit=220):
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("Warning:"):
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""


def kubectl(*args, stdin=None, timeout=120):
    return run([KUBECTL, *args], stdin=stdin, timeout=timeout)


def docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if isinstance(d, dict)]


def ensure_namespace(ns):
    if ns:
        manifest = yaml.safe_dump(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        )
        kubectl("apply", "-f", "-", stdin=manifest)


def apply_docs(items):
    """Apply documents one by one; the first failure's message, or ''."""
    for d in items:
        ensure_namespace(d.get("metadata", {}).get("namespace"))
        code, out = kubectl("apply", "-f", "-", stdin=yaml.safe_dump(d))
        if code != 0:
            return first_line(out)
    return ""


def conditions(kind, name, ns):
    args = ["get", kind, name, "-o", "json"] + (["-n", ns] if ns else [])
    code, out = kubectl(*args)
    if code != 0:
        return {}, first_line(out)
    try:
        obj = json.loads(out)
    except ValueError:
        return {}, "unreadable object"
    conds = {c.get("type"): c for c in (obj.get("status") or {}).get("conditions") or []}
    return conds, ""


def composed_problems(kind, name, ns):
    """What each composed object that is not Ready says (kind/name: Type=Status Reason: message),
    for the report's JSON: the claim quotes only the first."""
    code, out = kubectl("get", kind, name, "-n", ns, "-o", "json")
    if code != 0:
        return []
    try:
        refs = (json.loads(out).get("status") or {}).get("resourceRefs") or []
    except ValueError:
        return []
    problems = []
    for ref in refs:
        group = (ref.get("apiVersion") or "").split("/")[0]
        res = f"{ref.get('kind', '').lower()}.{group}" if "/" in (ref.get("apiVersion") or "") else ref.get("kind", "").lower()
        conds, err = conditions(res, ref.get("name", ""), ref.get("namespace") or ns)
        if err:
            problems.append(f"{ref.get('kind')}/{ref.get('name')}: {err}")
            continue
        for t in ("Synced", "Ready"):
            c = conds.get(t) or {}
            if c.get("status") != "True":
                problems.append(f"{ref.get('kind')}/{ref.get('name')}: {t}={c.get('status', 'absent')} "
                                f"{c.get('reason', '')}: {first_line(c.get('message', ''), 300)}")
    return problems


def mode_of(comp):
    spec = comp.get("spec") or {}
    if spec.get("mode") == "Pipeline":
        fns = [s.get("functionRef", {}).get("name", "?") for s in spec.get("pipeline") or []]
        runs = []
        for f in fns:
            if runs and runs[-1][0] == f:
                runs[-1][1] += 1
            else:
                runs.append([f, 1])
        return "P: " + " → ".join(f if n == 1 else f"{n}× {f}" for f, n in runs)
    return "R"


def entry(name):
    d = os.path.join(CORPUS, name)
    row = {"entry": name, "mode": "?", "render": "", "definition": "", "composition": "",
           "claim": "", "ready": False, "problem": ""}
    comps = docs(os.path.join(d, "composition.yaml"))
    comp = comps[0] if comps else {}
    row["mode"] = mode_of(comp)
    example = docs(os.path.join(d, "example-claim.yaml"))
    secrets = [x for x in example if x.get("kind") == "Secret"]
    claims = [x for x in example if x.get("kind") != "Secret"]
    claim = claims[-1] if claims else {}
    meta = claim.get("metadata") or {}
    ns = meta.get("namespace") or "default"
    if claim:
        claim.setdefault("metadata", {})["namespace"] = ns

    work = os.path.join(OUT, name)
    os.makedirs(work, exist_ok=True)
    claim_file = os.path.join(work, "claim.yaml")
    with open(claim_file, "w", encoding="utf-8") as f:
        yaml.safe_dump(claim, f)
    render = [PAVED, "render", "--claim", claim_file, "--composition",
              os.path.join(d, "composition.yaml")]
    if os.path.isfile(os.path.join(d, "definition.yaml")):
        # The claim's kind is the XRD's: render validates the claim against it and composes the
        # composite the claim stands for.
        render += ["--xrd", os.path.join(d, "definition.yaml")]
    code, out = run(render)
    row["render"] = "ok" if code == 0 else first_line(out)

    applied = []
    err = apply_docs(docs(os.path.join(d, "definition.yaml")))
    row["definition"] = "ok" if not err else err
    applied.append(os.path.join(d, "definition.yaml"))
    err = apply_docs(comps)
    row["composition"] = "ok" if not err else err
    applied.append(os.path.join(d, "composition.yaml"))
    env_file = os.path.join(d, "environment-config.yaml")
    if os.path.exists(env_file):
        apply_docs(docs(env_file))
        applied.append(env_file)
    apply_docs(secrets)

    if claim:
        # A just-created CRD takes a moment to be served.
        err = ""
        for _ in range(10 if row["definition"] == "ok" else 1):
            err = apply_docs([claim])
            if not err or "no matches for kind" not in err:
                break
            time.sleep(1)
        row["claim"] = "ok" if not err else err
    else:
        row["claim"] = "no claim or XR in example-claim.yaml"

    kind = claim.get("kind", "")
    group = (claim.get("apiVersion") or "").split("/")[0]
    resource = f"{kind.lower()}.{group}" if group else kind.lower()
    if row["claim"] == "ok":
        deadline = time.time() + TIMEOUT
        conds = {}
        # A claim that is Synced=False with the same conditions for SETTLED seconds is refused,
        # not progressing: waiting out the timeout would only lengthen the run.
        last, since = None, time.time()
        while time.time() < deadline:
            conds, err = conditions(resource, meta.get("name", ""), ns)
            if conds.get("Ready", {}).get("status") == "True":
                row["ready"] = True
                break
            now = json.dumps(conds, sort_keys=True)
            if now != last:
                last, since = now, time.time()
            elif (conds.get("Synced", {}).get("status") == "False"
                  and time.time() - since >= SETTLED):
                break
            time.sleep(2)
        if not row["ready"]:
            row["composed"] = composed_problems(resource, meta.get("name", ""), ns)
            bad = [c for t, c in sorted(conds.items()) if c.get("status") != "True"]
            row["problem"] = "; ".join(
                f"{c.get('type')}={c.get('status')} {c.get('reason', '')}: {first_line(c.get('message', ''), 160)}"
                for c in bad
            ) or err or "no conditions"
        kubectl("delete", resource, meta.get("name", ""), "-n", ns, "--wait=false")
    else:
        row["problem"] = row["claim"] if row["claim"] != "ok" else ""
    for s in secrets:
        kubectl("delete", "-f", "-", "--wait=false", "--ignore-not-found", stdin=yaml.safe_dump(s))
    for f in reversed(applied):
        kubectl("delete", "-f", f, "--wait=false", "--ignore-not-found")
    return row


def main():
    names = sorted(
        n for n in os.listdir(CORPUS)
        if os.path.isfile(os.path.join(CORPUS, n, "composition.yaml")) and (not ONLY or n in ONLY)
    )
    rows = []
    for n in names:
        t = time.time()
        rows.append(entry(n))
        rows[-1]["seconds"] = round(time.time() - t, 1)
        r = rows[-1]
        print(f"[corpus] {n}: render {'ok' if r['render'] == 'ok' else 'refused'}, "
              f"{'Ready' if r['ready'] else 'not Ready'} ({r['seconds']} s)", flush=True)

    ready = sum(r["ready"] for r in rows)
    rendered = sum(r["render"] == "ok" for r in rows)
    lines = [
        f"# Corpus run: {ready} of {len(rows)} entries Ready, {rendered} of {len(rows)} render",
        "",
        "| entry | mode | render | XRD | Composition | claim | Ready | first problem |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [r["entry"], r["mode"], r["render"], r["definition"], r["composition"],
                 r["claim"], "yes" if r["ready"] else "no", r["problem"]]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    with open(os.path.join(OUT, "report.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(OUT, "report.json"), "w", encoding="utf-8") as f:
        json.dump(rows, f, indent=1)
    print("\n".join(lines))

    expected = []
    if os.path.exists(EXPECTED):
        with open(EXPECTED, encoding="utf-8") as f:
            for line in f:
                parts = line.split("#", 1)[0].split()
                if len(parts) == 2:
                    expected.append(tuple(parts))
    by_name = {r["entry"]: r for r in rows}
    regressions = []
    for what, n in expected:
        r = by_name.get(n)
        if r is None:
            regressions.append(f"{what} {n}: entry not in the corpus")
        elif what == "render" and r["render"] != "ok":
            regressions.append(f"render {n}: {r['render']}")
        elif what == "ready" and not r["ready"]:
            regressions.append(f"ready {n}: {r['problem']}")
    print(f"\ncorpus: {ready} of {len(rows)} Ready, {rendered} of {len(rows)} render; "
          f"{len(expected) - len(regressions)} of {len(expected)} expectations hold")
    for r in regressions:
        print(f"REGRESSION: {r}")
    sys.exit(1 if regressions else 0)


main()
