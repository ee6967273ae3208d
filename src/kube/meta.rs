//! Metadata both controllers read and write the same way: the label on everything paved writes
//! that it caches, and what a cache drops from an object before keeping it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The label on every Secret paved writes (master passwords, Instance and claim connection
/// Secrets): the only Secrets paved caches.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "paved";
/// The label selector of what paved writes and caches (`app.kubernetes.io/managed-by=paved`).
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=paved";

/// The annotation `kubectl apply` leaves (a copy of the whole object, data included): never
/// cached.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drop what paved never reads from a cached object's metadata: managedFields (except the
/// `Apply` entry of `keep_manager` on the main resource, when given) and the last-applied
/// annotation (an emptied annotation map becomes `None`). managedFields are often the largest
/// part of an object.
pub fn slim(meta: &mut ObjectMeta, keep_manager: Option<&str>) {
    match (keep_manager, meta.managed_fields.as_mut()) {
        (Some(m), Some(entries)) => {
            entries.retain(|e| {
                e.manager.as_deref() == Some(m)
                    && e.operation.as_deref() == Some("Apply")
                    && e.subresource.as_deref().is_none_or(str::is_empty)
            });
            if entries.is_empty() {
                meta.managed_fields = None;
            }
        }
        _ => meta.managed_fields = None,
    }
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(LAST_APPLIED);
        if a.is_empty() {
            meta.annotations = None;
        }
    }
}

/// Whether an object carries paved's managed-by label.
pub fn is_managed(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .is_some_and(|v| v == MANAGED_BY)
}

/// The labels of something paved writes: the managed-by label plus `extra`.
pub fn managed_labels<'a>(
    extra: impl IntoIterator<Item = (&'a str, String)>,
) -> BTreeMap<String, String> {
    let mut l: BTreeMap<String, String> =
        [(MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string())].into();
    l.extend(extra.into_iter().map(|(k, v)| (k.to_string(), v)));
    l
}

/// Whether `meta` names `uid` among its owner references.
pub fn owned_by_uid(meta: &ObjectMeta, uid: &str) -> bool {
    !uid.is_empty()
        && meta
            .owner_references
            .as_ref()
            .is_some_and(|o| o.iter().any(|o| o.uid == uid))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    fn entry(manager: &str, op: &str, sub: Option<&str>) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.into()),
            operation: Some(op.into()),
            subresource: sub.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn slim_keeps_only_the_named_apply_entry_and_drops_last_applied() {
        let cases: [(Option<&str>, usize); 3] = [(None, 0), (Some("paved"), 1), (Some("x"), 0)];
        for (keep, left) in cases {
            let mut m = ObjectMeta {
                managed_fields: Some(vec![
                    entry("paved", "Apply", None),
                    entry("paved", "Apply", Some("status")),
                    entry("paved", "Update", None),
                    entry("kubectl", "Apply", None),
                ]),
                annotations: Some([(LAST_APPLIED.to_string(), "{}".to_string())].into()),
                ..Default::default()
            };
            slim(&mut m, keep);
            assert_eq!(m.managed_fields.map_or(0, |f| f.len()), left, "{keep:?}");
            assert_eq!(m.annotations, None, "an emptied map goes");
        }
        let mut m = ObjectMeta {
            annotations: Some(
                [
                    (LAST_APPLIED.to_string(), "{}".to_string()),
                    ("a".to_string(), "b".to_string()),
                ]
                .into(),
            ),
            ..Default::default()
        };
        slim(&mut m, None);
        assert_eq!(m.annotations.unwrap().len(), 1);
    }

    #[test]
    fn managed_label() {
        let labels = managed_labels([("paved.io/instance", "db".to_string())]);
        assert_eq!(labels.len(), 2);
        let m = ObjectMeta {
            labels: Some(labels),
            ..Default::default()
        };
        assert!(is_managed(&m));
        assert!(!is_managed(&ObjectMeta::default()));
        assert_eq!(MANAGED_SELECTOR, format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
    }
}
