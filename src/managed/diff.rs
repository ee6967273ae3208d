//! Desired (spec.forProvider) against observed (DescribeDBInstances): what to modify, what cannot
//! be changed, and which tags to add or remove. Pure functions.
//!
//! Only fields set in forProvider are compared; a change RDS already lists in
//! PendingModifiedValues is not requested again.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::instance::InstanceParameters;

use super::model::{DbInstance, ModifyRequest};

/// The outcome of comparing spec and AWS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Mutable fields that differ (identifier and applyImmediately filled in).
    pub modify: ModifyRequest,
    /// Fields that differ but cannot be changed, each `field: why`. When not empty, paved makes
    /// no AWS call for this object.
    pub refused: Vec<String>,
    /// Tags to add or overwrite.
    pub add_tags: BTreeMap<String, String>,
    /// Tag keys to remove (only keys paved applied from spec before).
    pub remove_tags: Vec<String>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.modify.is_empty()
            && self.refused.is_empty()
            && self.add_tags.is_empty()
            && self.remove_tags.is_empty()
    }
}

/// Version numbers of an engine version string ("16.4" → [16, 4]; "9.6.22" → [9, 6, 22]).
fn version_parts(v: &str) -> Vec<u64> {
    v.split('.')
        .map(|p| {
            p.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .take_while(|p| !p.is_empty())
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The major version: the first number, or the first two before PostgreSQL 10 (9.6).
fn major(parts: &[u64]) -> Vec<u64> {
    match parts {
        [9, minor, ..] => vec![9, *minor],
        [first, ..] => vec![*first],
        [] => vec![],
    }
}

/// How a wanted engine version relates to the observed one.
#[derive(Debug, PartialEq, Eq)]
pub enum VersionChange {
    /// Satisfied: equal, a prefix ("16" of "16.4"), or AWS is already on a newer minor of the
    /// same major (auto minor upgrade) — never fought.
    None,
    Minor,
    Major,
    /// Older than what runs: RDS cannot downgrade.
    Downgrade,
}

pub fn version_change(wanted: &str, observed: &str) -> VersionChange {
    let w = version_parts(wanted);
    let o = version_parts(observed);
    if w.is_empty() || o.is_empty() {
        return if wanted == observed {
            VersionChange::None
        } else {
            VersionChange::Minor
        };
    }
    if o.starts_with(&w) {
        return VersionChange::None;
    }
    let (wm, om) = (major(&w), major(&o));
    if wm == om {
        if w <= o {
            VersionChange::None
        } else {
            VersionChange::Minor
        }
    } else if wm > om {
        VersionChange::Major
    } else {
        VersionChange::Downgrade
    }
}

fn eq_ci(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Compare spec and observation. `desired_tags` includes the ownership tags; `previous_tag_keys`
/// are the spec tag keys paved applied before (status.managedTagKeys), the only ones it removes.
pub fn diff(
    identifier: &str,
    fp: &InstanceParameters,
    obs: &DbInstance,
    desired_tags: &BTreeMap<String, String>,
    previous_tag_keys: &[String],
    protected_tag_keys: &[&str],
) -> Diff {
    let mut d = Diff::default();
    d.modify.identifier = identifier.to_string();
    d.modify.apply_immediately = fp.apply_immediately.unwrap_or(false);
    immutable(fp, obs, &mut d);
    storage(fp, obs, &mut d);
    engine_version(fp, obs, &mut d);
    mutable(fp, obs, &mut d.modify);
    tags(
        obs,
        desired_tags,
        previous_tag_keys,
        protected_tag_keys,
        &mut d,
    );
    d
}

/// Fields that cannot change after creation.
fn immutable(fp: &InstanceParameters, obs: &DbInstance, d: &mut Diff) {
    let mut refuse = |field: &str, want: &str, have: &str| {
        d.refused.push(format!(
            "{field}: is {have:?} in AWS and cannot be changed to {want:?} after creation (recreate the instance, or restore a snapshot into a new one)"
        ));
    };
    if let (Some(w), Some(h)) = (&fp.engine, &obs.engine)
        && !eq_ci(w, h)
    {
        refuse("engine", w, h);
    }
    if let (Some(w), Some(h)) = (&fp.db_name, &obs.db_name)
        && w != h
    {
        refuse("dbName", w, h);
    }
    if let Some(w) = &fp.db_name
        && obs.db_name.is_none()
    {
        refuse("dbName", w, "");
    }
    if let (Some(w), Some(h)) = (&fp.username, &obs.username)
        && w != h
    {
        refuse("username", w, h);
    }
    if let Some(w) = fp.storage_encrypted
        && w != obs.storage_encrypted.unwrap_or(false)
    {
        refuse(
            "storageEncrypted",
            &w.to_string(),
            &obs.storage_encrypted.unwrap_or(false).to_string(),
        );
    }
    if let (Some(w), Some(h)) = (&fp.kms_key_id, &obs.kms_key_id)
        && w != h
        && !h.ends_with(&format!("/{w}"))
    {
        refuse("kmsKeyId", w, h);
    }
}

/// Storage: grow only. With autoscaling (maxAllocatedStorage) AWS may have grown it already.
fn storage(fp: &InstanceParameters, obs: &DbInstance, d: &mut Diff) {
    let pending = &obs.pending;
    let m = &mut d.modify;
    if let (Some(w), Some(h)) = (fp.allocated_storage, obs.allocated_storage) {
        if w > h {
            if pending.allocated_storage != Some(w) {
                m.allocated_storage = Some(w);
            }
        } else if w < h
            && fp.max_allocated_storage.unwrap_or(0) == 0
            && obs.max_allocated_storage.unwrap_or(0) == 0
        {
            d.refused.push(format!(
                "allocatedStorage: {w} GiB is less than the {h} GiB allocated; RDS storage can only grow"
            ));
        }
    }
    if let Some(w) = fp.max_allocated_storage
        && w != obs.max_allocated_storage.unwrap_or(0)
    {
        m.max_allocated_storage = Some(w);
    }
}

/// The engine version: minor upgrades, major ones when allowed, never a downgrade.
fn engine_version(fp: &InstanceParameters, obs: &DbInstance, d: &mut Diff) {
    let pending = &obs.pending;
    if let (Some(w), Some(h)) = (&fp.engine_version, &obs.engine_version) {
        let already_pending = pending
            .engine_version
            .as_deref()
            .is_some_and(|p| version_change(w, p) == VersionChange::None);
        if !already_pending {
            match version_change(w, h) {
                VersionChange::None => {}
                VersionChange::Minor => d.modify.engine_version = Some(w.clone()),
                VersionChange::Major if fp.allow_major_version_upgrade == Some(true) => {
                    d.modify.engine_version = Some(w.clone());
                    d.modify.allow_major_version_upgrade = true;
                }
                VersionChange::Major => d.refused.push(format!(
                    "engineVersion: {w:?} is a major version upgrade from {h:?}; set allowMajorVersionUpgrade: true to allow it"
                )),
                VersionChange::Downgrade => d.refused.push(format!(
                    "engineVersion: {w:?} is older than the running {h:?}; RDS cannot downgrade"
                )),
            }
        }
    }
}

/// The fields ModifyDBInstance changes in place.
fn mutable(fp: &InstanceParameters, obs: &DbInstance, m: &mut ModifyRequest) {
    let pending = &obs.pending;
    if let Some(w) = &fp.instance_class
        && obs.instance_class.as_deref() != Some(w.as_str())
        && pending.instance_class.as_deref() != Some(w.as_str())
    {
        m.instance_class = Some(w.clone());
    }
    if let Some(w) = &fp.storage_type
        && !obs.storage_type.as_deref().is_some_and(|h| eq_ci(h, w))
        && !pending.storage_type.as_deref().is_some_and(|h| eq_ci(h, w))
    {
        m.storage_type = Some(w.clone());
    }
    if let Some(w) = fp.iops
        && obs.iops != Some(w)
        && pending.iops != Some(w)
    {
        m.iops = Some(w);
    }
    if let Some(w) = fp.multi_az
        && obs.multi_az != Some(w)
        && pending.multi_az != Some(w)
    {
        m.multi_az = Some(w);
    }
    if let Some(w) = fp.publicly_accessible
        && obs.publicly_accessible != Some(w)
    {
        m.publicly_accessible = Some(w);
    }
    if let Some(w) = fp.backup_retention_period
        && obs.backup_retention_period != Some(w)
        && pending.backup_retention_period != Some(w)
    {
        m.backup_retention_period = Some(w);
    }
    if let Some(w) = &fp.backup_window
        && !obs.backup_window.as_deref().is_some_and(|h| eq_ci(h, w))
    {
        m.backup_window = Some(w.clone());
    }
    if let Some(w) = &fp.maintenance_window
        && !obs
            .maintenance_window
            .as_deref()
            .is_some_and(|h| eq_ci(h, w))
    {
        m.maintenance_window = Some(w.clone());
    }
    if let Some(w) = fp.deletion_protection
        && obs.deletion_protection.unwrap_or(false) != w
    {
        m.deletion_protection = Some(w);
    }
    if let Some(w) = fp.auto_minor_version_upgrade
        && obs.auto_minor_version_upgrade != Some(w)
    {
        m.auto_minor_version_upgrade = Some(w);
    }
    if let Some(w) = &fp.parameter_group_name
        && obs.parameter_group_name.as_deref() != Some(w.as_str())
    {
        m.parameter_group_name = Some(w.clone());
    }
    if let Some(w) = &fp.vpc_security_group_ids {
        let want: BTreeSet<&String> = w.iter().collect();
        let have: BTreeSet<&String> = obs.vpc_security_group_ids.iter().collect();
        if want != have {
            m.vpc_security_group_ids = Some(w.clone());
        }
    }
    if let Some(w) = fp.port
        && obs.port != Some(w)
        && pending.port != Some(w)
    {
        m.port = Some(w);
    }
}

/// Tags to add, and spec tags paved applied before that the spec no longer lists.
fn tags(
    obs: &DbInstance,
    desired_tags: &BTreeMap<String, String>,
    previous_tag_keys: &[String],
    protected_tag_keys: &[&str],
    d: &mut Diff,
) {
    for (k, v) in desired_tags {
        if obs.tags.get(k) != Some(v) {
            d.add_tags.insert(k.clone(), v.clone());
        }
    }
    for k in previous_tag_keys {
        if !desired_tags.contains_key(k)
            && obs.tags.contains_key(k)
            && !protected_tag_keys.contains(&k.as_str())
        {
            d.remove_tags.push(k.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::managed::model::PendingModifiedValues;

    fn observed() -> DbInstance {
        DbInstance {
            identifier: "db".into(),
            engine: Some("postgres".into()),
            engine_version: Some("16.4".into()),
            instance_class: Some("db.t3.micro".into()),
            allocated_storage: Some(20),
            backup_retention_period: Some(1),
            backup_window: Some("03:00-04:00".into()),
            username: Some("postgres".into()),
            storage_encrypted: Some(false),
            deletion_protection: Some(false),
            tags: [("paved.io/owner".to_string(), "ns/db".to_string())].into(),
            ..Default::default()
        }
    }

    fn spec() -> InstanceParameters {
        InstanceParameters {
            region: "eu-west-1".into(),
            engine: Some("postgres".into()),
            instance_class: Some("db.t3.micro".into()),
            allocated_storage: Some(20),
            ..Default::default()
        }
    }

    fn tags() -> BTreeMap<String, String> {
        [("paved.io/owner".to_string(), "ns/db".to_string())].into()
    }

    #[test]
    fn unset_fields_are_not_enforced() {
        let d = diff("db", &spec(), &observed(), &tags(), &[], &[]);
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn storage_growth_and_class_are_modified() {
        let mut s = spec();
        s.allocated_storage = Some(50);
        s.instance_class = Some("db.t3.small".into());
        s.apply_immediately = Some(true);
        let d = diff("db", &s, &observed(), &tags(), &[], &[]);
        assert_eq!(d.modify.allocated_storage, Some(50));
        assert_eq!(d.modify.instance_class.as_deref(), Some("db.t3.small"));
        assert!(d.modify.apply_immediately);
        assert_eq!(d.modify.fields(), vec!["instanceClass", "allocatedStorage"]);
        assert!(d.refused.is_empty());
    }

    #[test]
    fn pending_changes_are_not_requested_again() {
        let mut s = spec();
        s.allocated_storage = Some(50);
        s.instance_class = Some("db.t3.small".into());
        let mut o = observed();
        o.pending = PendingModifiedValues {
            allocated_storage: Some(50),
            instance_class: Some("db.t3.small".into()),
            ..Default::default()
        };
        let d = diff("db", &s, &o, &tags(), &[], &[]);
        assert!(d.modify.is_empty(), "{d:?}");
    }

    #[test]
    fn storage_decrease_and_immutables_are_refused() {
        let mut s = spec();
        s.allocated_storage = Some(10);
        s.engine = Some("mysql".into());
        s.username = Some("admin".into());
        s.storage_encrypted = Some(true);
        let d = diff("db", &s, &observed(), &tags(), &[], &[]);
        let all = d.refused.join("\n");
        for f in ["allocatedStorage", "engine", "username", "storageEncrypted"] {
            assert!(all.contains(f), "{f} missing from {all}");
        }
        // a decrease with autoscaling on is AWS having grown it: fine
        let mut s = spec();
        s.allocated_storage = Some(10);
        s.max_allocated_storage = Some(100);
        let mut o = observed();
        o.max_allocated_storage = Some(100);
        assert!(diff("db", &s, &o, &tags(), &[], &[]).refused.is_empty());
    }

    #[test]
    fn engine_versions() {
        assert_eq!(version_change("16", "16.4"), VersionChange::None);
        assert_eq!(version_change("16.4", "16.4"), VersionChange::None);
        assert_eq!(version_change("16.2", "16.4"), VersionChange::None);
        assert_eq!(version_change("16.6", "16.4"), VersionChange::Minor);
        assert_eq!(version_change("17", "16.4"), VersionChange::Major);
        assert_eq!(version_change("15", "16.4"), VersionChange::Downgrade);
        assert_eq!(version_change("9.6.24", "9.6.22"), VersionChange::Minor);
        assert_eq!(version_change("10.1", "9.6.22"), VersionChange::Major);

        let mut s = spec();
        s.engine_version = Some("17".into());
        let d = diff("db", &s, &observed(), &tags(), &[], &[]);
        assert!(d.modify.engine_version.is_none());
        assert!(d.refused[0].contains("allowMajorVersionUpgrade"));
        s.allow_major_version_upgrade = Some(true);
        let d = diff("db", &s, &observed(), &tags(), &[], &[]);
        assert_eq!(d.modify.engine_version.as_deref(), Some("17"));
        assert!(d.modify.allow_major_version_upgrade);
    }

    #[test]
    fn tags_add_and_remove_only_what_paved_applied() {
        let mut o = observed();
        o.tags.insert("team".into(), "old".into());
        o.tags.insert("cost-center".into(), "42".into()); // someone else's
        o.tags.insert("gone".into(), "x".into()); // applied by paved before, removed from spec
        let mut want = tags();
        want.insert("team".into(), "new".into());
        let d = diff(
            "db",
            &spec(),
            &o,
            &want,
            &["team".into(), "gone".into(), "paved.io/owner".into()],
            &["paved.io/owner"],
        );
        assert_eq!(d.add_tags.get("team").map(String::as_str), Some("new"));
        assert_eq!(d.remove_tags, vec!["gone".to_string()]);
    }

    #[test]
    fn windows_compare_case_insensitively() {
        let mut s = spec();
        s.backup_window = Some("03:00-04:00".into());
        s.maintenance_window = Some("Sun:05:00-Sun:06:00".into());
        let mut o = observed();
        o.maintenance_window = Some("sun:05:00-sun:06:00".into());
        assert!(diff("db", &s, &o, &tags(), &[], &[]).modify.is_empty());
    }
}
