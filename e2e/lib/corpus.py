"""make corpus: run every entry of the real-world Composition corpus on the local control plane.

For each entry directory of CORPUS_DIR (definition.yaml, composition.yaml, example-claim.yaml,
optionally environment-config.yaml) this
  1. renders the Composition offline with `paved render` and the entry's own claim,
  2. applies the XRD, the Composition (and EnvironmentConfig), the example's Secrets and claim,
  3. waits for the claim to become Ready, and records the first problem when it does not,
  4. deletes what it applied.
Entries run CORPUS_JOBS (default 4) at a time; entries that share a cluster-scoped name (an XRD,
a Composition), a claim's kind and name, or a Secret's name run one after another, in the same
chain, so that no entry sees another's objects. It writes target/corpus/report.md and
report.json and prints the table. The corpus is read in
place and never copied into the project; the claim documents it splits out go to target/corpus.

Between 1 and 2 it provides what the corpus README says an operator must (each listed in the
row's `inputs`), as a platform team adopting the Composition would:
  - the network: the example claims name their authors' subnets and VPCs (`subnet-…`, `vpc-…`),
    which do not exist here. A VPC and as many subnets (one per zone) are created in the
    emulator, in the region the composed network objects use, and the claim's IDs are replaced
    by theirs.
  - the namespace: where the composed objects name Secrets in one fixed namespace other than the
    claim's (`crossplane-system`, `upbound-system`, the claim's `spec.namespace`), the claim is
    applied in that namespace, since paved reads and writes Secrets only in the claim's own
    namespace (tenancy).
  - the master password: a password Secret a composed object names, that the example does not
    create and paved is not asked to generate, is created with a random password.

Exit status: 1 when an entry listed in the expectations file (e2e/corpus-expected.txt: lines
`render <entry>` or `ready <entry>`) no longer renders or reaches Ready, else 0. The list holds
what paved achieved when it was last raised, so the corpus guards against regressions while it
also reports, honestly, how far the field is from working.
"""

import json
import os
from concurrent.futures import ThreadPoolExecutor
import re
import secrets as random_secrets
import subprocess
import sys
import time

import yaml

CORPUS, KUBECTL, PAVED, OUT, EXPECTED = sys.argv[1:6]
TIMEOUT = int(os.environ.get("CORPUS_READY_TIMEOUT", "120"))
SETTLED = int(os.environ.get("CORPUS_SETTLED", "10"))
# CORPUS_ONLY=a,b runs just those entries (while working on them).
ONLY = [n for n in os.environ.get("CORPUS_ONLY", "").split(",") if n]
JOBS = max(1, int(os.environ.get("CORPUS_JOBS", "4")))


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


def resource_refs(kind, name, ns):
    """The claim's status.resourceRefs ([] when it cannot be read)."""
    code, out = kubectl("get", kind, name, "-n", ns, "-o", "json")
    if code != 0:
        return []
    try:
        return (json.loads(out).get("status") or {}).get("resourceRefs") or []
    except ValueError:
        return []


def composed_problems(kind, name, ns):
    """What each composed object that is not Ready says (kind/name: Type=Status Reason: message),
    for the report's JSON: the claim quotes only the first."""
    problems = []
    refs = resource_refs(kind, name, ns)
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


SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
NETWORK_KINDS = ("SubnetGroup", "SecurityGroup", "SecurityGroupRule")


def strings_in(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings_in(v)


def replaced(value, mapping):
    if isinstance(value, str):
        return mapping.get(value, value)
    if isinstance(value, dict):
        return {k: replaced(v, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [replaced(v, mapping) for v in value]
    return value


def ec2(region):
    import boto3  # in paved's venv beside moto; only entries that need a network load it

    return boto3.client("ec2", region_name=region,
                        endpoint_url=os.environ["PAVED_MOTO_DIRECT_URL"])


def provide_network(claim, resources):
    """Create a VPC and subnets for the claim's subnet-/vpc- IDs; the claim with them, and what
    was done (or None when the claim names no network)."""
    ids = list(dict.fromkeys(strings_in(claim.get("spec") or {})))
    subnets = [i for i in ids if SUBNET_ID.match(i)]
    vpcs = [i for i in ids if VPC_ID.match(i)]
    if not subnets and not vpcs:
        return claim, None
    regions = [((r.get("spec") or {}).get("forProvider") or {}).get("region")
               for r in resources if r.get("kind") in NETWORK_KINDS]
    regions = [r for r in regions if r] or [((r.get("spec") or {}).get("forProvider") or {}).get("region")
                                            for r in resources]
    region = next((r for r in regions if r), "us-east-1")
    client = ec2(region)
    vpc = client.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    zones = [z["ZoneName"] for z in client.describe_availability_zones()["AvailabilityZones"]]
    mapping = {v: vpc for v in vpcs}
    for n, old in enumerate(subnets):
        made = client.create_subnet(VpcId=vpc, CidrBlock=f"10.40.{n}.0/24",
                                    AvailabilityZone=zones[n % len(zones)])
        mapping[old] = made["Subnet"]["SubnetId"]
    return replaced(claim, mapping), (
        f"network: VPC {vpc} and {len(subnets)} subnets in {region} for the claim's "
        f"{', '.join(vpcs + subnets)}")


def secret_refs(resources):
    """(namespace, name, key, generated) of every Secret the composed objects name."""
    refs = []
    for r in resources:
        spec = r.get("spec") or {}
        fp = spec.get("forProvider") or {}
        for field in ("passwordSecretRef", "masterPasswordSecretRef", "masterUserPasswordSecretRef"):
            ref = fp.get(field)
            if isinstance(ref, dict):
                refs.append((ref.get("namespace"), ref.get("name"), ref.get("key") or "password",
                             bool(fp.get("autoGeneratePassword"))))
        ref = spec.get("writeConnectionSecretToRef")
        if isinstance(ref, dict):
            refs.append((ref.get("namespace"), ref.get("name"), None, True))
    return refs


def placement(claim_ns, resources):
    """The one namespace other than the claim's that the composed objects' Secrets live in."""
    others = {ns for ns, _, _, _ in secret_refs(resources) if ns and ns != claim_ns}
    return others.pop() if len(others) == 1 else None


def provide_passwords(ns, resources, given):
    """Create each password Secret the composed objects read that nobody else provides."""
    made = []
    for sns, name, key, generated in secret_refs(resources):
        # A name made from the claim's uid (render's stand-in) exists only in the cluster.
        if (generated or not name or key is None or (sns or ns, name) in given
                or "00000000-0000-0000-0000-000000000000" in name):
            continue
        ensure_namespace(sns or ns)
        manifest = yaml.safe_dump({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": sns or ns},
            "stringData": {key: random_secrets.token_urlsafe(18)},
        })
        if kubectl("apply", "-f", "-", stdin=manifest)[0] == 0:
            made.append({"apiVersion": "v1", "kind": "Secret",
                         "metadata": {"name": name, "namespace": sns or ns}})
    return made


def rendered(claim_file, comp_file, xrd_file):
    """The composed objects `paved render --output json` gives (empty when it refuses)."""
    args = [PAVED, "render", "--claim", claim_file, "--composition", comp_file, "--output", "json"]
    if xrd_file:
        args += ["--xrd", xrd_file]
    code, out = run(args)
    if code != 0:
        return []
    try:
        return json.loads(out).get("resources") or []
    except ValueError:
        return []


def in_aws(kind, name, ns):
    """What the emulator shows for each composed Instance of a Ready claim: its identifier,
    status, subnet group and security groups (the proof that the network was wired)."""
    import boto3

    shown = []
    for ref in resource_refs(kind, name, ns):
        if ref.get("kind") != "Instance":
            continue
        group = (ref.get("apiVersion") or "").split("/")[0]
        code, out = kubectl("get", f"instance.{group}", ref.get("name", ""), "-n",
                            ref.get("namespace") or ns, "-o", "json")
        if code != 0:
            continue
        obj = json.loads(out)
        ident = (obj["metadata"].get("annotations") or {}).get("crossplane.io/external-name")
        region = ((obj.get("spec") or {}).get("forProvider") or {}).get("region")
        try:
            rds = boto3.client("rds", region_name=region,
                               endpoint_url=os.environ["PAVED_MOTO_DIRECT_URL"])
            db = rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
        except Exception as e:  # noqa: BLE001 - reported, not raised
            shown.append(f"{ident}: not found in the emulator ({e})")
            continue
        sgs = [g["VpcSecurityGroupId"] for g in db.get("VpcSecurityGroups") or []]
        shown.append(f"{ident} ({region}): {db.get('DBInstanceStatus')}, subnet group "
                     f"{(db.get('DBSubnetGroup') or {}).get('DBSubnetGroupName', 'default')}, "
                     f"security groups {sgs or 'default'}")
    return shown


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
    comp_file = os.path.join(d, "composition.yaml")
    xrd_file = os.path.join(d, "definition.yaml")
    xrd_file = xrd_file if os.path.isfile(xrd_file) else None
    render = [PAVED, "render", "--claim", claim_file, "--composition", comp_file]
    if xrd_file:
        # The claim's kind is the XRD's: render validates the claim against it and composes the
        # composite the claim stands for.
        render += ["--xrd", xrd_file]
    code, out = run(render)
    row["render"] = "ok" if code == 0 else first_line(out)

    # What an operator provides (see the module's doc), from what the claim composes.
    row["inputs"] = []
    resources = rendered(claim_file, comp_file, xrd_file) if claim else []
    claim, network = provide_network(claim, resources)
    if network:
        row["inputs"].append(network)
    moved = placement(ns, resources)
    if moved:
        row["inputs"].append(f"namespace: {moved}, where the composed objects' Secrets are "
                             f"(the example's claim is in {ns})")
        ns = moved
        claim["metadata"]["namespace"] = ns
        for s in secrets:
            s.setdefault("metadata", {}).setdefault("namespace", ns)
    with open(claim_file, "w", encoding="utf-8") as f:
        yaml.safe_dump(claim, f)

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
    given = {((s.get("metadata") or {}).get("namespace") or ns, (s.get("metadata") or {}).get("name"))
             for s in secrets}
    for s in provide_passwords(ns, resources, given):
        m = s["metadata"]
        row["inputs"].append(f"Secret {m['namespace']}/{m['name']} with a random password")
        secrets.append(s)

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
                row["aws"] = in_aws(resource, meta.get("name", ""), ns)
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


def shared_names(name):
    """What entry `name` creates that another entry could create too: its XRDs' and
    Compositions' names, its claim's kind and name, and the names of the Secrets it or its
    Composition names (any namespace: the runner may move a claim)."""
    d = os.path.join(CORPUS, name)
    keys = set()
    for f, what in (("definition.yaml", "cluster"), ("composition.yaml", "cluster"),
                    ("environment-config.yaml", "cluster"), ("example-claim.yaml", "claim")):
        path = os.path.join(d, f)
        if not os.path.exists(path):
            continue
        for doc in docs(path):
            m = doc.get("metadata") or {}
            if what == "cluster" or doc.get("kind") == "Secret":
                keys.add((doc.get("kind"), m.get("name")))
            else:
                keys.add(("claim", doc.get("kind"), m.get("name")))
            keys.update(("Secret", n) for n in secret_names(doc))
    return keys


def secret_names(value):
    """The `name` of every mapping under a key ending in `SecretRef` (any case) in a document."""
    found = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k.lower().endswith("secretref") and isinstance(v, dict) and isinstance(v.get("name"), str):
                found.append(v["name"])
            found += secret_names(v)
    elif isinstance(value, list):
        for v in value:
            found += secret_names(v)
    return found


def chains(names):
    """`names` split into chains to run in parallel: entries sharing a name (see
    `shared_names`) are in the same chain, in order."""
    owner = {}
    groups = []
    for n in names:
        keys = shared_names(n)
        joined = sorted({owner[k] for k in keys if k in owner})
        if joined:
            target = joined[0]
            for other in joined[1:]:
                groups[target] += groups[other]
                groups[other] = []
                for k, g in owner.items():
                    if g == other:
                        owner[k] = target
        else:
            groups.append([])
            target = len(groups) - 1
        groups[target].append(n)
        for k in keys:
            owner[k] = target
    return [sorted(g) for g in groups if g]


def main():
    names = sorted(
        n for n in os.listdir(CORPUS)
        if os.path.isfile(os.path.join(CORPUS, n, "composition.yaml")) and (not ONLY or n in ONLY)
    )
    def timed(n):
        t = time.time()
        r = entry(n)
        r["seconds"] = round(time.time() - t, 1)
        print(f"[corpus] {n}: render {'ok' if r['render'] == 'ok' else 'refused'}, "
              f"{'Ready' if r['ready'] else 'not Ready'} ({r['seconds']} s)", flush=True)
        return r

    def chain(group):
        return [timed(n) for n in group]

    with ThreadPoolExecutor(max_workers=JOBS) as pool:
        rows = [r for rs in pool.map(chain, chains(names)) for r in rs]
    rows.sort(key=lambda r: r["entry"])

    ready = sum(r["ready"] for r in rows)
    rendered = sum(r["render"] == "ok" for r in rows)
    lines = [
        f"# Corpus run: {ready} of {len(rows)} entries Ready, {rendered} of {len(rows)} render",
        "",
        "| entry | mode | render | XRD | Composition | claim | operator inputs | Ready | first problem |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [r["entry"], r["mode"], r["render"], r["definition"], r["composition"],
                 r["claim"], "; ".join(r.get("inputs") or []) or "none",
                 "yes" if r["ready"] else "no", r["problem"]]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    shown = [(r["entry"], a) for r in rows if r["ready"] for a in r.get("aws") or []]
    if shown:
        lines += ["", "What the emulator holds for the Ready entries' Instances:", ""]
        lines += [f"- {e}: {a}" for e, a in shown]
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
        if r is None and ONLY and n not in ONLY:
            continue  # not run this time
        if r is None:
            regressions.append(f"{what} {n}: entry not in the corpus")
        elif what == "render" and r["render"] != "ok":
            regressions.append(f"render {n}: {r['render']}")
        elif what == "ready" and not r["ready"]:
            regressions.append(f"ready {n}: {r['problem']}")
    checked = [e for e in expected if not ONLY or e[1] in ONLY]
    print(f"\ncorpus: {ready} of {len(rows)} Ready, {rendered} of {len(rows)} render; "
          f"{len(checked) - len(regressions)} of {len(checked)} expectations hold")
    for r in regressions:
        print(f"REGRESSION: {r}")
    sys.exit(1 if regressions else 0)


main()
