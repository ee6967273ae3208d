//! The webhook's own certificate, when no cert-manager provides one
//! (`paved run --conversion-webhook-secret`): paved keeps a CA and a serving certificate in one
//! Secret (creating it the first time; every replica and every restart reuses it), serves with
//! it, and writes the CA and where to call into the Instance CRD's `spec.conversion`.
//!
//! [`generate`] and [`from_secret`] are pure; [`ensure`] and [`point_crd`] are the Kubernetes
//! edge.

use std::collections::BTreeMap;

use anyhow::Context;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::api::CONVERSION_PATH;

/// The keys of the Secret, as cert-manager names them.
pub const CERT_KEY: &str = "tls.crt";
pub const KEY_KEY: &str = "tls.key";
pub const CA_KEY: &str = "ca.crt";

/// How long a generated certificate is valid. Delete the Secret to make a new one (paved
/// writes it again at its next start).
pub const VALID_YEARS: i32 = 10;

/// A serving certificate, its key and the CA that signed it (PEM).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServingCert {
    pub cert: String,
    pub key: String,
    pub ca: String,
}

/// Where the API server calls the webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A Service (in a cluster): `namespace`, `name`, `port`.
    Service {
        namespace: String,
        name: String,
        port: i32,
    },
    /// A URL (a local control plane), `https://host:port/convert`.
    Url(String),
}

impl Endpoint {
    /// The names the serving certificate must carry for the API server to trust it.
    pub fn dns_names(&self) -> Vec<String> {
        match self {
            Endpoint::Service {
                namespace, name, ..
            } => vec![
                format!("{name}.{namespace}.svc"),
                format!("{name}.{namespace}.svc.cluster.local"),
            ],
            Endpoint::Url(url) => {
                let rest = url.split("://").nth(1).unwrap_or(url);
                let authority = rest.split('/').next().unwrap_or(rest);
                let host = match authority.strip_prefix('[') {
                    Some(v6) => v6.split(']').next().unwrap_or(v6),
                    None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
                };
                vec![host.to_string()]
            }
        }
    }

    /// `--conversion-webhook-service NAMESPACE/NAME[:PORT]` (port 443 by default).
    pub fn parse_service(s: &str) -> Result<Endpoint, String> {
        let (ns, rest) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: expected NAMESPACE/NAME[:PORT]"))?;
        let (name, port) = match rest.split_once(':') {
            Some((n, p)) => (
                n,
                p.parse::<i32>()
                    .map_err(|e| format!("{s:?}: port {p:?}: {e}"))?,
            ),
            None => (rest, 443),
        };
        if ns.is_empty() || name.is_empty() {
            return Err(format!("{s:?}: expected NAMESPACE/NAME[:PORT]"));
        }
        Ok(Endpoint::Service {
            namespace: ns.into(),
            name: name.into(),
            port,
        })
    }
}

/// A new CA and a serving certificate it signs for `dns_names` (IP addresses become IP SANs).
pub fn generate(dns_names: &[String]) -> anyhow::Result<ServingCert> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    // From today (midnight UTC) for VALID_YEARS years (day 28 at most: no 29 February then).
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let (y, m, d) = (
        i32::from(today.year()),
        u8::try_from(today.month()).unwrap_or(1),
        u8::try_from(today.day()).unwrap_or(1),
    );
    let now = rcgen::date_time_ymd(y, m, d);
    let until = rcgen::date_time_ymd(y + VALID_YEARS, m, d.min(28));
    let mut ca = CertificateParams::new(Vec::<String>::new()).context("CA parameters")?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "paved conversion webhook CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = now;
    ca.not_after = until;
    let ca_key = KeyPair::generate().context("generating the CA key")?;
    let issuer = CertifiedIssuer::self_signed(ca, ca_key).context("signing the CA")?;

    let mut leaf = CertificateParams::new(dns_names.to_vec()).context("certificate names")?;
    leaf.distinguished_name.push(
        DnType::CommonName,
        dns_names.first().cloned().unwrap_or_default(),
    );
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.not_before = now;
    leaf.not_after = until;
    let leaf_key = KeyPair::generate().context("generating the serving key")?;
    let cert = leaf
        .signed_by(&leaf_key, &issuer)
        .context("signing the serving certificate")?;
    Ok(ServingCert {
        cert: cert.pem(),
        key: leaf_key.serialize_pem(),
        ca: issuer.pem(),
    })
}

/// The certificate a Secret holds, if it holds all three keys.
pub fn from_secret(secret: &Secret) -> Option<ServingCert> {
    let data = secret.data.as_ref()?;
    let text = |k: &str| {
        data.get(k)
            .and_then(|v| String::from_utf8(v.0.clone()).ok())
            .filter(|s| !s.trim().is_empty())
    };
    Some(ServingCert {
        cert: text(CERT_KEY)?,
        key: text(KEY_KEY)?,
        ca: text(CA_KEY)?,
    })
}

/// The Secret `namespace/name` holding `cert`.
pub fn to_secret(namespace: &str, name: &str, cert: &ServingCert) -> Secret {
    let data: BTreeMap<String, ByteString> = [
        (CERT_KEY, &cert.cert),
        (KEY_KEY, &cert.key),
        (CA_KEY, &cert.ca),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
    .collect();
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                "paved".to_string(),
            )])),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(data),
        ..Default::default()
    }
}

/// The certificate of the Secret `namespace/name`, made and stored first if the Secret does not
/// exist (when two replicas race, the one whose create loses reads the winner's).
pub async fn ensure(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    endpoint: &Endpoint,
) -> anyhow::Result<ServingCert> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let read = |what: &'static str| {
        let api = api.clone();
        async move {
            api.get_opt(name)
                .await
                .with_context(|| format!("{what} the webhook's Secret {namespace}/{name}"))
        }
    };
    if let Some(s) = read("reading").await? {
        return from_secret(&s).with_context(|| {
            format!(
                "the Secret {namespace}/{name} lacks {CERT_KEY}, {KEY_KEY} or {CA_KEY}; delete it and paved makes a new one"
            )
        });
    }
    let cert = generate(&endpoint.dns_names())?;
    match api
        .create(&PostParams::default(), &to_secret(namespace, name, &cert))
        .await
    {
        Ok(_) => {
            tracing::info!(secret = %format!("{namespace}/{name}"), "made the conversion webhook's certificate");
            Ok(cert)
        }
        Err(kube::Error::Api(e)) if e.code == 409 => read("re-reading")
            .await?
            .as_ref()
            .and_then(from_secret)
            .with_context(|| {
                format!("the Secret {namespace}/{name} appeared without a certificate")
            }),
        Err(e) => {
            Err(e).with_context(|| format!("creating the webhook's Secret {namespace}/{name}"))
        }
    }
}

/// The `spec.conversion` that makes the API server call `endpoint`, trusting `ca` (pure).
pub fn conversion_patch(endpoint: &Endpoint, ca: &str) -> serde_json::Value {
    let mut client_config = match endpoint {
        Endpoint::Service {
            namespace,
            name,
            port,
        } => {
            serde_json::json!({"service": {"namespace": namespace, "name": name, "path": CONVERSION_PATH, "port": port}})
        }
        Endpoint::Url(url) => serde_json::json!({"url": url}),
    };
    client_config["caBundle"] = serde_json::Value::String(base64_encode(ca.as_bytes()));
    serde_json::json!({"spec": {"conversion": {
        "strategy": "Webhook",
        "webhook": {"clientConfig": client_config, "conversionReviewVersions": ["v1"]}
    }}})
}

fn base64_encode(bytes: &[u8]) -> String {
    // ByteString serializes as base64, as the API expects.
    serde_json::to_value(ByteString(bytes.to_vec()))
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Point the CRD `crd` at the webhook (a merge patch of `spec.conversion`; the same patch from
/// every replica changes nothing).
pub async fn point_crd(
    client: &kube::Client,
    crd: &str,
    endpoint: &Endpoint,
    ca: &str,
) -> anyhow::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    api.patch(
        crd,
        &PatchParams::default(),
        &Patch::Merge(&conversion_patch(endpoint, ca)),
    )
    .await
    .with_context(|| format!("pointing the conversion of CRD {crd} at the webhook"))?;
    tracing::info!(crd, "the CRD's conversion calls this webhook");
    Ok(())
}

/// Whether the CRD's conversion already calls `endpoint` trusting `ca` (pure).
pub fn is_pointed(crd: &CustomResourceDefinition, endpoint: &Endpoint, ca: &str) -> bool {
    let Ok(live) = serde_json::to_value(&crd.spec.conversion) else {
        return false;
    };
    let want = conversion_patch(endpoint, ca);
    let want = &want["spec"]["conversion"];
    live["strategy"] == want["strategy"]
        && live["webhook"]["clientConfig"] == want["webhook"]["clientConfig"]
}

/// Keep the CRD pointed at the webhook until `shutdown`: a `kubectl apply` of the CRD as shipped
/// (`strategy: None`) is undone within `every`. One GET per period; a patch only when it differs.
pub async fn keep_pointed(
    client: kube::Client,
    crd: String,
    endpoint: Endpoint,
    ca: String,
    every: std::time::Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return Ok(()),
            () = tokio::time::sleep(every) => {}
        }
        match api.get_opt(&crd).await {
            Ok(Some(live)) if !is_pointed(&live, &endpoint, &ca) => {
                tracing::warn!(
                    crd,
                    "the CRD's conversion no longer calls this webhook; pointing it back"
                );
                if let Err(e) = point_crd(&client, &crd, &endpoint, &ca).await {
                    tracing::warn!(error = %format!("{e:#}"), "pointing the CRD at the webhook failed; retrying later");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(crd, error = %e, "reading the CRD failed; retrying later"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_name_what_the_certificate_must_carry() {
        let svc = Endpoint::parse_service("paved-system/paved-webhook").unwrap();
        assert_eq!(
            svc.dns_names(),
            [
                "paved-webhook.paved-system.svc",
                "paved-webhook.paved-system.svc.cluster.local"
            ]
        );
        assert_eq!(
            Endpoint::parse_service("ns/svc:8443").unwrap(),
            Endpoint::Service {
                namespace: "ns".into(),
                name: "svc".into(),
                port: 8443
            }
        );
        assert!(Endpoint::parse_service("svc").is_err());
        assert!(Endpoint::parse_service("ns/svc:http").is_err());
        assert_eq!(
            Endpoint::Url("https://127.0.0.1:9443/convert".into()).dns_names(),
            ["127.0.0.1"]
        );
        assert_eq!(
            Endpoint::Url("https://[::1]:9443/convert".into()).dns_names(),
            ["::1"]
        );
    }

    #[test]
    fn a_generated_certificate_round_trips_through_its_secret_and_serves_tls() {
        let cert =
            generate(&["paved-webhook.paved-system.svc".into(), "127.0.0.1".into()]).unwrap();
        assert!(cert.cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(cert.ca.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_ne!(cert.cert, cert.ca);
        let secret = to_secret("paved-system", "paved-webhook-tls", &cert);
        assert_eq!(from_secret(&secret), Some(cert.clone()));
        let mut partial = secret.clone();
        partial.data.as_mut().unwrap().remove(CA_KEY);
        assert_eq!(from_secret(&partial), None);
        // rustls accepts the pair, and the chain verifies against the CA for the names.
        let tls = super::super::server::tls_config_pem(&cert.cert, &cert.key);
        assert!(tls.is_ok(), "{:?}", tls.err());
        use rustls::client::danger::ServerCertVerifier;
        use rustls::pki_types::pem::PemObject;
        let ca = rustls::pki_types::CertificateDer::from_pem_slice(cert.ca.as_bytes()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots.into(), provider)
                .build()
                .unwrap();
        let leaf = rustls::pki_types::CertificateDer::from_pem_slice(cert.cert.as_bytes()).unwrap();
        for name in ["paved-webhook.paved-system.svc", "127.0.0.1"] {
            let server = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
            let now = rustls::pki_types::UnixTime::now();
            verifier
                .verify_server_cert(&leaf, &[], &server, &[], now)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn the_patch_points_at_a_service_or_a_url_with_the_ca() {
        let svc = Endpoint::parse_service("paved-system/paved-webhook").unwrap();
        let p = conversion_patch(&svc, "CA");
        let cc = &p["spec"]["conversion"]["webhook"]["clientConfig"];
        assert_eq!(p["spec"]["conversion"]["strategy"], "Webhook");
        assert_eq!(cc["service"]["port"], 443);
        assert_eq!(cc["service"]["path"], CONVERSION_PATH);
        assert_eq!(cc["caBundle"], "Q0E=");
        // A CRD as the patch leaves it is pointed; as shipped (strategy None) it is not.
        let mut crd = CustomResourceDefinition::default();
        assert!(!is_pointed(&crd, &svc, "CA"));
        crd.spec.conversion =
            Some(serde_json::from_value(p["spec"]["conversion"].clone()).unwrap());
        assert!(is_pointed(&crd, &svc, "CA"));
        assert!(!is_pointed(&crd, &svc, "another CA"));
        let u = conversion_patch(&Endpoint::Url("https://127.0.0.1:1/convert".into()), "CA");
        assert_eq!(
            u["spec"]["conversion"]["webhook"]["clientConfig"]["url"],
            "https://127.0.0.1:1/convert"
        );
    }
}
