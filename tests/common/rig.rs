//! The chaos suite's world: paved as a real process on its own namespace, behind the fault
//! proxy, with the seed Composition in the test's region.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;
use paved::api::Instance;

use super::cluster::{ClusterCleanup, apply, ensure_namespace, install_crds_within};
use super::controllers::SeedBehindProxy;
use super::env::{E2eEnv, project_root, random_suffix};
use super::fixtures::seed_claim;
use super::process::{Paved, PavedOpts};
use super::proxy::FaultProxy;

/// AWS requests per second paved sends at most by default (`--aws-requests-per-second`).
pub const PAVED_DEFAULT_AWS_RPS: f64 = 8.0;

/// One test's world: a namespace, a proxy in front of the emulator, a ProviderConfig pointing at
/// the proxy, the seed Composition in the test's region, and paved running on the namespace.
pub struct Rig {
    pub env: E2eEnv,
    pub client: Client,
    pub ns: String,
    pub region: String,
    pub composition: String,
    /// The ProviderConfig that points at the proxy.
    pub provider_config: String,
    pub proxy: FaultProxy,
    pub paved: Paved,
    _cleanup: ClusterCleanup,
}

impl Rig {
    pub async fn new(env: E2eEnv, test: &str, region: &str) -> Rig {
        let client = env.client().await;
        install_crds_within(&client, Duration::from_secs(60)).await;
        let suffix = random_suffix(6);
        let ns = format!("chaos-{test}-{suffix}");
        ensure_namespace(&client, &ns).await;
        let SeedBehindProxy {
            proxy,
            composition,
            provider_config,
            cleanup,
        } = SeedBehindProxy::new(&client, &env, &format!("chaos-{test}-{suffix}"), region).await;
        let paved = PavedOpts {
            bin: PathBuf::from(env!("CARGO_BIN_EXE_paved")),
            kubeconfig: env.kubeconfig.clone(),
            namespaces: vec![ns.clone()],
            aws_endpoint: proxy.url(),
            region: region.to_string(),
            poll_interval: "10s".into(),
            aws_rps: PAVED_DEFAULT_AWS_RPS,
            log: project_root().join(format!("target/e2e-logs/{ns}.log")),
            log_level: "info,paved=debug".into(),
        }
        .start();
        let mut rig = Rig {
            env,
            client,
            ns,
            region: region.to_string(),
            composition,
            provider_config,
            proxy,
            paved,
            _cleanup: cleanup,
        };
        rig.paved.wait_ready(Duration::from_secs(60)).await;
        rig
    }

    pub fn claim_names(&self, prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}-{i:03}")).collect()
    }

    /// Apply the seed claims `names` (16 at a time).
    pub async fn apply_claims(&self, names: &[String]) {
        self.apply_claims_with(&self.client, names, 16).await;
    }

    /// Apply the seed claims `names` through `client`, `concurrency` at a time.
    pub async fn apply_claims_with(&self, client: &Client, names: &[String], concurrency: usize) {
        let results: Vec<_> = futures::stream::iter(names.iter().map(|n| {
            let obj = seed_claim(n, &self.ns, &self.composition);
            let client = client.clone();
            async move { (n.clone(), apply(&client, &obj).await) }
        }))
        .buffer_unordered(concurrency)
        .collect()
        .await;
        for (n, r) in results {
            r.unwrap_or_else(|e| panic!("applying claim {n}: {e}"));
        }
    }

    /// claim name → (RDS identifier, the password in the claim's connection Secret).
    pub async fn claim_credentials(
        &self,
        names: &[String],
    ) -> BTreeMap<String, (String, Option<String>)> {
        let instances: Api<Instance> = Api::namespaced(self.client.clone(), &self.ns);
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.ns);
        let all = instances
            .list(&Default::default())
            .await
            .expect("list Instances");
        let mut out = BTreeMap::new();
        for name in names {
            let inst = all
                .items
                .iter()
                .find(|i| {
                    i.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get("crossplane.io/claim-name"))
                        == Some(name)
                })
                .unwrap_or_else(|| panic!("no Instance labelled crossplane.io/claim-name={name}"));
            let identifier = inst
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("crossplane.io/external-name"))
                .cloned()
                .unwrap_or_else(|| panic!("Instance of {name} has no crossplane.io/external-name"));
            let secret = secrets
                .get_opt(&format!("{name}-credentials"))
                .await
                .expect("get Secret");
            let password = secret
                .and_then(|s| s.data)
                .and_then(|d| d.get("password").cloned())
                .map(|b| String::from_utf8(b.0).expect("password is UTF-8"));
            out.insert(name.clone(), (identifier, password));
        }
        out
    }

    pub fn print_aws(&self, label: &str) {
        println!(
            "[{label}] AWS calls through the proxy: {} {:?}",
            self.proxy.total(),
            self.proxy.summary()
        );
    }
}
