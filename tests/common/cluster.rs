//! The API server side of the harness: clients (admin and least-privilege), CRDs, a namespace
//! per test, applying objects, kubectl, and waiting on conditions through watches.

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::GroupVersionKind;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, Config, Resource};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::env::{e2e_env, random_suffix};

/// The field manager of everything the harness applies.
pub const FIELD_MANAGER: &str = "paved-tests";

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

/// An admin client for the shared local API server.
pub async fn client() -> Client {
    client_from(&e2e_env().kubeconfig).await
}

/// A client authenticated as the chart's ServiceAccount (only the chart's RBAC; see
/// `chart::apply_chart_rbac`).
pub async fn least_privilege_client() -> Client {
    client_from(&e2e_env().kubeconfig_least_privilege).await
}

/// Admin client, CRDs installed, and a fresh namespace `<prefix>-<random>`: what most tests
/// start with.
pub async fn setup(prefix: &str) -> (Client, String) {
    let client = client().await;
    install_crds(&client).await;
    let ns = test_namespace(&client, prefix).await;
    (client, ns)
}

/// Install (server-side apply) every CRD paved serves and wait until each is Established
/// (30 s each). Idempotent; tests call it first. The Instance conversion is `strategy: None` on
/// this shared control plane (no webhook runs for every test process): identical to the
/// webhook's for every Instance the tests write, none of which uses the singleton blocks whose
/// shape differs between versions. tests/integration/versions.rs runs the webhook on its own copy.
pub async fn install_crds(client: &Client) {
    install_crds_within(client, Duration::from_secs(30)).await;
}

/// [`install_crds`] with another bound (a control plane that has just started is slower).
pub async fn install_crds_within(client: &Client, timeout: Duration) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    for crd in paved::api::all_crds_with(&paved::api::Conversion::None) {
        let name = crd.metadata.name.clone().unwrap();
        api.patch(&name, &pp, &Patch::Apply(&crd))
            .await
            .unwrap_or_else(|e| panic!("apply CRD {name}: {e}"));
        tokio::time::timeout(
            timeout,
            await_condition(api.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .unwrap_or_else(|_| panic!("CRD {name} not Established within {timeout:?}"))
        .unwrap();
    }
}

/// Create a fresh namespace `<prefix>-<random>` labelled `paved-test=true`.
pub async fn test_namespace(client: &Client, prefix: &str) -> String {
    let name = format!("{prefix}-{}", random_suffix(6));
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

// ---------------------------------------------------------------------------------------------
// waiting: on watches, never on sleeps

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
    K: Resource + Clone + Debug + DeserializeOwned + Send + 'static,
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
    K: Resource + Clone + Debug + DeserializeOwned + Send + 'static,
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

/// Delete the named object (failing if the API server refuses) and wait until it is gone.
pub async fn delete_until_gone<K>(api: &Api<K>, name: &str, secs: u64)
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + 'static,
{
    api.delete(name, &DeleteParams::default()).await.unwrap();
    wait_deleted(api, name, secs).await;
}

/// `res` is the API server's refusal of an invalid object, `what`: 422 Invalid, its message
/// naming every one of `needles`.
pub fn assert_invalid(what: &str, res: Result<(), kube::Error>, needles: &[&str]) {
    let err = res.expect_err(&format!("{what}: accepted, expected a rejection"));
    let kube::Error::Api(status) = err else {
        panic!("{what}: unexpected error {err:?}")
    };
    assert_eq!(status.code, 422, "{what}: {status:?}");
    for needle in needles {
        assert!(
            status.message.contains(needle),
            "{what}: message {:?} does not mention {needle:?}",
            status.message
        );
    }
}

/// Wait until `cond` holds for the whole collection `api` lists (a reflector over a watch:
/// checked on every change), or fail after `secs` seconds with `describe` of the last state.
pub async fn wait_all<K>(
    api: &Api<K>,
    secs: u64,
    what: &str,
    cond: impl Fn(&[std::sync::Arc<K>]) -> bool,
    describe: impl Fn(&[std::sync::Arc<K>]) -> String,
) where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(api.clone(), watcher::Config::default()))
        .default_backoff()
        .touched_objects();
    futures::pin_mut!(stream);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    // The store fills as the stream is driven: check after every event.
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(_)) => {
                if cond(&reader.state()) {
                    return;
                }
            }
            Ok(None) => panic!("the watch for {what} ended"),
            Err(_) => panic!("not {what} within {secs}s: {}", describe(&reader.state())),
        }
    }
}

/// Wait until `f` holds, checking every 50 ms: only for in-process counters and records (a
/// controller's metrics, the fault proxy's calls), which have no watch.
pub async fn until(secs: u64, what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "not {what} within {secs}s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// objects as JSON

/// Parse a multi-document YAML string into JSON values (empty documents skipped).
pub fn yaml_docs(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

/// Resolve the API resource for an object's apiVersion/kind through discovery of its group
/// version alone (a full discovery fails while another test deletes some other group), retried
/// briefly while the kind is not served yet.
pub async fn resolve(client: &Client, obj: &Value) -> (ApiResource, ApiCapabilities) {
    let api_version = obj["apiVersion"].as_str().expect("apiVersion");
    let kind = obj["kind"].as_str().expect("kind");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match kube::discovery::pinned_kind(client, &gvk).await {
            Ok(found) => return found,
            Err(e) if Instant::now() >= deadline => {
                panic!("the API server does not serve {api_version} {kind}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// A dynamic Api for any object, resolved through discovery and namespaced per its scope
/// (`namespace` overrides the object's).
pub async fn dynamic_api(
    client: &Client,
    obj: &Value,
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

/// Server-side apply any JSON object (resolved through discovery), returning the API server's
/// answer. `dry_run` asks the server to validate and default without storing.
pub async fn apply_json(
    client: &Client,
    obj: &Value,
    namespace: Option<&str>,
    dry_run: bool,
) -> Result<DynamicObject, kube::Error> {
    let api = dynamic_api(client, obj, namespace).await;
    let mut obj = obj.clone();
    if let Some(ns) = namespace {
        obj["metadata"]["namespace"] = Value::String(ns.to_string());
    }
    let name = obj["metadata"]["name"]
        .as_str()
        .expect("metadata.name")
        .to_string();
    let mut pp = PatchParams::apply(FIELD_MANAGER).force();
    pp.dry_run = dry_run;
    api.patch(&name, &pp, &Patch::Apply(&obj)).await
}

/// The dynamic Api for the kinds paved reads and writes (claims, Compositions, Instances,
/// ProviderConfigs, core kinds), without a discovery round trip: what the suites that apply
/// hundreds of objects use. Namespaced per `metadata.namespace`.
pub fn known_api(client: &Client, obj: &Value) -> Api<DynamicObject> {
    let api_version = obj["apiVersion"].as_str().expect("apiVersion");
    let kind = obj["kind"].as_str().expect("kind");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let plural = match kind {
        "PostgreSQLInstance" => "postgresqlinstances".to_string(),
        "ProviderConfig" => "providerconfigs".to_string(),
        other => format!("{}s", other.to_ascii_lowercase()),
    };
    let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
    let ar = ApiResource::from_gvk_with_plural(&gvk, &plural);
    match obj["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

/// Server-side apply of an object of a kind [`known_api`] knows.
pub async fn apply(client: &Client, obj: &Value) -> Result<(), kube::Error> {
    let name = obj["metadata"]["name"].as_str().expect("metadata.name");
    known_api(client, obj)
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(obj),
        )
        .await
        .map(|_| ())
}

/// Create (POST) an object of a kind [`known_api`] knows, failing on conflicts.
pub async fn create_json(client: &Client, obj: &Value) -> Result<(), kube::Error> {
    let o: DynamicObject = serde_json::from_value(obj.clone()).expect("object");
    known_api(client, obj)
        .create(&PostParams::default(), &o)
        .await
        .map(|_| ())
}

// ---------------------------------------------------------------------------------------------
// kubectl

/// Run the kubectl of the shared control plane with its admin kubeconfig.
pub fn kubectl(args: &[&str]) -> std::process::Output {
    let env = e2e_env();
    std::process::Command::new(&env.kubectl)
        .args(args)
        .env("KUBECONFIG", &env.kubeconfig)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", env.kubectl.display()))
}

/// Deletes cluster-scoped objects (with kubectl, so that it also works while a test panics)
/// when dropped: `(resource, name)` pairs such as
/// `("compositions.apiextensions.crossplane.io", name)`.
pub struct ClusterCleanup {
    pub kubectl: PathBuf,
    pub kubeconfig: PathBuf,
    pub objects: Vec<(String, String)>,
}

impl ClusterCleanup {
    pub fn new(env: &super::E2eEnv) -> ClusterCleanup {
        ClusterCleanup {
            kubectl: env.kubectl.clone(),
            kubeconfig: env.kubeconfig.clone(),
            objects: Vec::new(),
        }
    }

    pub fn composition(&mut self, name: &str) {
        self.objects.push((
            "compositions.apiextensions.crossplane.io".into(),
            name.into(),
        ));
    }

    pub fn provider_config(&mut self, name: &str) {
        self.objects
            .push(("providerconfigs.aws.upbound.io".into(), name.into()));
    }
}

impl Drop for ClusterCleanup {
    fn drop(&mut self) {
        for (kind, name) in &self.objects {
            let _ = std::process::Command::new(&self.kubectl)
                .args(["delete", kind, name, "--ignore-not-found", "--wait=false"])
                .env("KUBECONFIG", &self.kubeconfig)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}
