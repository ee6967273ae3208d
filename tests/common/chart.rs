//! The Helm chart (`charts/paved`) rendered with the real Helm engine (helm-python-sdk, through
//! `tests/helm/render.py`), and its RBAC applied for least-privilege tests.
//!
//! `apply_chart_rbac` is what a test that runs paved as the least-privilege identity calls first:
//! the env's token in `target/e2e/kubeconfig-paved` authenticates as
//! `system:serviceaccount:paved-system:paved`, exactly the ServiceAccount the chart's release
//! `paved` in namespace `paved-system` binds. Run paved with `--lease-namespace paved-system`
//! (and the default `--lease-name paved-leader`) when leader election is on, as the chart does.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use kube::Client;
use serde_json::{Value, json};

use super::env::{e2e_env, project_root};

/// The release the chart is rendered as; its ServiceAccount is the least-privilege user.
pub const RELEASE: &str = "paved";
/// The release namespace (where the ServiceAccount, the Lease and its Role live).
pub const NAMESPACE: &str = "paved-system";
/// The user the env's least-privilege token authenticates as.
pub const SERVICE_ACCOUNT_USER: &str = "system:serviceaccount:paved-system:paved";
/// The leader-election Lease the chart's Role allows.
pub const LEASE_NAME: &str = "paved-leader";

/// The Python of the venv `e2e/install.sh` creates (helm-python-sdk, regopy, pyyaml).
/// `PAVED_PYTHON` overrides it; `PAVED_CACHE` moves the cache as in install.sh.
pub fn venv_python() -> PathBuf {
    if let Ok(p) = std::env::var("PAVED_PYTHON") {
        return PathBuf::from(p);
    }
    let cache = std::env::var("PAVED_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/paved")
        });
    let python = cache.join("venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run e2e/install.sh (it creates the venv with helm-python-sdk, regopy and pyyaml)",
        python.display()
    );
    python
}

/// Run a Python script of the project with the venv's Python; panics with its stderr on failure.
pub fn run_python(script: &str, args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let path = super::project_root().join(script);
    let mut child = Command::new(venv_python())
        .arg(&path)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", path.display()));
    {
        let mut input = child.stdin.take().expect("stdin");
        input
            .write_all(stdin.unwrap_or("").as_bytes())
            .expect("writing stdin");
    }
    let out = child.wait_with_output().expect("waiting for python");
    assert!(
        out.status.success(),
        "{script} {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// `render.py template` with these values as release `paved` in `paved-system`: the raw YAML.
/// Panics when Helm refuses (schema, `fail`, template error).
pub fn render_chart_yaml(values: &Value, include_crds: bool) -> String {
    let values = values.to_string();
    let mut args = vec![
        "template",
        "--values",
        &values,
        "--name",
        RELEASE,
        "--namespace",
        NAMESPACE,
    ];
    if include_crds {
        args.push("--include-crds");
    }
    run_python("tests/helm/render.py", &args, None)
}

/// The rendered objects (templates only, no CRDs) for these values.
pub fn render_chart(values: &Value) -> Vec<Value> {
    super::yaml_docs(&render_chart_yaml(values, false))
}

/// The rendered objects with the chart's CRDs first.
pub fn render_chart_with_crds(values: &Value) -> Vec<Value> {
    super::yaml_docs(&render_chart_yaml(values, true))
}

/// Try to render; `Err(stderr)` when Helm refuses the values.
pub fn try_render_chart(values: &Value) -> Result<String, String> {
    let out = Command::new(venv_python())
        .arg(super::project_root().join("tests/helm/render.py"))
        .args([
            "template",
            "--values",
            &values.to_string(),
            "--name",
            RELEASE,
            "--namespace",
            NAMESPACE,
        ])
        .output()
        .expect("running render.py");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The first rendered object of this kind (and name, when given).
pub fn find<'a>(objects: &'a [Value], kind: &str, name: Option<&str>) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && name.is_none_or(|n| o["metadata"]["name"] == n))
        .unwrap_or_else(|| panic!("no {kind} {name:?} in the rendered chart"))
}

/// An RBAC object of the chart: ServiceAccount, ClusterRole(Binding), Role(Binding).
pub fn is_rbac(o: &Value) -> bool {
    matches!(
        o["kind"].as_str(),
        Some("ServiceAccount" | "ClusterRole" | "ClusterRoleBinding" | "Role" | "RoleBinding")
    )
}

/// The RBAC objects of the chart's default render ([`is_rbac`]).
pub fn chart_rbac_objects() -> Vec<Value> {
    render_chart(&serde_json::json!({}))
        .into_iter()
        .filter(is_rbac)
        .collect()
}

/// Apply (server-side, for real, idempotently) the chart's default RBAC: ServiceAccount `paved`
/// and the leader-election Role/RoleBinding in `paved-system`, ClusterRole/ClusterRoleBinding
/// `paved`. Afterwards [`SERVICE_ACCOUNT_USER`] (the env's least-privilege kubeconfig) has
/// exactly the permissions the chart grants. Safe to call from parallel tests: the objects and
/// their content are always the same. Returns the applied objects.
pub async fn apply_chart_rbac(client: &Client) -> Vec<Value> {
    super::ensure_namespace(client, NAMESPACE).await;
    let objects = chart_rbac_objects();
    for obj in &objects {
        super::apply_json(client, obj, None, false)
            .await
            .unwrap_or_else(|e| {
                panic!("applying {} {}: {e}", obj["kind"], obj["metadata"]["name"])
            });
    }
    objects
}

// ---------------------------------------------------------------------------------------------
// what the packaging suite reads and asks

/// The chart's default values.
pub fn no_values() -> Value {
    json!({})
}

/// The `*.yaml` files of a directory of the project: (file name, content), sorted.
pub fn crd_files(dir: &str) -> Vec<(String, String)> {
    let mut files: Vec<_> = std::fs::read_dir(project_root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// Integral floats become integers, recursively.
pub fn normalize_numbers(v: Value) -> Value {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => json!(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(normalize_numbers).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (k, normalize_numbers(v)))
                .collect(),
        ),
        other => other,
    }
}

/// The seed's OPA policy, `examples/seed/policies.rego`.
pub fn seed_policy_path() -> String {
    let p = project_root().join("examples/seed/policies.rego");
    assert!(
        p.exists(),
        "examples/seed/policies.rego is missing (copy it from the shared seed)"
    );
    p.to_string_lossy().into_owned()
}

/// What the seed's OPA admission rules deny for this pod in namespace `production`.
pub fn deny_messages(pod: &Value) -> Vec<String> {
    let input =
        json!({"request": {"kind": {"kind": "Pod"}, "namespace": "production", "object": pod}});
    let out = run_python(
        "tests/policy/eval.py",
        &[&seed_policy_path()],
        Some(&input.to_string()),
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("eval.py output {out:?}: {e}"))
}

/// The pod the rendered Deployment creates, as the admission request's object.
pub fn rendered_pod() -> Value {
    let objects = render_chart(&no_values());
    let template = &find(&objects, "Deployment", Some("paved"))["spec"]["template"];
    let mut metadata = template["metadata"].clone();
    metadata["name"] = json!("paved-5d4f7b8c9-abcde");
    metadata["namespace"] = json!("production");
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]})
}

/// `kubectl auth can-i` as the least-privilege user. `yes` answers are retried briefly: the
/// authorizer sees new bindings after its informer catches up.
pub fn can_i(args: &[&str], expect: bool) -> Result<(), String> {
    let env = e2e_env();
    let deadline = Instant::now() + Duration::from_secs(if expect { 15 } else { 0 });
    loop {
        let out = Command::new(&env.kubectl)
            .args([
                "--kubeconfig",
                env.kubeconfig_least_privilege.to_str().unwrap(),
                "auth",
                "can-i",
            ])
            .args(args)
            .output()
            .unwrap();
        let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let got = match answer.as_str() {
            "yes" => true,
            "no" => false,
            _ => {
                return Err(format!(
                    "can-i {args:?}: unexpected answer {answer:?} {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        };
        if got == expect {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "can-i {}: {answer}, expected {}",
                args.join(" "),
                if expect { "yes" } else { "no" }
            ));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}
