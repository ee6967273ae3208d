//! Packaging: the Helm chart (`charts/paved`), the kustomize base and ArgoCD health checks
//! (`deploy/`), tested with the real tools — the Helm Go engine (helm-python-sdk), the local
//! kube-apiserver (server-side dry-run, RBAC, `kubectl auth can-i`), kubectl's kustomize, a Rego
//! engine (regopy) for the seed's OPA policy, and lua5.1 for the ArgoCD health scripts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeSet;
use std::process::Command;

use common::chart::{
    self, can_i, crd_files, deny_messages, find, no_values, normalize_numbers, render_chart,
    render_chart_with_crds, rendered_pod, try_render_chart,
};
use common::*;
use serde_json::{Value, json};

const APP_VERSION: &str = env!("CARGO_PKG_VERSION");

// ---------------------------------------------------------------------------------------------
// ArgoCD health checks (Lua 5.1)

/// `deploy/argocd/health_test.lua` runs every health script against sample objects (Ready True,
/// Synced False + Ready True → Degraded, no status, Creating, and all Ready × Synced combinations)
/// with the Lua version ArgoCD embeds, and exits non-zero on any failing case.
#[test]
fn argocd_health_checks_pass_their_lua_tests() {
    let script = project_root().join("deploy/argocd/health_test.lua");
    let out = match Command::new("lua5.1").arg(&script).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("lua5.1 is not installed: run e2e/install.sh (apt-get install lua5.1)")
        }
        Err(e) => panic!("running lua5.1: {e}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "lua5.1 {} failed ({}):\n{stdout}\n{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // Both scripts were really exercised.
    for kind in ["PostgreSQLInstance: ", "Instance: "] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("ok   ") && l.contains(kind)),
            "no {kind}case ran:\n{stdout}"
        );
    }
    assert!(stdout.contains(", 0 failed"), "{stdout}");
}

/// The argocd-cm snippet embeds exactly the tested scripts, under ArgoCD's key format.
#[test]
fn argocd_cm_patch_embeds_the_tested_health_scripts() {
    let cm = yaml_docs(&read_project_file("deploy/argocd/argocd-cm-patch.yaml")).remove(0);
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["metadata"]["name"], "argocd-cm");
    let data = cm["data"].as_object().expect("data");
    let want = [
        "database.example.com_PostgreSQLInstance",
        "rds.aws.upbound.io_Instance",
    ];
    assert_eq!(
        data.len(),
        want.len(),
        "{:?}",
        data.keys().collect::<Vec<_>>()
    );
    for gk in want {
        let key = format!("resource.customizations.health.{gk}");
        let script = read_project_file(&format!("deploy/argocd/health/{gk}.lua"));
        assert_eq!(
            data.get(&key).and_then(Value::as_str),
            Some(script.as_str()),
            "argocd-cm-patch.yaml {key} differs from deploy/argocd/health/{gk}.lua"
        );
    }
    let app = yaml_docs(&read_project_file("deploy/argocd/application.yaml")).remove(0);
    assert_eq!(app["kind"], "Application");
    assert_eq!(app["spec"]["source"]["path"], "charts/paved");
    assert_eq!(app["spec"]["destination"]["namespace"], chart::NAMESPACE);
}

// ---------------------------------------------------------------------------------------------
// Helm: lint, CRDs, pod security

/// `helm lint --strict` (the real engine) reports no warning and no error.
#[test]
fn helm_lint_passes() {
    let report: Value =
        serde_json::from_str(&chart::run_python("tests/helm/render.py", &["lint"], None)).unwrap();
    assert_eq!(report["total_charts_linted"], 1, "{report:#}");
    assert!(
        report["errors"].as_array().is_none_or(Vec::is_empty),
        "{report:#}"
    );
    let serious: Vec<_> = report["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["severity"].as_i64().unwrap_or(0) >= 2)
        .collect();
    assert!(serious.is_empty(), "lint warnings/errors: {serious:#?}");
}

/// Chart.yaml's appVersion is the crate's version, and the chart is named paved.
#[test]
fn chart_app_version_is_the_crate_version() {
    let meta = yaml_docs(&read_project_file("charts/paved/Chart.yaml")).remove(0);
    assert_eq!(meta["apiVersion"], "v2");
    assert_eq!(meta["name"], "paved");
    assert_eq!(
        meta["appVersion"], APP_VERSION,
        "Chart.yaml appVersion must equal Cargo.toml's version"
    );
}

/// The chart's and the kustomize base's CRDs are byte-identical copies of `crds/` (which
/// tests/integration/crds.rs ties to the Rust types), and Helm loads exactly those.
#[test]
fn chart_and_base_crds_are_identical_to_crds_dir() {
    let source = crd_files("crds");
    assert_eq!(source.len(), paved::api::all_crds().len());
    for copy in ["charts/paved/crds", "deploy/base/crds"] {
        assert!(
            crd_files(copy) == source,
            "{copy}/ differs from crds/. Sync it: rm {copy}/*.yaml && cp crds/*.yaml {copy}/"
        );
    }
    let rendered: Vec<Value> = render_chart_with_crds(&no_values())
        .into_iter()
        .filter(|o| o["kind"] == "CustomResourceDefinition")
        .collect();
    let want: Vec<Value> = source
        .iter()
        .map(|(_, text)| yaml_docs(text).remove(0))
        .collect();
    assert_eq!(rendered, want, "the CRDs Helm installs differ from crds/");
}

/// The Deployment of the default render: `paved run` with every flag as an env var `paved run`
/// knows, probes, ports, leader election with 2 replicas, and a hardened pod.
#[test]
fn rendered_deployment_is_hardened_and_configured() {
    let objects = render_chart(&no_values());
    let deploy = find(&objects, "Deployment", Some("paved"));
    assert_eq!(deploy["metadata"]["namespace"], chart::NAMESPACE);
    assert_eq!(deploy["spec"]["replicas"], 2);
    let pod = &deploy["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "paved");

    // Pod-level security.
    let psc = &pod["securityContext"];
    assert_eq!(psc["runAsNonRoot"], true);
    assert_eq!(psc["runAsUser"], 65532);
    assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault");

    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(c["args"], json!(["run"]));
    assert_eq!(
        c["image"],
        format!("ghcr.io/example/paved:{APP_VERSION}"),
        "the tag defaults to appVersion"
    );
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert!(sc["runAsUser"].as_i64().unwrap() > 0);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert!(sc["capabilities"]["add"].is_null());
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    for kind in ["requests", "limits"] {
        for res in ["cpu", "memory"] {
            assert!(
                c["resources"][kind][res].is_string(),
                "resources.{kind}.{res} missing: {:#}",
                c["resources"]
            );
        }
    }

    // Ports and probes.
    let ports: Vec<(String, i64)> = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["containerPort"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        vec![
            ("metrics".to_string(), 8080),
            ("health".to_string(), 8081),
            ("webhook".to_string(), 9443)
        ]
    );
    // The conversion webhook: paved's own certificate, behind the Service the CRD is pointed at.
    let env = c["env"].as_array().unwrap();
    let value = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .map(|e| e["value"].clone())
    };
    assert_eq!(
        value("PAVED_CONVERSION_WEBHOOK_SECRET"),
        Some(json!("paved-system/paved-webhook-tls"))
    );
    assert_eq!(
        value("PAVED_CONVERSION_WEBHOOK_SERVICE"),
        Some(json!("paved-system/paved-webhook"))
    );
    let svc = find(&objects, "Service", Some("paved-webhook"));
    assert_eq!(
        svc["spec"]["ports"],
        json!([{"name": "webhook", "port": 443, "targetPort": "webhook", "protocol": "TCP"}])
    );
    let off = render_chart(&json!({"conversionWebhook": {"enabled": false}}));
    assert!(off.iter().all(|o| {
        !o["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .ends_with("-webhook")
    }));
    assert_eq!(
        c["livenessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": "health"})
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "health"})
    );

    // Environment: the downward API and every PAVED_* flag, each one `paved run` accepts.
    let env: Vec<&Value> = c["env"].as_array().unwrap().iter().collect();
    let value = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("env {name} missing: {env:#?}"))["value"]
            .clone()
    };
    let field = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("env {name} missing"))["valueFrom"]["fieldRef"]["fieldPath"]
            .clone()
    };
    assert_eq!(field("POD_NAME"), "metadata.name");
    assert_eq!(field("POD_NAMESPACE"), "metadata.namespace");
    assert_eq!(value("PAVED_LEADER_ELECT"), "true");
    assert_eq!(value("PAVED_LEASE_NAME"), chart::LEASE_NAME);
    assert_eq!(value("PAVED_LEASE_NAMESPACE"), chart::NAMESPACE);
    assert_eq!(value("PAVED_METRICS_ADDR"), "0.0.0.0:8080");
    assert_eq!(value("PAVED_HEALTH_ADDR"), "0.0.0.0:8081");
    assert_eq!(value("PAVED_LOG_FORMAT"), "json");
    for name in [
        "PAVED_POLL_INTERVAL",
        "PAVED_AWS_RATE",
        "PAVED_LOG_LEVEL",
        "PAVED_CONTROLLERS",
    ] {
        assert!(value(name).is_string(), "{name}");
    }
    assert!(
        env.iter().all(|e| e["name"] != "PAVED_NAMESPACES"),
        "default: all namespaces (unset)"
    );
    let help = Command::new(env!("CARGO_BIN_EXE_paved"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for e in &env {
        let name = e["name"].as_str().unwrap();
        if name.starts_with("PAVED_") {
            assert!(
                help.contains(&format!("[env: {name}")),
                "`paved run` has no flag for env {name}:\n{help}"
            );
        }
    }
}

/// The values `paved run` would read from the Deployment's env parse: start the real binary with
/// exactly those variables and `--help`-free arguments, and check clap accepts them (it fails
/// fast on a bad value before connecting anywhere; with no cluster it then fails to connect).
#[test]
fn rendered_env_values_parse_as_paved_run_flags() {
    let objects = render_chart(
        &json!({"paved": {"namespaces": ["team-a", "team-b"], "allowPodIdentity": true}}),
    );
    let c = &find(&objects, "Deployment", None)["spec"]["template"]["spec"]["containers"][0];
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paved"));
    cmd.arg("run")
        .env_clear()
        .env("KUBECONFIG", "/nonexistent/kubeconfig");
    for e in c["env"].as_array().unwrap() {
        if let Some(v) = e["value"].as_str() {
            cmd.env(e["name"].as_str().unwrap(), v);
        }
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        !stderr.contains("invalid value") && !stderr.contains("Usage:"),
        "clap rejected the chart's env:\n{stderr}"
    );
    assert!(
        stderr.contains("connecting to Kubernetes"),
        "expected to get as far as connecting:\n{stderr}"
    );
}

/// Nothing in any render uses a `latest` tag, and Helm refuses `image.tag: latest` and values that
/// would drop the memory limit or misspell a key (values.schema.json).
#[test]
fn no_latest_tag_and_the_schema_guards_values() {
    for values in [
        no_values(),
        json!({"image": {"tag": "0.2.0"}}),
        json!({"image": {"digest": format!("sha256:{}", "a".repeat(64))}}),
    ] {
        let text = chart::render_chart_yaml(&values, true);
        assert!(
            !text.contains(":latest"),
            "{values}: a :latest reference in\n{text}"
        );
        for obj in yaml_docs(&text)
            .iter()
            .filter(|o| o["kind"] == "Deployment")
        {
            let image = obj["spec"]["template"]["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap();
            assert!(
                !image.ends_with(":latest") && image.contains(':'),
                "{image}"
            );
        }
    }
    for (bad, why) in [
        (json!({"image": {"tag": "latest"}}), "image.tag latest"),
        (
            json!({"resources": {"limits": {"memory": null}}}),
            "no memory limit",
        ),
        (json!({"replicas": 3}), "unknown key"),
        (json!({"paved": {"logFormat": "xml"}}), "bad log format"),
        (json!({"paved": {"pollInterval": "soon"}}), "bad duration"),
        (
            json!({"rbac": {"extraComposedResources": [{"apiGroup": "ec2.aws.upbound.io"}]}}),
            "resources missing",
        ),
    ] {
        let res = try_render_chart(&bad);
        assert!(
            res.is_err(),
            "{why}: Helm accepted {bad}:\n{}",
            res.unwrap()
        );
    }
}

/// The optional ServiceMonitor (off by default) selects the metrics Service's port.
#[test]
fn service_monitor_is_optional_and_scrapes_the_metrics_service() {
    let default = render_chart(&no_values());
    assert!(default.iter().all(|o| o["kind"] != "ServiceMonitor"));
    let objects = render_chart(
        &json!({"metrics": {"serviceMonitor": {"enabled": true, "labels": {"release": "prom"}}}}),
    );
    let sm = find(&objects, "ServiceMonitor", None);
    let svc = find(&objects, "Service", Some("paved-metrics"));
    assert_eq!(sm["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(sm["metadata"]["labels"]["release"], "prom");
    assert_eq!(
        sm["spec"]["endpoints"][0]["port"],
        svc["spec"]["ports"][0]["name"]
    );
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
    for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(&svc["metadata"]["labels"][k], v);
    }
    assert_eq!(svc["spec"]["ports"][0]["port"], 8080);
}

/// The ServiceAccount carries the IRSA annotation, and extra composed kinds extend the
/// ClusterRole.
#[test]
fn irsa_annotation_and_extra_composed_resources() {
    let arn = "arn:aws:iam::123456789012:role/paved";
    let objects = render_chart(&json!({
        "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": arn}},
        "rbac": {"extraComposedResources": [{"apiGroup": "ec2.aws.upbound.io", "resources": ["securitygroups", "securitygrouprules"]}]},
    }));
    let sa = find(&objects, "ServiceAccount", Some("paved"));
    assert_eq!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        arn
    );
    let rules = find(&objects, "ClusterRole", Some("paved"))["rules"]
        .as_array()
        .unwrap()
        .clone();
    assert!(rules.contains(&json!({
        "apiGroups": ["ec2.aws.upbound.io"],
        "resources": ["securitygroups", "securitygrouprules"],
        "verbs": ["get", "list", "watch", "create", "patch", "delete"],
    })));
    assert_eq!(rules.len(), expected_cluster_rules().len() + 1);
}

// ---------------------------------------------------------------------------------------------
// Against the local API server

/// Every object the chart renders by default (CRDs included; the ServiceMonitor kind is not served
/// here) passes a server-side dry-run apply on the real kube-apiserver, as does a render with the
/// optional settings on.
#[tokio::test]
async fn rendered_chart_passes_server_side_dry_run() {
    let client = client().await;
    install_crds(&client).await;
    ensure_namespace(&client, chart::NAMESPACE).await;
    let variants = [
        no_values(),
        json!({
            "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/paved"}},
            "rbac": {"extraComposedResources": [{"apiGroup": "ec2.aws.upbound.io", "resources": ["securitygroups"]}]},
            "paved": {"namespaces": ["team-a"], "logFormat": "text"},
            "leaderElection": {"enabled": false},
            "replicaCount": 1,
            "extraEnv": [{"name": "AWS_REGION", "value": "eu-west-1"}],
            "image": {"digest": format!("sha256:{}", "b".repeat(64))},
        }),
    ];
    for values in variants {
        let objects = render_chart_with_crds(&values);
        assert!(
            objects.len() >= 9,
            "{values}: only {} objects",
            objects.len()
        );
        for obj in &objects {
            apply_json(&client, obj, None, true)
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "{values}: dry-run of {} {} rejected: {e}\n{obj:#}",
                        obj["kind"], obj["metadata"]["name"]
                    )
                });
        }
    }
}

/// `kubectl kustomize deploy/base` (kubectl's own kustomize) renders the chart's default objects
/// (without Helm's own labels) plus the namespace and the CRDs, and they pass a server-side
/// dry-run.
#[tokio::test]
async fn kustomize_base_matches_the_chart_and_dry_runs() {
    let env = e2e_env();
    let out = Command::new(&env.kubectl)
        .args(["kustomize", "deploy/base"])
        .current_dir(project_root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl kustomize deploy/base: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let objects = yaml_docs(&String::from_utf8(out.stdout).unwrap());

    let key = |o: &Value| {
        format!(
            "{}/{}",
            o["kind"].as_str().unwrap(),
            o["metadata"]["name"].as_str().unwrap()
        )
    };
    let mut want: Vec<Value> = render_chart_with_crds(&no_values());
    for o in &mut want {
        for path in ["/metadata/labels", "/spec/template/metadata/labels"] {
            if let Some(labels) = o.pointer_mut(path).and_then(Value::as_object_mut) {
                labels.remove("helm.sh/chart");
                labels.remove("app.kubernetes.io/managed-by");
            }
        }
    }
    // kustomize (Go YAML) prints `65536.0` as 65536: compare numbers by value.
    let objects: Vec<Value> = objects.into_iter().map(normalize_numbers).collect();
    let want: Vec<Value> = want.into_iter().map(normalize_numbers).collect();
    let got_keys: BTreeSet<String> = objects.iter().map(key).collect();
    let mut want_keys: BTreeSet<String> = want.iter().map(key).collect();
    want_keys.insert(format!("Namespace/{}", chart::NAMESPACE));
    assert_eq!(got_keys, want_keys);
    for w in &want {
        let g = objects.iter().find(|o| key(o) == key(w)).unwrap();
        assert_eq!(
            g,
            w,
            "deploy/base {} differs from the chart's default render. Regenerate: {} tests/helm/render.py base deploy/base",
            key(w),
            chart::venv_python().display()
        );
    }

    let client = client().await;
    install_crds(&client).await;
    ensure_namespace(&client, chart::NAMESPACE).await;
    for obj in &objects {
        apply_json(&client, obj, None, true)
            .await
            .unwrap_or_else(|e| panic!("dry-run of kustomize's {} rejected: {e}", key(obj)));
    }
}

// ---------------------------------------------------------------------------------------------
// OPA: paved obeys the golden path it serves

/// The seed's OPA admission rules (evaluated by regopy against the rendered pod in namespace
/// `production`) deny nothing; and the same engine does deny a pod without a memory limit, with
/// a `:latest` image, or running as root — so the empty answer is meaningful.
#[test]
fn seed_opa_policy_admits_the_rendered_pod() {
    let pod = rendered_pod();
    assert_eq!(
        deny_messages(&pod),
        Vec::<String>::new(),
        "the seed policy denies paved's own pod"
    );

    let mut no_limit = pod.clone();
    no_limit["spec"]["containers"][0]["resources"]["limits"]
        .as_object_mut()
        .unwrap()
        .remove("memory");
    let denied = deny_messages(&no_limit);
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert!(
        denied[0].contains("Container 'paved' has no memory limit"),
        "{denied:?}"
    );

    let mut latest = pod.clone();
    latest["spec"]["containers"][0]["image"] = json!("ghcr.io/example/paved:latest");
    assert!(
        deny_messages(&latest)
            .iter()
            .any(|m| m.contains("':latest' tag"))
    );

    let mut root = pod.clone();
    root["spec"]["containers"][0]["securityContext"]["runAsUser"] = json!(0);
    assert!(
        deny_messages(&root)
            .iter()
            .any(|m| m.contains("running as root"))
    );
}

// ---------------------------------------------------------------------------------------------
// RBAC: exactly what paved uses

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

/// The managed kinds' groups and their namespaced twins' (one rule serves both).
const RDS: &[&str] = &["rds.aws.upbound.io", "rds.aws.m.upbound.io"];
const EC2: &[&str] = &["ec2.aws.upbound.io", "ec2.aws.m.upbound.io"];

/// The ClusterRole paved needs, derived from the controllers' API calls. Keep in step with
/// charts/paved/templates/clusterrole.yaml (and the code).
fn expected_cluster_rules() -> Vec<Value> {
    const RW: &[&str] = &["get", "list", "watch", "create", "patch", "delete"];
    const RO: &[&str] = &["get", "list", "watch"];
    vec![
        rule(
            &["database.example.com"],
            &["postgresqlinstances"],
            &["get", "list", "watch", "patch"],
        ),
        rule(
            &["database.example.com"],
            &["postgresqlinstances/status"],
            &["patch"],
        ),
        rule(
            &["database.example.com"],
            &["postgresqlinstances/finalizers"],
            &["update"],
        ),
        rule(&["apiextensions.crossplane.io"], &["compositions"], RO),
        rule(
            &["apiextensions.crossplane.io"],
            &["compositions/status"],
            &["patch"],
        ),
        rule(
            &["apiextensions.crossplane.io"],
            &["compositionrevisions"],
            &["get", "list", "watch", "create", "patch"],
        ),
        rule(
            &["apiextensions.crossplane.io"],
            &["compositeresourcedefinitions"],
            &["get", "list", "watch", "patch"],
        ),
        rule(
            &["apiextensions.crossplane.io"],
            &["compositeresourcedefinitions/status"],
            &["patch"],
        ),
        rule(
            &["apiextensions.k8s.io"],
            &["customresourcedefinitions"],
            &["get", "create", "patch", "delete"],
        ),
        rule(RDS, &["instances"], RW),
        rule(RDS, &["instances/status"], &["patch"]),
        rule(RDS, &["instances/finalizers"], &["update"]),
        rule(RDS, &["subnetgroups", "parametergroups"], RW),
        rule(
            RDS,
            &["subnetgroups/status", "parametergroups/status"],
            &["patch"],
        ),
        rule(EC2, &["securitygroups", "securitygrouprules"], RW),
        rule(
            EC2,
            &["securitygroups/status", "securitygrouprules/status"],
            &["patch"],
        ),
        rule(&["aws.upbound.io"], &["providerconfigs"], RO),
        rule(&[""], &["secrets"], RW),
        rule(&["events.k8s.io"], &["events"], &["create", "patch"]),
        rule(
            &["aws.m.upbound.io"],
            &["providerconfigs", "clusterproviderconfigs"],
            &["get"],
        ),
        rule(&[""], &["namespaces"], &["get"]),
    ]
}

/// The rendered ClusterRole and Role are exactly the expected rules: nothing more.
#[test]
fn rbac_rules_are_exactly_what_paved_uses() {
    let objects = render_chart(&no_values());
    let cr = find(&objects, "ClusterRole", Some("paved"));
    assert_eq!(cr["rules"].as_array().unwrap(), &expected_cluster_rules());
    let role = find(&objects, "Role", Some("paved-leader-election"));
    assert_eq!(role["metadata"]["namespace"], chart::NAMESPACE);
    assert_eq!(
        role["rules"],
        json!([
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": [chart::LEASE_NAME], "verbs": ["get", "update"]},
        ])
    );
    for (kind, name) in [
        ("ClusterRoleBinding", "paved"),
        ("RoleBinding", "paved-leader-election"),
    ] {
        let b = find(&objects, kind, Some(name));
        assert_eq!(
            b["subjects"],
            json!([{"kind": "ServiceAccount", "name": "paved", "namespace": chart::NAMESPACE}])
        );
    }
    // The webhook's Role: create Secrets (RBAC cannot limit create to a name), read only its own.
    let webhook = find(&objects, "Role", Some("paved-webhook"));
    assert_eq!(webhook["metadata"]["namespace"], chart::NAMESPACE);
    assert_eq!(
        webhook["rules"],
        json!([
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["paved-webhook-tls"], "verbs": ["get"]},
        ])
    );
    // Leader election and the webhook off: no Role at all.
    let off = render_chart(
        &json!({"leaderElection": {"enabled": false}, "conversionWebhook": {"enabled": false}}),
    );
    assert!(
        off.iter()
            .all(|o| o["kind"] != "Role" && o["kind"] != "RoleBinding")
    );
    assert_eq!(
        find(&off, "Deployment", None)["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "PAVED_LEADER_ELECT")
            .unwrap()["value"],
        "false"
    );
}

/// `watchNamespaces`: paved installed for some namespaces only. The ClusterRole keeps only
/// cluster-scoped reads and nothing on Secrets or any namespaced kind; each watched namespace
/// gets a Role with the namespaced rules; paved is told to watch exactly those namespaces. The
/// NetworkPolicy is off by default and, when on, admits only the probe and metrics ports.
#[test]
fn watch_namespaces_install_is_namespace_scoped() {
    let objects = render_chart(&json!({"watchNamespaces": ["team-a", "team-b"]}));
    let cr = find(&objects, "ClusterRole", Some("paved"));
    assert_eq!(
        cr["rules"].as_array().unwrap(),
        &vec![
            rule(
                &["apiextensions.crossplane.io"],
                &["compositions"],
                &["get", "list", "watch"]
            ),
            rule(
                &["apiextensions.crossplane.io"],
                &["compositions/status"],
                &["patch"]
            ),
            rule(
                &["apiextensions.crossplane.io"],
                &["compositionrevisions"],
                &["get", "list", "watch", "create", "patch"]
            ),
            // XRDs and the claim CRDs paved serves for them are cluster-scoped
            rule(
                &["apiextensions.crossplane.io"],
                &["compositeresourcedefinitions"],
                &["get", "list", "watch", "patch"]
            ),
            rule(
                &["apiextensions.crossplane.io"],
                &["compositeresourcedefinitions/status"],
                &["patch"]
            ),
            rule(
                &["apiextensions.k8s.io"],
                &["customresourcedefinitions"],
                &["get", "create", "patch", "delete"]
            ),
            rule(
                &["aws.upbound.io"],
                &["providerconfigs"],
                &["get", "list", "watch"]
            ),
            rule(&["aws.m.upbound.io"], &["clusterproviderconfigs"], &["get"]),
            rule(&[""], &["namespaces"], &["get"]),
        ]
    );
    // The namespaced rules, per watched namespace: exactly the cluster-wide install's namespaced
    // ones, plus the namespaced ProviderConfigs of Crossplane v2.
    let namespaced: Vec<Value> = expected_cluster_rules()
        .into_iter()
        .filter(|r| {
            let g = r["apiGroups"][0].as_str().unwrap();
            !matches!(
                g,
                "apiextensions.crossplane.io"
                    | "apiextensions.k8s.io"
                    | "aws.upbound.io"
                    | "aws.m.upbound.io"
            ) && r["resources"][0] != "namespaces"
        })
        .chain([rule(&["aws.m.upbound.io"], &["providerconfigs"], &["get"])])
        .collect();
    let roles: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == "Role" && o["metadata"]["name"] == "paved")
        .collect();
    let namespaces: BTreeSet<&str> = roles
        .iter()
        .map(|r| r["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(namespaces, BTreeSet::from(["team-a", "team-b"]));
    for role in &roles {
        let mut rules = role["rules"].as_array().unwrap().clone();
        let mut want = namespaced.clone();
        rules.sort_by_key(|r| r.to_string());
        want.sort_by_key(|r| r.to_string());
        assert_eq!(rules, want, "{}", role["metadata"]["namespace"]);
    }
    for ns in ["team-a", "team-b"] {
        let b = objects
            .iter()
            .find(|o| o["kind"] == "RoleBinding" && o["metadata"]["namespace"] == ns)
            .unwrap_or_else(|| panic!("no RoleBinding in {ns}"));
        assert_eq!(b["roleRef"]["name"], "paved");
        assert_eq!(
            b["subjects"],
            json!([{"kind": "ServiceAccount", "name": "paved", "namespace": chart::NAMESPACE}])
        );
    }
    // ProviderConfig credentials in the release namespace: read by name, nothing else.
    let creds = find(&objects, "Role", Some("paved-provider-credentials"));
    assert_eq!(creds["metadata"]["namespace"], chart::NAMESPACE);
    assert_eq!(
        creds["rules"],
        json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}])
    );
    // The Events about (cluster-scoped) Compositions go to the release namespace, paved's
    // POD_NAMESPACE: create and patch there, nothing else.
    let events = find(&objects, "Role", Some("paved-composition-events"));
    assert_eq!(events["metadata"]["namespace"], chart::NAMESPACE);
    assert_eq!(
        events["rules"],
        json!([{"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]}])
    );
    let binding = find(&objects, "RoleBinding", Some("paved-composition-events"));
    assert_eq!(binding["metadata"]["namespace"], chart::NAMESPACE);
    assert_eq!(binding["roleRef"]["name"], "paved-composition-events");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "paved", "namespace": chart::NAMESPACE}])
    );
    // No ClusterRole anywhere grants Secrets.
    for o in objects.iter().filter(|o| o["kind"] == "ClusterRole") {
        for r in o["rules"].as_array().unwrap() {
            assert!(
                !r["resources"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("secrets")),
                "{r}"
            );
        }
    }
    let env =
        &find(&objects, "Deployment", None)["spec"]["template"]["spec"]["containers"][0]["env"];
    let value = |name: &str| {
        env.as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .map(|e| e["value"].clone())
    };
    assert_eq!(value("PAVED_NAMESPACES"), Some(json!("team-a,team-b")));
    assert_eq!(value("PAVED_ALLOW_POD_IDENTITY"), None, "off by default");
    let allowed = render_chart(&json!({"paved": {"allowPodIdentity": true}}));
    let env =
        &find(&allowed, "Deployment", None)["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(
        env.as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "PAVED_ALLOW_POD_IDENTITY" && e["value"] == "true")
    );

    // The release namespace watched too: no separate credentials or Events Role (its own Role
    // has both).
    let within = render_chart(&json!({"watchNamespaces": ["team-a", chart::NAMESPACE]}));
    assert!(within.iter().all(|o| {
        o["metadata"]["name"] != "paved-provider-credentials"
            && o["metadata"]["name"] != "paved-composition-events"
    }));
    // The Deployment tells paved its namespace (where the Composition Events go).
    let deployment = find(&objects, "Deployment", None);
    let env_names: Vec<&str> = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert!(env_names.contains(&"POD_NAMESPACE"), "{env_names:?}");

    // NetworkPolicy: optional.
    assert!(
        render_chart(&no_values())
            .iter()
            .all(|o| o["kind"] != "NetworkPolicy")
    );
    let with_np = render_chart(&json!({"networkPolicy": {"enabled": true,
        "metricsFrom": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]}}));
    let np = find(&with_np, "NetworkPolicy", Some("paved"));
    assert_eq!(np["metadata"]["namespace"], chart::NAMESPACE);
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    let ingress_ports: Vec<&Value> = np["spec"]["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["ports"][0]["port"])
        .collect();
    assert_eq!(
        ingress_ports,
        vec![&json!(8080), &json!(8081), &json!(9443)]
    );
    assert_eq!(
        np["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]["name"],
        "monitoring"
    );
    assert_eq!(
        np["spec"]["podSelector"]["matchLabels"],
        find(&with_np, "Deployment", None)["spec"]["selector"]["matchLabels"]
    );
}

/// Least privilege, proven on the real authorizer: with the chart's RBAC applied, the identity
/// paved runs as (the env's least-privilege token, `system:serviceaccount:paved-system:paved`)
/// can do each thing paved does and none of what it does not.
///
/// Honest limit: paved lists and watches Secrets cluster-wide with a label selector (only the
/// Secrets it manages) and reads a ProviderConfig's credentials Secret by name, but RBAC cannot
/// restrict by label, so the grant is on all Secrets. `list secrets --all-namespaces` is
/// therefore asserted to be allowed — it is part of the security model the README documents.
#[tokio::test]
async fn least_privilege_rbac_allows_exactly_what_paved_needs() {
    let client = client().await;
    install_crds(&client).await;
    let applied = chart::apply_chart_rbac(&client).await;
    assert_eq!(
        applied.len(),
        7,
        "ServiceAccount, ClusterRole(Binding), Role(Binding) of the Lease and of the webhook's Secret"
    );
    let team = test_namespace(&client, "packaging-rbac").await;
    let ns = ["-n", team.as_str()];
    let sys = ["-n", chart::NAMESPACE];

    let mut problems = vec![];
    let mut check = |args: Vec<&str>, expect: bool| {
        if let Err(e) = can_i(&args, expect) {
            problems.push(e);
        }
    };
    fn with(a: &[&str], n: &[&str]) -> Vec<String> {
        a.iter().chain(n.iter()).map(|s| s.to_string()).collect()
    }
    let yes: Vec<Vec<String>> = vec![
        // claims
        with(
            &[
                "watch",
                "postgresqlinstances.database.example.com",
                "--all-namespaces",
            ],
            &[],
        ),
        with(
            &[
                "list",
                "postgresqlinstances.database.example.com",
                "--all-namespaces",
            ],
            &[],
        ),
        with(&["patch", "postgresqlinstances.database.example.com"], &ns),
        with(
            &[
                "patch",
                "postgresqlinstances.database.example.com",
                "--subresource=status",
            ],
            &ns,
        ),
        with(
            &[
                "update",
                "postgresqlinstances.database.example.com",
                "--subresource=finalizers",
            ],
            &ns,
        ),
        // compositions, providerconfigs
        with(&["watch", "compositions.apiextensions.crossplane.io"], &[]),
        with(&["get", "providerconfigs.aws.upbound.io"], &[]),
        // instances
        with(
            &["watch", "instances.rds.aws.upbound.io", "--all-namespaces"],
            &[],
        ),
        with(&["create", "instances.rds.aws.upbound.io"], &ns),
        with(&["patch", "instances.rds.aws.upbound.io"], &ns),
        with(&["delete", "instances.rds.aws.upbound.io"], &ns),
        with(
            &[
                "patch",
                "instances.rds.aws.upbound.io",
                "--subresource=status",
            ],
            &ns,
        ),
        with(
            &[
                "update",
                "instances.rds.aws.upbound.io",
                "--subresource=finalizers",
            ],
            &ns,
        ),
        // XRDs (finalizer, status) and the claim CRDs paved synthesises from them
        with(
            &[
                "watch",
                "compositeresourcedefinitions.apiextensions.crossplane.io",
            ],
            &[],
        ),
        with(
            &[
                "patch",
                "compositeresourcedefinitions.apiextensions.crossplane.io",
            ],
            &[],
        ),
        with(
            &["create", "customresourcedefinitions.apiextensions.k8s.io"],
            &[],
        ),
        with(
            &["patch", "customresourcedefinitions.apiextensions.k8s.io"],
            &[],
        ),
        // secrets (see the doc comment) and events
        with(&["create", "secrets"], &ns),
        with(&["patch", "secrets"], &ns),
        with(&["delete", "secrets"], &ns),
        with(&["list", "secrets", "--all-namespaces"], &[]),
        with(&["create", "events.events.k8s.io"], &ns),
        with(&["patch", "events.events.k8s.io"], &ns),
        // ProviderConfigs of Crossplane v2, and the Namespace labels a namespaceSelector reads
        with(&["get", "providerconfigs.aws.m.upbound.io"], &ns),
        with(&["get", "clusterproviderconfigs.aws.m.upbound.io"], &[]),
        with(&["get", "namespaces"], &[]),
        // the webhook's own certificate, in the release namespace
        with(&["create", "secrets"], &sys),
        with(&["get", "secrets/paved-webhook-tls"], &sys),
        // the leader Lease, in the release namespace
        with(&["create", "leases.coordination.k8s.io"], &sys),
        with(&["get", "leases.coordination.k8s.io/paved-leader"], &sys),
        with(&["update", "leases.coordination.k8s.io/paved-leader"], &sys),
    ];
    let no: Vec<Vec<String>> = vec![
        with(&["create", "postgresqlinstances.database.example.com"], &ns),
        with(&["update", "postgresqlinstances.database.example.com"], &ns),
        with(&["update", "secrets"], &ns),
        with(&["create", "events"], &ns),
        with(&["delete", "postgresqlinstances.database.example.com"], &ns),
        with(&["create", "compositions.apiextensions.crossplane.io"], &[]),
        with(&["patch", "compositions.apiextensions.crossplane.io"], &[]),
        with(&["delete", "compositions.apiextensions.crossplane.io"], &[]),
        with(&["update", "providerconfigs.aws.upbound.io"], &[]),
        with(&["delete", "providerconfigs.aws.upbound.io"], &[]),
        with(&["delete", "namespaces"], &[]),
        with(&["create", "namespaces"], &[]),
        with(&["list", "namespaces"], &[]),
        with(&["patch", "namespaces"], &[]),
        with(&["list", "providerconfigs.aws.m.upbound.io"], &ns),
        with(&["update", "clusterproviderconfigs.aws.m.upbound.io"], &[]),
        with(&["create", "deployments.apps"], &ns),
        with(&["create", "pods"], &ns),
        with(&["create", "pods/exec"], &ns),
        with(&["get", "configmaps"], &ns),
        with(&["create", "serviceaccounts/token"], &sys),
        with(&["delete", "events.events.k8s.io"], &ns),
        with(&["list", "events.events.k8s.io"], &ns),
        with(
            &["update", "customresourcedefinitions.apiextensions.k8s.io"],
            &[],
        ),
        with(
            &[
                "delete",
                "compositeresourcedefinitions.apiextensions.crossplane.io",
            ],
            &[],
        ),
        with(&["create", "clusterroles.rbac.authorization.k8s.io"], &[]),
        with(&["create", "rolebindings.rbac.authorization.k8s.io"], &sys),
        with(&["impersonate", "users"], &[]),
        with(&["create", "leases.coordination.k8s.io"], &ns),
        with(&["update", "leases.coordination.k8s.io/someone-else"], &sys),
        with(&["delete", "leases.coordination.k8s.io/paved-leader"], &sys),
        with(&["patch", "subnets.ec2.aws.upbound.io"], &ns),
    ];
    for args in &yes {
        check(args.iter().map(String::as_str).collect(), true);
    }
    for args in &no {
        check(args.iter().map(String::as_str).collect(), false);
    }
    assert!(
        problems.is_empty(),
        "least-privilege RBAC is wrong:\n{}",
        problems.join("\n")
    );
}
