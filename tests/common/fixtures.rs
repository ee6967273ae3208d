//! The objects the suites start from (the seed's YAML, ProviderConfigs, credentials, Instances)
//! and reading conditions, typed and as JSON.

use paved::api::{Condition, ConditionStatus, Instance, PostgreSQLInstance};
use serde_json::{Value, json};

use super::cluster::yaml_docs;
use super::env::read_project_file;

/// The first document of `examples/seed/<file>`.
pub fn seed_file(file: &str) -> Value {
    yaml_docs(&read_project_file(&format!("examples/seed/{file}"))).remove(0)
}

/// The seed claim as written (`examples/seed/claim.yaml`), in namespace `ns`.
pub fn seed_claim_yaml(ns: &str) -> Value {
    let mut c = seed_file("claim.yaml");
    c["metadata"]["namespace"] = json!(ns);
    c
}

/// The seed Composition (examples/seed/composition.yaml) under another name, in `region`, using
/// the ProviderConfig `provider_config`. Everything else as the platform team wrote it.
pub fn seed_composition(name: &str, region: &str, provider_config: &str) -> Value {
    let mut c = seed_file("composition.yaml");
    c["metadata"] = json!({"name": name, "labels": {"paved-test": "chaos"}});
    for r in c["spec"]["resources"].as_array_mut().expect("resources") {
        if r["base"]["kind"] == "Instance" {
            r["base"]["spec"]["forProvider"]["region"] = json!(region);
            r["base"]["spec"]["providerConfigRef"] = json!({"name": provider_config});
            r["base"]["spec"]["forProvider"]["skipFinalSnapshot"] = json!(true);
        }
    }
    c
}

/// The seed claim under another name and namespace, using Composition `composition`.
pub fn seed_claim(name: &str, namespace: &str, composition: &str) -> Value {
    json!({
        "apiVersion": "database.example.com/v1alpha1",
        "kind": "PostgreSQLInstance",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "parameters": {"storageGB": 20, "version": "14", "environment": "staging"},
            "compositionRef": {"name": composition},
            "writeConnectionSecretToRef": {"name": format!("{name}-credentials")}
        }
    })
}

/// A ProviderConfig pointing paved at `url` (the emulator or the fault proxy), with the
/// credentials from paved's environment (InjectedIdentity).
pub fn provider_config(name: &str, url: &str) -> Value {
    json!({
        "apiVersion": "aws.upbound.io/v1beta1",
        "kind": "ProviderConfig",
        "metadata": {"name": name},
        "spec": {
            "credentials": {"source": "InjectedIdentity"},
            "endpoint": {"url": {"type": "Static", "static": url}}
        }
    })
}

/// A ProviderConfig pointing paved at `url` with the credentials of the Secret
/// `<namespace>/aws-creds` (see [`aws_credentials_secret`]).
pub fn provider_config_with_secret(name: &str, url: &str, namespace: &str) -> Value {
    json!({
        "apiVersion": "aws.upbound.io/v1beta1", "kind": "ProviderConfig",
        "metadata": {"name": name},
        "spec": {
            "credentials": {"source": "Secret", "secretRef": {"name": "aws-creds", "key": "credentials", "namespace": namespace}},
            "endpoint": {"url": {"type": "Static", "static": url}}
        }
    })
}

/// The Secret `aws-creds` with the emulator's dummy keys in the shared-credentials format.
pub fn aws_credentials_secret() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "aws-creds"},
        "stringData": {"credentials": "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n"}
    })
}

/// A small PostgreSQL Instance in `region` using ProviderConfig `pc`, its connection Secret
/// `<name>-conn`, with `extra` merged over it.
pub fn instance_json(name: &str, region: &str, pc: &str, extra: Value) -> Value {
    let mut v = json!({
        "apiVersion": "rds.aws.upbound.io/v1beta1", "kind": "Instance",
        "metadata": {"name": name},
        "spec": {
            "forProvider": {
                "region": region,
                "engine": "postgres",
                "engineVersion": "16.3",
                "instanceClass": "db.t3.micro",
                "allocatedStorage": 20,
                "dbName": "app",
                "applyImmediately": true,
                "skipFinalSnapshot": true
            },
            "providerConfigRef": {"name": pc},
            "writeConnectionSecretToRef": {"name": format!("{name}-conn")}
        }
    });
    merge(&mut v, extra);
    v
}

/// A small Instance in namespace `ns` and `region` with no ProviderConfig (paved's environment
/// credentials and endpoint), its connection Secret `<name>-conn`.
pub fn bare_instance(name: &str, ns: &str, region: &str) -> Instance {
    serde_json::from_value(json!({
        "apiVersion": "rds.aws.upbound.io/v1beta1",
        "kind": "Instance",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "forProvider": {"region": region, "instanceClass": "db.t3.micro", "engine": "postgres",
                            "engineVersion": "16", "allocatedStorage": 20, "skipFinalSnapshot": true},
            "writeConnectionSecretToRef": {"name": format!("{name}-conn")}
        }
    }))
    .unwrap()
}

/// JSON merge of `b` into `a` (objects merged key by key, anything else replaced).
pub fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

/// A Secret's data, decoded as UTF-8.
pub fn decoded(
    secret: &k8s_openapi::api::core::v1::Secret,
) -> std::collections::BTreeMap<String, String> {
    secret
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
        .collect()
}

/// The printer columns of every claim kind, PostgreSQLInstance's and an XRD's alike (PROBLEM is
/// status.problem: the claim's first problem in short).
pub const CLAIM_PRINTER_COLUMNS: [&str; 6] = [
    "SYNCED",
    "READY",
    "CONNECTION-SECRET",
    "PROBLEM",
    "COMPOSITION",
    "AGE",
];

// ---------------------------------------------------------------------------------------------
// conditions

/// The kinds whose status carries conditions.
pub trait Conditioned {
    fn conditions(&self) -> &[Condition];
}

macro_rules! conditioned {
    ($($k:ty),*) => {$(
        impl Conditioned for $k {
            fn conditions(&self) -> &[Condition] {
                self.status.as_ref().map_or(&[], |s| s.conditions.as_slice())
            }
        }
    )*};
}
conditioned!(
    Instance,
    PostgreSQLInstance,
    paved::api::SubnetGroup,
    paved::api::SecurityGroup,
    paved::api::SecurityGroupRule,
    paved::api::ParameterGroup
);

/// The condition of type `t`.
pub fn cond<'a>(o: &'a impl Conditioned, t: &str) -> Option<&'a Condition> {
    o.conditions().iter().find(|c| c.type_ == t)
}

/// Condition `t` has this status.
pub fn has_status(o: &impl Conditioned, t: &str, status: ConditionStatus) -> bool {
    cond(o, t).is_some_and(|c| c.status == status)
}

/// Condition `t` is True.
pub fn is_true_cond(o: &impl Conditioned, t: &str) -> bool {
    has_status(o, t, ConditionStatus::True)
}

/// Condition `t` has this status (`"True"`, `"False"`, `"Unknown"`) and reason.
pub fn is(o: &impl Conditioned, t: &str, status: &str, reason: &str) -> bool {
    cond(o, t).is_some_and(|c| format!("{:?}", c.status) == status && c.reason == reason)
}

/// The condition `type_` of an object's status, as JSON.
pub fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// The JSON condition `type_` is True.
pub fn is_true(obj: &Value, type_: &str) -> bool {
    condition(obj, type_).is_some_and(|c| c["status"] == "True")
}

/// Every condition of an object as `Type=Status Reason: message` lines.
pub fn conditions_text(obj: &Value) -> String {
    obj["status"]["conditions"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    format!(
                        "{}={} {}: {}",
                        c["type"].as_str().unwrap_or("?"),
                        c["status"].as_str().unwrap_or("?"),
                        c["reason"].as_str().unwrap_or(""),
                        c["message"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .unwrap_or_else(|| "(no conditions)".into())
}

/// Standard base64 (for Secret `data`).
pub fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
