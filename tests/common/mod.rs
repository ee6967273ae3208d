//! Shared harness for the integration tests: they run against the real local control plane
//! (`e2e/env.sh up`, which `make test` runs) — a real kube-apiserver with etcd and the RDS
//! emulator. Nothing here fakes a component.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
pub mod chart;
#[path = "../support/local_env.rs"]
pub mod local_env;
pub mod process;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Config, Resource};

/// The environment `e2e/env.sh up` wrote.
#[derive(Clone, Debug)]
pub struct E2eEnv {
    pub vars: BTreeMap<String, String>,
    pub kubeconfig: PathBuf,
    pub kubeconfig_least_privilege: PathBuf,
    pub kubectl: PathBuf,
    pub moto_url: String,
}

pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Read `target/e2e/env` (or `$PAVED_E2E_DIR/env`). Panics with instructions when the local
/// control plane is not up.
pub fn e2e_env() -> E2eEnv {
    let dir = std::env::var("PAVED_E2E_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| project_root().join("target/e2e"));
    let file = dir.join("env");
    let vars = local_env::read_env_vars(&dir);
    let get = |k: &str| {
        vars.get(k)
            .cloned()
            .unwrap_or_else(|| panic!("{k} missing from {}", file.display()))
    };
    E2eEnv {
        kubeconfig: PathBuf::from(get("KUBECONFIG")),
        kubeconfig_least_privilege: PathBuf::from(get("PAVED_KUBECONFIG_LEAST_PRIVILEGE")),
        kubectl: PathBuf::from(get("PAVED_KUBECTL")),
        moto_url: get("PAVED_MOTO_URL"),
        vars,
    }
}

/// A client for the given kubeconfig file.
pub async fn client_from(kubeconfig: &Path) -> Client {
    paved::init_crypto();
    let kc = Kubeconfig::read_from(kubeconfig).expect("reading kubeconfig");
    let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    config.read_timeout = Some(Duration::from_secs(295));
    Client::try_from(config).expect("client")
}

/// An admin client for the local API server.
pub async fn client() -> Client {
    client_from(&e2e_env().kubeconfig).await
}

/// Install (server-side apply) every CRD paved serves and wait until each is Established.
/// Idempotent; tests call it first.
pub async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let pp = PatchParams::apply("paved-tests").force();
    for crd in paved::api::all_crds() {
        let name = crd.metadata.name.clone().unwrap();
        api.patch(&name, &pp, &Patch::Apply(&crd))
            .await
            .unwrap_or_else(|e| panic!("apply CRD {name}: {e}"));
        tokio::time::timeout(
            Duration::from_secs(30),
            await_condition(api.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .unwrap_or_else(|_| panic!("CRD {name} not Established within 30s"))
        .unwrap();
    }
}

/// Create a fresh namespace `<prefix>-<random>` labelled `paved-test=true`.
pub async fn test_namespace(client: &Client, prefix: &str) -> String {
    let suffix: String = {
        use rand::Rng;
        let mut rng = rand::rng();
        (0..6)
            .map(|_| (b'a' + rng.random_range(0..26u8)) as char)
            .collect()
    };
    let name = format!("{prefix}-{suffix}");
    ensure_namespace(client, &name).await;
    name
}

/// Create the namespace when it does not exist.
pub async fn ensure_namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {"paved-test": "true"}}
    }))
    .unwrap();
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("create namespace {name}: {e}"),
    }
}

/// Wait until `cond` holds for the named object, or fail after `secs` seconds with the last
/// state of the object in the message. Event-driven (a watch), never a sleep loop.
pub async fn wait_for<K>(
    api: &Api<K>,
    name: &str,
    secs: u64,
    what: &str,
    cond: impl Fn(&K) -> bool,
) -> K
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    let res = tokio::time::timeout(
        Duration::from_secs(secs),
        await_condition(api.clone(), name, move |o: Option<&K>| o.is_some_and(&cond)),
    )
    .await;
    match res {
        Ok(Ok(Some(o))) => o,
        Ok(Ok(None)) => panic!("{name}: gone while waiting for {what}"),
        Ok(Err(e)) => panic!("{name}: watch failed while waiting for {what}: {e}"),
        Err(_) => {
            let last = api.get_opt(name).await.ok().flatten();
            panic!("{name}: not {what} within {secs}s; last seen: {last:#?}")
        }
    }
}

/// Wait until the named object is gone.
pub async fn wait_deleted<K>(api: &Api<K>, name: &str, secs: u64)
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    let res = tokio::time::timeout(
        Duration::from_secs(secs),
        await_condition(api.clone(), name, |o: Option<&K>| o.is_none()),
    )
    .await;
    if res.is_err() {
        let last = api.get_opt(name).await.ok().flatten();
        panic!("{name}: not deleted within {secs}s; last seen: {last:#?}");
    }
}

/// Parse a multi-document YAML string into JSON values (empty documents skipped).
pub fn yaml_docs(text: &str) -> Vec<serde_json::Value> {
    use serde::Deserialize;
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| serde_json::Value::deserialize(d).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

/// Read a file relative to the project root.
pub fn read_project_file(rel: &str) -> String {
    let p = project_root().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// Resolve the API resource for an object's apiVersion/kind through discovery.
pub async fn resolve(client: &Client, obj: &serde_json::Value) -> (ApiResource, ApiCapabilities) {
    let api_version = obj["apiVersion"].as_str().expect("apiVersion");
    let kind = obj["kind"].as_str().expect("kind");
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if ar.api_version == api_version && ar.kind == kind {
                return (ar, caps);
            }
        }
        for version in group.versions() {
            for (ar, caps) in group.versioned_resources(version) {
                if ar.api_version == api_version && ar.kind == kind {
                    return (ar, caps);
                }
            }
        }
    }
    panic!("the API server does not serve {api_version} {kind}");
}

/// A dynamic Api for an object, namespaced per its scope (`namespace` overrides the object's).
pub async fn dynamic_api(
    client: &Client,
    obj: &serde_json::Value,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    let (ar, caps) = resolve(client, obj).await;
    match caps.scope {
        Scope::Cluster => Api::all_with(client.clone(), &ar),
        Scope::Namespaced => {
            let ns = namespace
                .map(str::to_string)
                .or_else(|| obj["metadata"]["namespace"].as_str().map(str::to_string))
                .unwrap_or_else(|| "default".to_string());
            Api::namespaced_with(client.clone(), &ns, &ar)
        }
    }
}

/// Server-side apply a JSON object (field manager `paved-tests`), returning the API server's
/// answer. `dry_run` asks the server to validate and default without storing.
pub async fn apply_json(
    client: &Client,
    obj: &serde_json::Value,
    namespace: Option<&str>,
    dry_run: bool,
) -> Result<DynamicObject, kube::Error> {
    let api = dynamic_api(client, obj, namespace).await;
    let mut obj = obj.clone();
    if let Some(ns) = namespace {
        obj["metadata"]["namespace"] = serde_json::Value::String(ns.to_string());
    }
    let name = obj["metadata"]["name"]
        .as_str()
        .expect("metadata.name")
        .to_string();
    let mut pp = PatchParams::apply("paved-tests").force();
    pp.dry_run = dry_run;
    api.patch(&name, &pp, &Patch::Apply(&obj)).await
}

/// Run the kubectl of the local control plane with its admin kubeconfig.
pub fn kubectl(args: &[&str]) -> std::process::Output {
    let env = e2e_env();
    std::process::Command::new(&env.kubectl)
        .args(args)
        .env("KUBECONFIG", &env.kubeconfig)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", env.kubectl.display()))
}

/// An aws-sdk-rds client talking straight to the emulator in `region` (what the tests use to
/// look behind paved's back), built with paved's own client constructor.
pub async fn emulator_rds(region: &str) -> aws_sdk_rds::Client {
    use paved::rds::client::{StaticCredentials, http_client, sdk_client};
    paved::init_crypto();
    let creds = StaticCredentials {
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
        session_token: None,
    };
    sdk_client(
        http_client(),
        region,
        Some(&e2e_env().moto_url),
        Some(creds),
    )
    .await
}
