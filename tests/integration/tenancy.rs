//! Tenancy attacks against the real API server and the RDS emulator: a team naming an AWS
//! account (ProviderConfig) the platform team did not give its namespace, a namespaced
//! ProviderConfig reaching for another namespace's credentials or paved's own identity, an
//! Instance with no ProviderConfig at all, and leader election under a stalled API server.
//!
//! "No call with those credentials" is proven by giving the guarded ProviderConfig its own
//! endpoint, a fault proxy in front of the emulator that only it names, and its own access key:
//! the proxy counts every request that reaches it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::{Duration, Instant, SystemTime};

use common::*;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, Patch, PatchParams, PostParams};
use paved::api::instance::Instance;
use serde_json::{Value, json};

/// A Secret `name` with an AWS credentials file whose access key is `key_id`.
fn credentials_secret(name: &str, ns: &str, key_id: &str) -> Secret {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "stringData": {"credentials": format!("[default]\naws_access_key_id = {key_id}\naws_secret_access_key = testing\n")}
    }))
    .unwrap()
}

/// The credentials and endpoint part of a ProviderConfig spec: the Secret `secret` in
/// `secret_ns` (left out when `None`) and the endpoint `url`.
fn pc_spec(secret: &str, secret_ns: Option<&str>, url: &str) -> Value {
    let mut secret_ref = json!({"name": secret, "key": "credentials"});
    if let Some(ns) = secret_ns {
        secret_ref["namespace"] = json!(ns);
    }
    json!({
        "credentials": {"source": "Secret", "secretRef": secret_ref},
        "endpoint": {"url": {"type": "Static", "static": url}}
    })
}

async fn label_namespace(client: &kube::Client, ns: &str, labels: Value) {
    Api::<Namespace>::all(client.clone())
        .patch(
            ns,
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": labels}})),
        )
        .await
        .unwrap();
}

fn synced_message(i: &Instance) -> String {
    cond(i, "Synced")
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

/// A ProviderConfig whose namespaceSelector does not match the Instance's namespace is refused
/// with Synced=False naming it, and nothing reaches AWS with its credentials; once the platform
/// team labels the namespace, the same Instance is served (so the silence was the refusal, not a
/// broken path).
#[tokio::test]
async fn provider_config_refuses_namespaces_its_selector_does_not_match() {
    let env = RdsEnv::new("ten-sel", "eu-north-1", None).await;
    let e2e = e2e_env();
    let mut cleanup = ClusterCleanup::new(&e2e);
    // The platform's account: credentials in a namespace the team cannot read, an endpoint
    // only this ProviderConfig uses.
    let platform = test_namespace(&env.client, "ten-platform").await;
    Api::<Secret>::namespaced(env.client.clone(), &platform)
        .create(
            &PostParams::default(),
            &credentials_secret("prod-creds", &platform, "AKIAPLATFORMONLY"),
        )
        .await
        .unwrap();
    let proxy = FaultProxy::start(&e2e.moto_url).await;
    let tenant = format!("tenant-{}", env.ns);
    let pc = format!("prod-{}", env.ns);
    cleanup.provider_config(&pc);
    let mut spec = pc_spec("prod-creds", Some(&platform), &proxy.url());
    spec["namespaceSelector"] = json!({"matchLabels": {"paved.io/tenant": tenant}});
    apply(
        &env.client,
        &json!({"apiVersion": "aws.upbound.io/v1beta1", "kind": "ProviderConfig",
                "metadata": {"name": pc}, "spec": spec}),
    )
    .await
    .unwrap();

    let ctl = RdsController::start(&env.client, &env.ns, fast()).await;
    let obj: Instance =
        serde_json::from_value(instance_json("steal", &env.region, &pc, json!({}))).unwrap();
    env.instances
        .create(&PostParams::default(), &obj)
        .await
        .unwrap();
    let i = env
        .wait_synced_false("steal", "ProviderConfigNotAllowed", 60)
        .await;
    let msg = synced_message(&i);
    assert!(
        msg.contains(&format!("ProviderConfig {pc}")) && msg.contains(&env.ns),
        "{msg}"
    );
    // Several reconciles later (requeued every poll), still nothing reached the account.
    let from = ctl.reconciles();
    until(30, "three more reconciles", || ctl.reconciles() >= from + 3).await;
    assert_eq!(
        proxy.total(),
        0,
        "calls with the refused ProviderConfig's credentials: {:?}",
        proxy.by_action()
    );
    assert_eq!(ctl.mutating_calls(), 0);
    assert!(env.own_ids().await.is_empty(), "nothing was created");
    assert!(env.secrets.get_opt("steal-conn").await.unwrap().is_none());

    // The platform team grants the namespace: the same Instance is served through the proxy.
    label_namespace(&env.client, &env.ns, json!({"paved.io/tenant": tenant})).await;
    env.wait_ready("steal", 90).await;
    assert!(proxy.total() > 0, "the granted path goes through the proxy");
    ctl.stop().await;
}

/// Crossplane v2 kinds: `providerConfigRef.kind` is kept (not pruned) and honoured. A namespaced
/// aws.m.upbound.io ProviderConfig serves only its own namespace, only with a Secret there; one
/// that names another namespace's Secret or paved's own identity is refused with no AWS call; a
/// ClusterProviderConfig's namespaceSelector is enforced like the v1 ProviderConfig's.
#[tokio::test]
async fn crossplane_v2_provider_config_kinds_are_bound_to_namespaces() {
    let env = RdsEnv::new("ten-v2", "eu-south-1", None).await;
    let e2e = e2e_env();
    let mut cleanup = ClusterCleanup::new(&e2e);
    let proxy = FaultProxy::start(&e2e.moto_url).await;
    let other = test_namespace(&env.client, "ten-v2-other").await;
    Api::<Secret>::namespaced(env.client.clone(), &other)
        .create(
            &PostParams::default(),
            &credentials_secret("their-creds", &other, "AKIAOTHERTEAM"),
        )
        .await
        .unwrap();
    let namespaced = |name: &str, spec: Value| {
        json!({"apiVersion": "aws.m.upbound.io/v1beta1", "kind": "ProviderConfig",
               "metadata": {"name": name, "namespace": env.ns}, "spec": spec})
    };
    // Ours: the Secret of this namespace (secretRef.namespace left out), the emulator.
    apply(
        &env.client,
        &namespaced("ours", pc_spec("aws-creds", None, &e2e.moto_url)),
    )
    .await
    .unwrap();
    // Reaching for another namespace's Secret, through the proxy.
    apply(
        &env.client,
        &namespaced("theirs", pc_spec("their-creds", Some(&other), &proxy.url())),
    )
    .await
    .unwrap();
    // Reaching for paved's own identity, through the proxy.
    apply(
        &env.client,
        &namespaced(
            "pod",
            json!({"credentials": {"source": "InjectedIdentity"},
                   "endpoint": {"url": {"type": "Static", "static": proxy.url()}}}),
        ),
    )
    .await
    .unwrap();
    // A ClusterProviderConfig for another tenant only, through the proxy.
    let cpc = format!("cpc-{}", env.ns);
    cleanup.objects.push((
        "clusterproviderconfigs.aws.m.upbound.io".into(),
        cpc.clone(),
    ));
    let mut spec = pc_spec("aws-creds", Some(&env.ns), &proxy.url());
    label_namespace(&env.client, &other, json!({"paved.io/tenant": other})).await;
    spec["namespaceSelector"] = json!({"matchExpressions": [
        {"key": "paved.io/tenant", "operator": "In", "values": [other]}]});
    apply(
        &env.client,
        &json!({"apiVersion": "aws.m.upbound.io/v1beta1", "kind": "ClusterProviderConfig",
                "metadata": {"name": cpc}, "spec": spec}),
    )
    .await
    .unwrap();

    let ctl = RdsController::start(&env.client, &env.ns, fast()).await;
    let with_ref = |name: &str, kind: &str, pc: &str| -> Instance {
        serde_json::from_value(instance_json(
            name,
            &env.region,
            pc,
            json!({"spec": {"providerConfigRef": {"kind": kind, "name": pc}}}),
        ))
        .unwrap()
    };
    for (name, kind, pc) in [
        ("ok", "ProviderConfig", "ours"),
        ("cross-ns", "ProviderConfig", "theirs"),
        ("pod-id", "ProviderConfig", "pod"),
        ("cluster", "ClusterProviderConfig", cpc.as_str()),
    ] {
        env.instances
            .create(&PostParams::default(), &with_ref(name, kind, pc))
            .await
            .unwrap();
    }
    let ok = env.wait_ready("ok", 90).await;
    let r = ok.spec.provider_config_ref.as_ref().unwrap();
    assert_eq!(
        serde_json::to_value(r).unwrap(),
        json!({"kind": "ProviderConfig", "name": "ours"}),
        "providerConfigRef.kind survives the API server"
    );
    let i = env
        .wait_synced_false("cross-ns", "ProviderConfigError", 60)
        .await;
    let msg = synced_message(&i);
    assert!(
        msg.contains("ProviderConfig theirs") && msg.contains("secretRef.namespace"),
        "{msg}"
    );
    let i = env
        .wait_synced_false("pod-id", "ProviderConfigError", 60)
        .await;
    let msg = synced_message(&i);
    assert!(msg.contains("credentials.source must be Secret"), "{msg}");
    let i = env
        .wait_synced_false("cluster", "ProviderConfigNotAllowed", 60)
        .await;
    let msg = synced_message(&i);
    assert!(
        msg.contains(&format!("ClusterProviderConfig {cpc}")),
        "{msg}"
    );
    let from = ctl.reconciles();
    until(30, "more reconciles", || ctl.reconciles() >= from + 6).await;
    assert_eq!(
        proxy.total(),
        0,
        "calls through refused ProviderConfigs: {:?}",
        proxy.by_action()
    );
    let ids = env.own_ids().await;
    assert_eq!(ids.len(), 1, "only the allowed Instance exists: {ids:?}");

    // Another namespace cannot name this namespace's ProviderConfig: it looks in its own.
    let ctl_other = RdsController::start(&env.client, &other, fast()).await;
    let others: Api<Instance> = Api::namespaced(env.client.clone(), &other);
    others
        .create(
            &PostParams::default(),
            &with_ref("borrow", "ProviderConfig", "ours"),
        )
        .await
        .unwrap();
    let i = wait_for(&others, "borrow", 60, "refused", |i: &Instance| {
        is(i, "Synced", "False", "ProviderConfigError")
    })
    .await;
    let msg = synced_message(&i);
    assert!(
        msg.contains(&format!("in namespace {other}")) && msg.contains("not found"),
        "{msg}"
    );
    assert_eq!(env.own_ids().await.len(), 1);
    ctl_other.stop().await;
    ctl.stop().await;
}

/// No ProviderConfig named and none called `default`: a clear Synced=False, not paved's own AWS
/// identity (which the in-process controller here would have: the emulator's keys).
#[tokio::test]
async fn no_provider_config_is_refused_not_served_with_the_pod_identity() {
    let env = RdsEnv::new("ten-nopc", "ca-central-1", None).await;
    let pcs: Api<paved::api::ProviderConfig> = Api::all(env.client.clone());
    assert!(
        pcs.get_opt("default").await.unwrap().is_none(),
        "this test needs a cluster without a ProviderConfig named default"
    );
    let ctl = RdsController::start(&env.client, &env.ns, fast()).await;
    env.instances
        .create(
            &PostParams::default(),
            &bare_instance("orphan", &env.ns, &env.region),
        )
        .await
        .unwrap();
    let i = env
        .wait_synced_false("orphan", "NoProviderConfig", 60)
        .await;
    let msg = synced_message(&i);
    assert!(
        msg.contains("--allow-pod-identity") && msg.contains("providerConfigRef"),
        "{msg}"
    );
    let from = ctl.reconciles();
    until(30, "more reconciles", || ctl.reconciles() >= from + 2).await;
    assert_eq!(ctl.metrics.total_calls(), 0, "no AWS call at all");
    assert!(env.own_ids().await.is_empty());
    ctl.stop().await;
}

/// Split brain: the leader's connection to the API server stalls (every byte held, nothing
/// refused, as in a partition). It must stop reconciling (its process exits) before the standby,
/// which still reaches the API server, can take the Lease: no moment with two leaders.
#[tokio::test]
async fn a_partitioned_leader_stops_before_another_takes_over() {
    let client = client().await;
    install_crds(&client).await;
    let ns = test_namespace(&client, "ten-lease").await;
    let e2e = e2e_env();
    let proxy = TcpProxy::start(&kube_server_addr(&e2e.kubeconfig)).await;
    let kubeconfig = kubeconfig_via(
        &e2e.kubeconfig,
        &proxy,
        &project_root().join("target/e2e-logs"),
    );
    let lease_name = "paved-partition";
    let args = [
        &["--namespaces", ns.as_str()][..],
        &fast_leader_election(&ns, lease_name),
        &["--poll-interval", "5s", "--log-level", "info,paved=debug"],
    ]
    .concat();
    let mut a = Paved::start(&args, Some(&kubeconfig), &format!("{ns}-a"));
    wait_for_leader(&[&a], 60).await;
    let b = Paved::start(&args, None, &format!("{ns}-b"));
    b.wait_serving(Duration::from_secs(60)).await;
    assert!(
        !b.is_leader().await,
        "the standby waits while the leader renews"
    );

    proxy.set_stall(true);
    let stalled = Instant::now();
    let (mut a_gone, mut b_leads) = (None, None);
    while (a_gone.is_none() || b_leads.is_none()) && stalled.elapsed() < Duration::from_secs(40) {
        if a_gone.is_none() && !a.alive() {
            a_gone = Some(SystemTime::now());
        }
        if b_leads.is_none() && b.is_leader().await {
            b_leads = Some(SystemTime::now());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let a_gone = a_gone.unwrap_or_else(|| {
        panic!(
            "the partitioned leader kept running {:?} into the stall; log:\n{}",
            stalled.elapsed(),
            a.log_tail(30)
        )
    });
    assert!(
        b_leads.is_some(),
        "the standby never took over; log:\n{}",
        b.log_tail(30)
    );
    // When the standby acquired the Lease, by its own record (the time it sent the winning
    // write: no later than when it started reconciling). The leader's exit was seen by polling,
    // so no earlier than it happened.
    let lease = Api::<Lease>::namespaced(client.clone(), &ns)
        .get(lease_name)
        .await
        .unwrap();
    let spec = lease.spec.unwrap();
    assert!(
        spec.holder_identity
            .as_deref()
            .unwrap_or_default()
            .starts_with(&format!("{ns}-b")),
        "{spec:?}"
    );
    let acquired = spec.acquire_time.expect("acquireTime").0;
    let acquired = SystemTime::UNIX_EPOCH
        + Duration::from_nanos(u64::try_from(acquired.as_nanosecond()).unwrap());
    assert!(
        a_gone < acquired,
        "the old leader exited {:?} after the new one acquired",
        a_gone.duration_since(acquired).unwrap_or_default()
    );
    let log = a.log_text();
    assert!(log.contains("leadership lost"), "{}", a.log_tail(30));
    proxy.set_stall(false);
}

/// The chart's RBAC for a `watchNamespaces: [team]` install under a release name of its own
/// (ServiceAccount `<release>` in paved-system, ClusterRole(Binding) `<release>`, removed by
/// `cleanup`), applied for real. Returns the release name.
async fn install_scoped(client: &kube::Client, team: &str, cleanup: &mut ClusterCleanup) -> String {
    ensure_namespace(client, chart::NAMESPACE).await;
    let release = format!("paved-scoped-{}", random_suffix(5));
    for kind in ["clusterroles", "clusterrolebindings"] {
        cleanup
            .objects
            .push((format!("{kind}.rbac.authorization.k8s.io"), release.clone()));
    }
    let objects = chart::render_chart(&json!({
        "fullnameOverride": release,
        "watchNamespaces": [team],
        "leaderElection": {"enabled": false}
    }));
    let mut applied = 0;
    for obj in objects.iter().filter(|o| {
        matches!(
            o["kind"].as_str(),
            Some("ServiceAccount" | "ClusterRole" | "ClusterRoleBinding" | "Role" | "RoleBinding")
        )
    }) {
        apply_json(client, obj, None, false).await.unwrap();
        applied += 1;
    }
    assert_eq!(
        applied, 11,
        "SA, ClusterRole(Binding), Role(Binding) x4 (the team's, ProviderConfig credentials, Composition Events, the webhook's own Secret)"
    );
    release
}

/// `kubectl auth can-i --as USER ARGS` with the admin kubeconfig (retried briefly for `yes`: the
/// authorizer sees new bindings once its informer catches up).
fn can_i_as(user: &str, args: &[&str], expect: bool) -> Result<(), String> {
    let env = e2e_env();
    let deadline = Instant::now() + Duration::from_secs(if expect { 15 } else { 0 });
    loop {
        let out = std::process::Command::new(&env.kubectl)
            .args(["--kubeconfig", env.kubeconfig.to_str().unwrap()])
            .args(["auth", "can-i", "--as", user])
            .args(args)
            .output()
            .unwrap();
        let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let got = answer == "yes";
        if got == expect {
            return Ok(());
        }
        if answer != "no" && answer != "yes" {
            return Err(format!(
                "can-i {args:?}: {answer:?} {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        if Instant::now() >= deadline {
            return Err(format!("can-i {args:?}: {answer}, expected {expect}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Least privilege, on the real authorizer: the chart installed with `watchNamespaces` lets
/// paved's identity do its work in those namespaces and read ProviderConfig credentials in the
/// release namespace by name, and nothing with Secrets anywhere else.
#[tokio::test]
async fn watch_namespaces_install_cannot_reach_other_namespaces_secrets() {
    let client = client().await;
    install_crds(&client).await;
    ensure_namespace(&client, chart::NAMESPACE).await;
    let team = test_namespace(&client, "ten-scoped").await;
    let other = test_namespace(&client, "ten-scoped-other").await;
    let e2e = e2e_env();
    let mut cleanup = ClusterCleanup::new(&e2e);
    let release = install_scoped(&client, &team, &mut cleanup).await;
    let user = format!("system:serviceaccount:{}:{release}", chart::NAMESPACE);
    let (t, o, sys) = (team.as_str(), other.as_str(), chart::NAMESPACE);
    let yes: Vec<Vec<&str>> = vec![
        vec!["list", "secrets", "-n", t],
        vec!["watch", "secrets", "-n", t],
        vec!["create", "secrets", "-n", t],
        vec!["watch", "instances.rds.aws.upbound.io", "-n", t],
        vec!["patch", "postgresqlinstances.database.example.com", "-n", t],
        vec!["get", "providerconfigs.aws.m.upbound.io", "-n", t],
        vec!["get", "secrets", "-n", sys],
        vec!["watch", "compositions.apiextensions.crossplane.io"],
        vec!["watch", "providerconfigs.aws.upbound.io"],
        vec!["get", "namespaces"],
    ];
    let no: Vec<Vec<&str>> = vec![
        vec!["get", "secrets", "-n", o],
        vec!["list", "secrets", "-n", o],
        vec!["list", "secrets", "--all-namespaces"],
        vec!["list", "secrets", "-n", sys],
        vec!["watch", "secrets", "-n", sys],
        vec!["watch", "instances.rds.aws.upbound.io", "--all-namespaces"],
        vec!["get", "instances.rds.aws.upbound.io", "-n", o],
        vec!["list", "postgresqlinstances.database.example.com", "-n", o],
        vec!["get", "providerconfigs.aws.m.upbound.io", "-n", o],
        vec!["list", "namespaces"],
    ];
    let mut problems = vec![];
    for args in &yes {
        if let Err(e) = can_i_as(&user, args, true) {
            problems.push(e);
        }
    }
    for args in &no {
        if let Err(e) = can_i_as(&user, args, false) {
            problems.push(e);
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A kubeconfig (in target/e2e-logs) that authenticates as ServiceAccount `sa` of paved-system
/// with a fresh token (TokenRequest), against the same API server as the admin one.
async fn kubeconfig_of_service_account(client: &kube::Client, sa: &str) -> std::path::PathBuf {
    use k8s_openapi::api::authentication::v1::TokenRequest;
    use k8s_openapi::api::core::v1::ServiceAccount;
    let request: TokenRequest = serde_json::from_value(json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"audiences": [], "expirationSeconds": 3600}
    }))
    .unwrap();
    let token = Api::<ServiceAccount>::namespaced(client.clone(), chart::NAMESPACE)
        .create_token_request(sa, &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .expect("token")
        .token;
    let e2e = e2e_env();
    let text = std::fs::read_to_string(&e2e.kubeconfig).unwrap();
    let mut kc: Value = serde_yaml_ng::from_str(&text).unwrap();
    for u in kc["users"].as_array_mut().expect("users") {
        u["user"] = json!({"token": token});
    }
    let dir = project_root().join("target/e2e-logs");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("kubeconfig-{sa}"));
    std::fs::write(&out, serde_yaml_ng::to_string(&kc).unwrap()).unwrap();
    out
}

/// A `watchNamespaces` install is enough to work: `paved run` as that identity (its Roles and the
/// Secrets-free ClusterRole, nothing else) syncs every cache, reads a ProviderConfig's credentials
/// in the release namespace, checks the namespaceSelector, and brings an Instance to Ready.
#[tokio::test]
async fn watch_namespaces_install_serves_its_namespace_with_only_its_roles() {
    let client = client().await;
    install_crds(&client).await;
    let team = test_namespace(&client, "ten-serve").await;
    let e2e = e2e_env();
    let mut cleanup = ClusterCleanup::new(&e2e);
    let release = install_scoped(&client, &team, &mut cleanup).await;
    let kubeconfig = kubeconfig_of_service_account(&client, &release).await;
    // The platform's credentials in the release namespace, a ProviderConfig for this namespace.
    let secret = format!("creds-{team}");
    Api::<Secret>::namespaced(client.clone(), chart::NAMESPACE)
        .patch(
            &secret,
            &PatchParams::apply("tenancy-test").force(),
            &Patch::Apply(&credentials_secret(&secret, chart::NAMESPACE, "testing")),
        )
        .await
        .unwrap();
    let pc = format!("pc-{team}");
    cleanup.provider_config(&pc);
    let mut spec = pc_spec(&secret, Some(chart::NAMESPACE), &e2e.moto_url);
    label_namespace(&client, &team, json!({"paved.io/tenant": team})).await;
    spec["namespaceSelector"] = json!({"matchLabels": {"paved.io/tenant": team}});
    apply(
        &client,
        &json!({"apiVersion": "aws.upbound.io/v1beta1", "kind": "ProviderConfig",
                "metadata": {"name": pc}, "spec": spec}),
    )
    .await
    .unwrap();
    let region = "ap-southeast-7"; // no other test uses it: this one empties it
    purge_region(&emulator_rds(region).await).await;

    let mut paved = Paved::start(
        &["--namespaces", team.as_str(), "--poll-interval", "2s"],
        Some(&kubeconfig),
        &format!("{team}-paved"),
    );
    paved.wait_ready(Duration::from_secs(90)).await;
    let instances: Api<Instance> = Api::namespaced(client.clone(), &team);
    let obj: Instance =
        serde_json::from_value(instance_json("scoped", region, &pc, json!({}))).unwrap();
    instances
        .create(&PostParams::default(), &obj)
        .await
        .unwrap();
    wait_for(
        &instances,
        "scoped",
        120,
        "Ready and Synced",
        instance_ready_and_synced,
    )
    .await;
    let log = paved.log_text();
    assert!(
        !log.contains("forbidden"),
        "paved hit RBAC it was not given:\n{}",
        paved.log_tail(40)
    );
    paved.stop();
}
