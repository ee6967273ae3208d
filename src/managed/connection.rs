//! The connection Secret of an Instance: what it holds (pure, [`connection_data`]) and writing
//! it when that differs.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};

use crate::api::instance::Instance;
use crate::api::twin::M;

use super::config::FIELD_MANAGER;
use super::error::{Error, kube_err};
use super::lifecycle::Flow;
use super::model::DbInstance;
use super::naming;
use super::outcome::{Blocked, Outcome};

/// The key under which the Upbound provider also publishes the master password.
pub const ATTRIBUTE_PASSWORD: &str = "attribute.password";

/// The connection details of an available instance: username, password (when known, also as
/// `attribute.password`),
/// address/host, port, endpoint, dbname (when set) and uri. `None` while RDS has no endpoint.
pub fn connection_data(
    inst: &DbInstance,
    spec_username: Option<&str>,
    spec_db_name: Option<&str>,
    password: Option<&str>,
) -> Option<BTreeMap<String, String>> {
    let (Some(address), Some(port)) = (&inst.address, inst.port) else {
        return None;
    };
    let username = inst
        .username
        .clone()
        .or_else(|| spec_username.map(str::to_string))
        .unwrap_or_else(|| "postgres".into());
    let db_name = spec_db_name
        .map(str::to_string)
        .or_else(|| inst.db_name.clone());
    let mut data: BTreeMap<String, String> = BTreeMap::new();
    data.insert("username".into(), username.clone());
    if let Some(p) = password {
        data.insert("password".into(), p.to_string());
        // The Upbound provider publishes the password under this key too; Compositions read it
        // (`fromConnectionSecretKey: attribute.password`).
        data.insert(ATTRIBUTE_PASSWORD.into(), p.to_string());
    }
    data.insert("address".into(), address.clone());
    data.insert("host".into(), address.clone());
    data.insert("port".into(), port.to_string());
    data.insert("endpoint".into(), format!("{address}:{port}"));
    if let Some(d) = &db_name {
        data.insert("dbname".into(), d.clone());
    }
    let uri = naming::connection_uri(&username, password, address, port, db_name.as_deref());
    data.insert("uri".into(), uri);
    Some(data)
}

/// Whether a Secret paved wrote was the connection Secret of an earlier Instance of this name
/// (every owner is an Instance of this name with another UID: deleted, since names are unique,
/// and the garbage collector has not removed the Secret yet). This Instance takes it over.
fn left_by_predecessor(s: &k8s_openapi::api::core::v1::Secret, name: &str) -> bool {
    let owners = s.owner_references();
    crate::kube::meta::is_managed(&s.metadata)
        && !owners.is_empty()
        && owners
            .iter()
            .all(|o| o.kind == "Instance" && o.name == name)
}

fn refused(message: String) -> Result<Outcome<()>, Error> {
    Ok(Outcome::Blocked(Blocked::new(
        "ConnectionSecretError",
        message,
    )))
}

/// The connection Secret steps, for the Instance and for its namespaced twin (`M<Instance>` derefs to it).
macro_rules! connection_steps {
    ($t:ty) => {
impl Flow<'_, $t> {
    /// Write the connection Secret when its content differs. Blocked (`ConnectionSecretError`):
    /// paved refuses to write it (another namespace, or a Secret that is not this Instance's).
    pub(crate) async fn connection_secret(
        &mut self,
        inst: &DbInstance,
    ) -> Result<Outcome<()>, Error> {
        let Some(r) = self.obj.spec.write_connection_secret_to_ref.clone() else {
            return Ok(Outcome::Ok(()));
        };
        let ns = self.obj.namespace().unwrap_or_default();
        if r.namespace.as_deref().is_some_and(|n| n != ns) {
            return refused(format!(
                "spec.writeConnectionSecretToRef.namespace must be {ns}: paved never writes Secrets into other namespaces"
            ));
        }
        if inst.address.is_none() || inst.port.is_none() {
            return Ok(Outcome::Ok(()));
        }
        let password = match self.password(false).await? {
            Outcome::Ok(p) => Some(p),
            Outcome::Blocked(_) => None,
        };
        let fp = &self.obj.spec.for_provider;
        let Some(data) = connection_data(
            inst,
            fp.username.as_deref(),
            fp.db_name.as_deref(),
            password.as_deref(),
        ) else {
            return Ok(Outcome::Ok(()));
        };
        let data: BTreeMap<String, ByteString> = data
            .into_iter()
            .map(|(k, v)| (k, ByteString(v.into_bytes())))
            .collect();

        let uid = self.obj.uid().unwrap_or_default();
        if let Some(s) = self.get_secret(&r.name).await? {
            if !crate::kube::meta::owned_by_uid(&s.metadata, &uid)
                && !left_by_predecessor(&s, &self.obj.name_any())
            {
                return refused(format!(
                    "Secret {} exists and is not owned by this Instance; paved will not overwrite it",
                    r.name
                ));
            }
            if crate::kube::meta::is_managed(&s.metadata) && s.data.as_ref() == Some(&data) {
                return Ok(Outcome::Ok(()));
            }
        }
        let secret = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": r.name,
                "namespace": ns,
                "labels": self.managed_labels(),
                "ownerReferences": self.owner_ref().map(|o| vec![o]).unwrap_or_default(),
            },
            "type": "Opaque",
            "data": data,
        });
        // Routine: no Event (the Instance's conditions and the Secret itself say enough).
        self.count_write("connection_secret");
        self.secrets()
            .patch(
                &r.name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&secret),
            )
            .await
            .map_err(kube_err("writing the connection Secret", &self.obj))?;
        Ok(Outcome::Ok(()))
    }
}
    };
}
connection_steps!(Instance);
connection_steps!(M<Instance>);

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    fn inst(
        address: Option<&str>,
        port: Option<i32>,
        user: Option<&str>,
        db: Option<&str>,
    ) -> DbInstance {
        DbInstance {
            identifier: "db-1".into(),
            address: address.map(Into::into),
            port,
            username: user.map(Into::into),
            db_name: db.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn connection_data_table() {
        let h = Some("db.example");
        // (instance, spec username, spec dbname, password, expected keys, username, uri prefix)
        let cases = [
            (
                inst(None, Some(5432), None, None),
                None,
                None,
                Some("pw"),
                None,
            ),
            (inst(h, None, None, None), None, None, Some("pw"), None),
            (
                inst(h, Some(5432), None, None),
                None,
                None,
                Some("pw"),
                Some((
                    "address,attribute.password,endpoint,host,password,port,uri,username",
                    "postgres",
                )),
            ),
            (
                inst(h, Some(5432), Some("admin"), Some("rdsdb")),
                Some("ignored"),
                Some("app"),
                None,
                Some(("address,dbname,endpoint,host,port,uri,username", "admin")),
            ),
            (
                inst(h, Some(5432), None, Some("rdsdb")),
                Some("spec-user"),
                None,
                Some("pw"),
                Some((
                    "address,attribute.password,dbname,endpoint,host,password,port,uri,username",
                    "spec-user",
                )),
            ),
        ];
        for (i, (inst, user, db, pw, expected)) in cases.into_iter().enumerate() {
            let got = connection_data(&inst, user, db, pw);
            match (got, expected) {
                (None, None) => {}
                (Some(d), Some((keys, username))) => {
                    let k: Vec<&str> = d.keys().map(String::as_str).collect();
                    assert_eq!(k.join(","), keys, "case {i}");
                    assert_eq!(d["username"], username, "case {i}");
                    assert_eq!(d["endpoint"], "db.example:5432", "case {i}");
                    assert!(
                        d["uri"].starts_with(&format!("postgresql://{username}")),
                        "case {i}: {}",
                        d["uri"]
                    );
                }
                (got, _) => panic!("case {i}: {got:?}"),
            }
        }
        // the spec's dbname wins over what RDS reports
        let d = connection_data(
            &inst(h, Some(5432), None, Some("rdsdb")),
            None,
            Some("app"),
            None,
        );
        assert_eq!(d.as_ref().map(|d| d["dbname"].as_str()), Some("app"));
    }
}
