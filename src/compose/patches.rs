//! Patches: FromCompositeFieldPath, ToCompositeFieldPath, CombineFromComposite,
//! CombineToComposite and PatchSet, with the fromFieldPath and toFieldPath policies.

use std::collections::BTreeMap;

use serde_json::Value;

use super::error::{Location, Reason, StepError};
use super::fieldpath::{self, MergeOptions, Segment};
use super::gofmt::sprintf;
use super::transforms::{self, Prepared};
use crate::api::composition::{
    CombineStrategy, FromFieldPathPolicy, Patch, PatchSet, PatchType, ToFieldPathPolicy,
    TransformType,
};

/// Which way a patch copies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// From the claim to the composed resource.
    ToComposed,
    /// From the observed composed resource to the claim's status.
    ToClaim,
}

#[derive(Debug)]
pub(crate) enum Source<'a> {
    Field {
        path: &'a str,
        segments: Vec<Segment>,
    },
    Combine {
        vars: Vec<(&'a str, Vec<Segment>)>,
        format: &'a str,
    },
}

/// A validated patch with parsed paths and compiled transforms.
#[derive(Debug)]
pub(crate) struct PreparedPatch<'a> {
    pub location: Location,
    pub direction: Direction,
    source: Source<'a>,
    to_path: &'a str,
    to: Vec<Segment>,
    wildcard: bool,
    transforms: Vec<(TransformType, Prepared<'a>)>,
    required: bool,
    merge: Option<MergeOptions>,
}

impl PreparedPatch<'_> {
    /// The field paths the patch reads (one, or a Combine's variables), parsed.
    pub(crate) fn source_paths(&self) -> Vec<(&str, &[Segment])> {
        match &self.source {
            Source::Field { path, segments } => vec![(*path, segments.as_slice())],
            Source::Combine { vars, .. } => vars.iter().map(|(p, s)| (*p, s.as_slice())).collect(),
        }
    }

    /// The field path the patch writes, parsed.
    pub(crate) fn target_path(&self) -> (&str, &[Segment]) {
        (self.to_path, &self.to)
    }
}

/// Fields of a composed object that patches may not write: paved sets them itself.
const RESERVED_COMPOSED: &[&[&str]] = &[
    &["apiVersion"],
    &["kind"],
    &["metadata"],
    &["metadata", "name"],
    &["metadata", "namespace"],
    &["metadata", "generateName"],
    &["metadata", "ownerReferences"],
];

/// Fields of the claim's status that the claim controller owns.
const RESERVED_STATUS: &[&str] = &[
    "conditions",
    "compositionRef",
    "resourceRefs",
    "connectionDetails",
    "problem",
];

fn starts_with_fields(segments: &[Segment], fields: &[&str]) -> bool {
    segments.len() >= fields.len()
        && segments
            .iter()
            .zip(fields)
            .all(|(s, f)| matches!(s, Segment::Field(x) if x == f))
}

/// Patch sets by name, validated: the first error.
#[cfg(test)]
pub(crate) fn patch_sets(
    sets: &[PatchSet],
) -> Result<BTreeMap<&str, &PatchSet>, (Location, StepError)> {
    let mut errs = Vec::new();
    let out = patch_sets_collect(sets, &mut errs);
    match errs.into_iter().next() {
        Some((_, loc, e)) => Err((loc, e)),
        None => Ok(out),
    }
}

/// Patch sets by name. Every patch of every set is validated, whether or not a resource
/// includes the set (as Crossplane's Composition validation does); errors come with the index
/// of their set.
pub(crate) fn patch_sets_collect<'a>(
    sets: &'a [PatchSet],
    errs: &mut Vec<(usize, Location, StepError)>,
) -> BTreeMap<&'a str, &'a PatchSet> {
    let mut out = BTreeMap::new();
    for (si, set) in sets.iter().enumerate() {
        if set.name.is_empty() {
            errs.push((
                si,
                Location::PatchSet {
                    name: String::new(),
                    index: 0,
                },
                StepError::new(Reason::InvalidComposition, "patch set name is empty"),
            ));
        }
        for (i, p) in set.patches.iter().enumerate() {
            let loc = Location::PatchSet {
                name: set.name.clone(),
                index: i,
            };
            if p.type_ == Some(PatchType::PatchSet) {
                errs.push((
                    si,
                    loc,
                    StepError::new(
                        Reason::InvalidComposition,
                        "a patch in a PatchSet cannot be of type PatchSet",
                    ),
                ));
            } else if let Err(e) = prepare_one(p, loc.clone()) {
                errs.push((si, loc, e));
            }
        }
        if out.insert(set.name.as_str(), set).is_some() {
            errs.push((
                si,
                Location::PatchSet {
                    name: set.name.clone(),
                    index: 0,
                },
                StepError::new(
                    Reason::InvalidComposition,
                    format!("duplicate patch set name {:?}", set.name),
                ),
            ));
        }
    }
    out
}

fn parse_path(what: &str, path: &str) -> Result<Vec<Segment>, StepError> {
    if path.is_empty() {
        return Err(StepError::new(
            Reason::InvalidFieldPath,
            format!("{what}: the field path is empty"),
        ));
    }
    fieldpath::parse(path)
        .map_err(|e| StepError::new(Reason::InvalidFieldPath, format!("{what}: {e}")))
}

/// Expand and prepare the patches of one resource: the first error.
#[cfg(test)]
pub(crate) fn prepare_all<'a>(
    patches: &'a [Patch],
    sets: &BTreeMap<&str, &'a PatchSet>,
) -> Result<Vec<PreparedPatch<'a>>, (Location, StepError)> {
    super::first_entry_error(|errs| prepare_all_collect(patches, sets, true, errs))
}

/// Expand and prepare the patches of one resource, collecting every error. Errors of the
/// patches inside included patch sets are reported only with `set_errors` (they are reported
/// once, at the set, by [`patch_sets_collect`]); such patches are left out.
pub(crate) fn prepare_all_collect<'a>(
    patches: &'a [Patch],
    sets: &BTreeMap<&str, &'a PatchSet>,
    set_errors: bool,
    errs: &mut Vec<(Location, StepError)>,
) -> Vec<PreparedPatch<'a>> {
    let mut out = Vec::with_capacity(patches.len());
    for (i, p) in patches.iter().enumerate() {
        let ty = p.type_.unwrap_or_default();
        if ty == PatchType::PatchSet {
            let loc = Location::Patch {
                index: i,
                patch_type: ty.as_str(),
                patch_set: None,
            };
            let Some(name) = p.patch_set_name.as_deref() else {
                errs.push((
                    loc,
                    StepError::new(
                        Reason::InvalidComposition,
                        "patchSetName is required for type PatchSet",
                    ),
                ));
                continue;
            };
            let Some(set) = sets.get(name) else {
                errs.push((
                    loc,
                    StepError::new(
                        Reason::InvalidComposition,
                        format!("no patch set named {name:?} in patchSets"),
                    ),
                ));
                continue;
            };
            for (j, inner) in set.patches.iter().enumerate() {
                let loc = Location::Patch {
                    index: i,
                    patch_type: inner.type_.unwrap_or_default().as_str(),
                    patch_set: Some((name.to_string(), j)),
                };
                match prepare_one(inner, loc.clone()) {
                    Ok(pp) => out.push(pp),
                    Err(e) if set_errors => errs.push((loc, e)),
                    Err(_) => {}
                }
            }
        } else {
            let loc = Location::Patch {
                index: i,
                patch_type: ty.as_str(),
                patch_set: None,
            };
            match prepare_one(p, loc.clone()) {
                Ok(pp) => out.push(pp),
                Err(e) => errs.push((loc, e)),
            }
        }
    }
    out
}

fn prepare_one(p: &Patch, location: Location) -> Result<PreparedPatch<'_>, StepError> {
    let ty = p.type_.unwrap_or_default();
    let direction = match ty {
        PatchType::FromCompositeFieldPath | PatchType::CombineFromComposite => {
            Direction::ToComposed
        }
        PatchType::ToCompositeFieldPath | PatchType::CombineToComposite => Direction::ToClaim,
        PatchType::PatchSet => {
            return Err(StepError::new(
                Reason::InvalidComposition,
                "a patch in a PatchSet cannot be of type PatchSet",
            ));
        }
        PatchType::FromEnvironmentFieldPath
        | PatchType::ToEnvironmentFieldPath
        | PatchType::CombineFromEnvironment
        | PatchType::CombineToEnvironment => {
            return Err(StepError::new(
                Reason::InvalidComposition,
                format!(
                    "{} patches are not supported: paved has no EnvironmentConfigs",
                    ty.as_str()
                ),
            ));
        }
    };
    let (source, to_path) = match ty {
        PatchType::FromCompositeFieldPath | PatchType::ToCompositeFieldPath => {
            let Some(from) = p.from_field_path.as_deref() else {
                return Err(StepError::new(
                    Reason::InvalidComposition,
                    format!("fromFieldPath is required for type {}", ty.as_str()),
                ));
            };
            let segments = parse_path("fromFieldPath", from)?;
            (
                Source::Field {
                    path: from,
                    segments,
                },
                p.to_field_path.as_deref().unwrap_or(from),
            )
        }
        _ => {
            let Some(c) = p.combine.as_ref() else {
                return Err(StepError::new(
                    Reason::InvalidComposition,
                    format!("combine is required for type {}", ty.as_str()),
                ));
            };
            let Some(to) = p.to_field_path.as_deref() else {
                return Err(StepError::new(
                    Reason::InvalidComposition,
                    format!("toFieldPath is required for type {}", ty.as_str()),
                ));
            };
            if c.variables.is_empty() {
                return Err(StepError::new(
                    Reason::InvalidComposition,
                    "combine.variables must not be empty",
                ));
            }
            let format = match (c.strategy, c.string.as_ref()) {
                (CombineStrategy::String, Some(s)) => s.format.as_str(),
                (CombineStrategy::String, None) => {
                    return Err(StepError::new(
                        Reason::InvalidComposition,
                        "combine strategy string requires combine.string.fmt",
                    ));
                }
            };
            let mut vars = Vec::with_capacity(c.variables.len());
            for (k, v) in c.variables.iter().enumerate() {
                let segs = parse_path(
                    &format!("combine.variables[{k}].fromFieldPath"),
                    &v.from_field_path,
                )?;
                vars.push((v.from_field_path.as_str(), segs));
            }
            (Source::Combine { vars, format }, to)
        }
    };
    let to = parse_path("toFieldPath", to_path)?;
    if let Some(Segment::Index(i)) = to
        .iter()
        .find(|s| matches!(s, Segment::Index(i) if *i > fieldpath::MAX_ARRAY_INDEX))
    {
        return Err(StepError::new(
            Reason::InvalidFieldPath,
            format!(
                "toFieldPath {to_path}: index {i} is larger than {}, the largest index Crossplane allows",
                fieldpath::MAX_ARRAY_INDEX
            ),
        ));
    }
    let wildcard = fieldpath::has_wildcard(&to);
    if wildcard && matches!(source, Source::Combine { .. }) {
        return Err(StepError::new(
            Reason::InvalidComposition,
            format!("toFieldPath {to_path}: wildcards are not supported in Combine patches"),
        ));
    }
    match direction {
        Direction::ToClaim => {
            let ok = to.len() >= 2 && matches!(&to[0], Segment::Field(f) if f == "status");
            if !ok {
                return Err(StepError::new(
                    Reason::InvalidPatchTarget,
                    format!(
                        "toFieldPath {to_path}: patches to the claim may only write fields under status (paved never edits what a user or GitOps owns)"
                    ),
                ));
            }
            if let Segment::Field(f) = &to[1]
                && RESERVED_STATUS.contains(&f.as_str())
            {
                {
                    return Err(StepError::new(
                        Reason::InvalidPatchTarget,
                        format!("toFieldPath {to_path}: status.{f} is written by paved itself"),
                    ));
                }
            }
        }
        Direction::ToComposed => {
            // `metadata` itself is reserved, but not its other fields (labels, annotations).
            let reserved = RESERVED_COMPOSED
                .iter()
                .find(|r| starts_with_fields(&to, r) && (**r != ["metadata"] || to.len() == 1));
            if let Some(r) = reserved {
                return Err(StepError::new(
                    Reason::InvalidPatchTarget,
                    format!(
                        "toFieldPath {to_path}: {} of a composed resource is set by paved and cannot be patched",
                        r.join(".")
                    ),
                ));
            }
        }
    }
    let mut prepared_transforms = Vec::with_capacity(p.transforms.len());
    for (k, t) in p.transforms.iter().enumerate() {
        let prepared = transforms::prepare(t).map_err(|m| {
            StepError::new(
                Reason::InvalidComposition,
                format!("transform {k} ({}): {m}", t.type_.as_str()),
            )
        })?;
        prepared_transforms.push((t.type_, prepared));
    }
    let policy = p.policy.as_ref();
    let required = policy.and_then(|p| p.from_field_path) == Some(FromFieldPathPolicy::Required);
    let merge = match (
        policy.and_then(|p| p.to_field_path),
        policy.and_then(|p| p.merge_options.as_ref()),
    ) {
        (Some(tp), _) => match tp {
            ToFieldPathPolicy::Replace => None,
            ToFieldPathPolicy::MergeObjects | ToFieldPathPolicy::MergeObject => {
                Some(MergeOptions {
                    keep_map_values: true,
                    append_slice: false,
                })
            }
            ToFieldPathPolicy::MergeObjectsAppendArrays => Some(MergeOptions {
                keep_map_values: true,
                append_slice: true,
            }),
            ToFieldPathPolicy::ForceMergeObjects => Some(MergeOptions {
                keep_map_values: false,
                append_slice: false,
            }),
            ToFieldPathPolicy::ForceMergeObjectsAppendArrays | ToFieldPathPolicy::AppendArray => {
                Some(MergeOptions {
                    keep_map_values: false,
                    append_slice: true,
                })
            }
        },
        (None, Some(mo)) => Some(MergeOptions {
            keep_map_values: mo.keep_map_values.unwrap_or(false),
            append_slice: mo.append_slice.unwrap_or(false),
        }),
        (None, None) => None,
    };
    Ok(PreparedPatch {
        location,
        direction,
        source,
        to_path,
        to,
        wildcard,
        transforms: prepared_transforms,
        required,
        merge,
    })
}

impl PreparedPatch<'_> {
    fn source_label(&self) -> String {
        match &self.source {
            Source::Field { path, .. } => format!("fromFieldPath {path}"),
            Source::Combine { vars, .. } => {
                let names: Vec<&str> = vars.iter().map(|(p, _)| *p).collect();
                format!("combine of {}", names.join(", "))
            }
        }
    }

    /// Apply the patch: read from `from`, transform, write into `to`. A missing optional source
    /// is not an error: the patch is skipped.
    pub(crate) fn apply(&self, from: &Value, to: &mut Value) -> Result<(), StepError> {
        let input = match &self.source {
            Source::Field { path, segments } => match self.read(from, path, segments)? {
                Some(v) => v.clone(),
                None => return Ok(()),
            },
            Source::Combine { vars, format } => {
                let mut values = Vec::with_capacity(vars.len());
                for (path, segments) in vars {
                    match self.read(from, path, segments)? {
                        Some(v) => values.push(v),
                        None => return Ok(()),
                    }
                }
                Value::String(sprintf(format, &values))
            }
        };
        let mut value = input;
        for (k, (ty, t)) in self.transforms.iter().enumerate() {
            value = t.apply(value).map_err(|m| {
                StepError::new(
                    Reason::TransformError,
                    format!(
                        "{}: transform {k} ({}): {m}",
                        self.source_label(),
                        ty.as_str()
                    ),
                )
            })?;
        }
        // Crossplane writes values through a JSON round trip: integral floats become integers.
        fieldpath::normalize_numbers(&mut value);
        self.write(to, value)
    }

    fn read<'v>(
        &self,
        from: &'v Value,
        path: &str,
        segments: &[Segment],
    ) -> Result<Option<&'v Value>, StepError> {
        match fieldpath::get(from, segments) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => {
                if self.required {
                    Err(StepError::new(
                        Reason::RequiredFieldMissing,
                        format!(
                            "fromFieldPath {path} is required (policy.fromFieldPath Required) but {e}"
                        ),
                    ))
                } else {
                    Ok(None)
                }
            }
            Err(e) => Err(StepError::new(
                Reason::PatchError,
                format!("fromFieldPath {path}: {e}"),
            )),
        }
    }

    fn write(&self, to: &mut Value, value: Value) -> Result<(), StepError> {
        let fail = |e: fieldpath::MergeError| {
            StepError::new(
                Reason::PatchError,
                format!(
                    "toFieldPath {}: {e} (value {})",
                    self.to_path,
                    transforms::preview(&value)
                ),
            )
        };
        if self.wildcard {
            // Crossplane: expand only where the rest of the path exists; none is an error.
            let paths = match fieldpath::expand_wildcards(to, &self.to) {
                Ok(p) => p,
                Err(e @ fieldpath::ExpandError::NotFound { .. }) => {
                    return if self.required {
                        Err(StepError::new(
                            Reason::RequiredFieldMissing,
                            format!(
                                "toFieldPath {} (policy.fromFieldPath Required): {e}",
                                self.to_path
                            ),
                        ))
                    } else {
                        Ok(())
                    };
                }
                Err(e) => {
                    return Err(StepError::new(
                        Reason::PatchError,
                        format!("toFieldPath {}: {e}", self.to_path),
                    ));
                }
            };
            if paths.is_empty() {
                return Err(StepError::new(
                    Reason::PatchError,
                    format!(
                        "cannot expand toFieldPath {}: no element has the rest of the path (Crossplane patches only elements where it already exists)",
                        self.to_path
                    ),
                ));
            }
            for p in paths {
                fieldpath::merge_value(to, &p, value.clone(), self.merge).map_err(fail)?;
            }
            Ok(())
        } else {
            fieldpath::merge_value(to, &self.to, value.clone(), self.merge).map_err(fail)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::api::composition::CompositionSpec;
    use serde_json::json;

    fn patch(v: Value) -> Patch {
        serde_json::from_value(v).unwrap()
    }

    /// Prepare and apply one patch (no patch sets).
    fn run(p: Value, from: &Value, to: &mut Value) -> Result<(), StepError> {
        let patches = vec![patch(p)];
        let sets = BTreeMap::new();
        let prepared = prepare_all(&patches, &sets).map_err(|(_, e)| e)?;
        for pp in &prepared {
            pp.apply(from, to)?;
        }
        Ok(())
    }

    /// Prepare and apply `p`, which must fail with `kind` and a message containing `part`.
    fn fails(p: Value, from: &Value, to: &mut Value, kind: Reason, part: &str) {
        let e = match run(p.clone(), from, to) {
            Err(e) => e,
            Ok(()) => panic!("{p}: applied, want {kind:?}"),
        };
        assert_eq!(e.kind, kind, "{p}: {}", e.message);
        assert!(e.message.contains(part), "{p}: {}", e.message);
    }

    fn claim() -> Value {
        json!({
            "apiVersion": "database.example.com/v1alpha1",
            "kind": "PostgreSQLInstance",
            "metadata": {"name": "my-app-db", "namespace": "my-team", "uid": "1234",
                         "labels": {"team": "a", "crossplane.io/claim-name": "x"}},
            "spec": {"parameters": {"storageGB": 20, "version": "14", "environment": "staging",
                     "tags": {"a": "1"}, "groups": [1, 2]}}
        })
    }

    #[test]
    fn from_composite_default_type_and_to_path_defaults_to_from() {
        let mut to = json!({"spec": {}});
        run(json!({"fromFieldPath": "spec.parameters.storageGB", "toFieldPath": "spec.forProvider.allocatedStorage"}), &claim(), &mut to).unwrap();
        run(
            json!({"fromFieldPath": "spec.parameters.version"}),
            &claim(),
            &mut to,
        )
        .unwrap();
        assert_eq!(
            to,
            json!({"spec": {"forProvider": {"allocatedStorage": 20}, "parameters": {"version": "14"}}})
        );
        run(json!({"fromFieldPath": "metadata.labels[team]", "toFieldPath": "metadata.labels['example.org/team']"}), &claim(), &mut to).unwrap();
        assert_eq!(to["metadata"]["labels"]["example.org/team"], json!("a"));
    }

    #[test]
    fn optional_and_required_policies() {
        let mut to = json!({});
        // Optional (default): missing source skips.
        run(
            json!({"fromFieldPath": "spec.parameters.missing", "toFieldPath": "spec.x"}),
            &claim(),
            &mut to,
        )
        .unwrap();
        assert_eq!(to, json!({}));
        run(json!({"fromFieldPath": "spec.parameters.missing", "toFieldPath": "spec.x", "policy": {"fromFieldPath": "Optional"}}), &claim(), &mut to).unwrap();
        assert_eq!(to, json!({}));
        // Required: error.
        fails(
            json!({"fromFieldPath": "spec.parameters.missing", "toFieldPath": "spec.x", "policy": {"fromFieldPath": "Required"}}),
            &claim(),
            &mut to,
            Reason::RequiredFieldMissing,
            "fromFieldPath spec.parameters.missing is required",
        );
        // Wrong type on the way is an error even when optional.
        fails(
            json!({"fromFieldPath": "spec.parameters.storageGB.x", "toFieldPath": "spec.x"}),
            &claim(),
            &mut to,
            Reason::PatchError,
            "spec.parameters.storageGB is an integer, not an object",
        );
    }

    #[test]
    fn to_field_path_policies() {
        let base = json!({"spec": {"tags": {"a": "0", "b": "2"}, "groups": [2, 3]}});
        let cases = [
            (json!(null), json!({"a": "1"}), json!([1, 2])),
            (
                json!({"toFieldPath": "Replace"}),
                json!({"a": "1"}),
                json!([1, 2]),
            ),
            (
                json!({"toFieldPath": "MergeObjects"}),
                json!({"a": "0", "b": "2"}),
                json!([2, 3]),
            ),
            (
                json!({"toFieldPath": "MergeObjectsAppendArrays"}),
                json!({"a": "0", "b": "2"}),
                json!([2, 3, 1]),
            ),
            (
                json!({"toFieldPath": "ForceMergeObjects"}),
                json!({"a": "1", "b": "2"}),
                json!([1, 2]),
            ),
            (
                json!({"toFieldPath": "ForceMergeObjectsAppendArrays"}),
                json!({"a": "1", "b": "2"}),
                json!([2, 3, 1]),
            ),
            (
                json!({"mergeOptions": {"keepMapValues": true}}),
                json!({"a": "0", "b": "2"}),
                json!([2, 3]),
            ),
            (
                json!({"mergeOptions": {"keepMapValues": true, "appendSlice": true}}),
                json!({"a": "0", "b": "2"}),
                json!([2, 3, 1]),
            ),
            (
                json!({"mergeOptions": {"appendSlice": true}}),
                json!({"a": "1", "b": "2"}),
                json!([2, 3, 1]),
            ),
            (
                json!({"mergeOptions": {}}),
                json!({"a": "1", "b": "2"}),
                json!([1, 2]),
            ),
        ];
        for (policy, want_tags, want_groups) in cases {
            let mut to = base.clone();
            let mut p1 =
                json!({"fromFieldPath": "spec.parameters.tags", "toFieldPath": "spec.tags"});
            let mut p2 =
                json!({"fromFieldPath": "spec.parameters.groups", "toFieldPath": "spec.groups"});
            if !policy.is_null() {
                p1["policy"] = policy.clone();
                p2["policy"] = policy.clone();
            }
            run(p1, &claim(), &mut to).unwrap();
            run(p2, &claim(), &mut to).unwrap();
            assert_eq!(to["spec"]["tags"], want_tags, "policy {policy}");
            assert_eq!(to["spec"]["groups"], want_groups, "policy {policy}");
        }
    }

    #[test]
    fn to_composite_and_combine_to_composite() {
        let observed =
            json!({"status": {"atProvider": {"address": "db.example.com", "port": 5432}}});
        let mut claim_status = json!({"status": {"keep": true}});
        run(json!({"type": "ToCompositeFieldPath", "fromFieldPath": "status.atProvider.address", "toFieldPath": "status.address"}), &observed, &mut claim_status).unwrap();
        run(json!({"type": "CombineToComposite", "combine": {"variables": [{"fromFieldPath": "status.atProvider.address"}, {"fromFieldPath": "status.atProvider.port"}], "strategy": "string", "string": {"fmt": "%s:%d"}}, "toFieldPath": "status.endpoint"}), &observed, &mut claim_status).unwrap();
        assert_eq!(
            claim_status,
            json!({"status": {"keep": true, "address": "db.example.com", "endpoint": "db.example.com:5432"}})
        );
        // Targets outside status are refused.
        for bad in [
            "spec.x",
            "metadata.labels[a]",
            "status",
            "status.conditions",
            "status.conditions[0]",
        ] {
            fails(
                json!({"type": "ToCompositeFieldPath", "fromFieldPath": "status.atProvider.address", "toFieldPath": bad}),
                &observed,
                &mut claim_status,
                Reason::InvalidPatchTarget,
                "",
            );
        }
        // Missing source with Required on an observed resource is an error.
        fails(
            json!({"type": "ToCompositeFieldPath", "fromFieldPath": "status.atProvider.nope", "toFieldPath": "status.x", "policy": {"fromFieldPath": "Required"}}),
            &observed,
            &mut claim_status,
            Reason::RequiredFieldMissing,
            "",
        );
    }

    #[test]
    fn combine_from_composite() {
        let mut to = json!({});
        run(json!({"type": "CombineFromComposite", "combine": {"variables": [{"fromFieldPath": "metadata.namespace"}, {"fromFieldPath": "metadata.name"}, {"fromFieldPath": "spec.parameters.storageGB"}], "strategy": "string", "string": {"fmt": "%s/%s/%dGi"}}, "toFieldPath": "spec.forProvider.tags.id"}), &claim(), &mut to).unwrap();
        assert_eq!(
            to["spec"]["forProvider"]["tags"]["id"],
            json!("my-team/my-app-db/20Gi")
        );
        // A missing variable skips the patch...
        let mut to = json!({});
        run(json!({"type": "CombineFromComposite", "combine": {"variables": [{"fromFieldPath": "metadata.name"}, {"fromFieldPath": "spec.nope"}], "strategy": "string", "string": {"fmt": "%s-%s"}}, "toFieldPath": "spec.x"}), &claim(), &mut to).unwrap();
        assert_eq!(to, json!({}));
        // ...or fails when Required.
        fails(
            json!({"type": "CombineFromComposite", "combine": {"variables": [{"fromFieldPath": "spec.nope"}], "strategy": "string", "string": {"fmt": "%s"}}, "toFieldPath": "spec.x", "policy": {"fromFieldPath": "Required"}}),
            &claim(),
            &mut to,
            Reason::RequiredFieldMissing,
            "",
        );
        // Configuration errors.
        for bad in [
            json!({"type": "CombineFromComposite", "toFieldPath": "spec.x"}),
            json!({"type": "CombineFromComposite", "combine": {"variables": [{"fromFieldPath": "a"}], "strategy": "string"}, "toFieldPath": "spec.x"}),
            json!({"type": "CombineFromComposite", "combine": {"variables": [], "strategy": "string", "string": {"fmt": "%s"}}, "toFieldPath": "spec.x"}),
            json!({"type": "CombineFromComposite", "combine": {"variables": [{"fromFieldPath": "a"}], "strategy": "string", "string": {"fmt": "%s"}}}),
        ] {
            fails(
                bad.clone(),
                &claim(),
                &mut to,
                Reason::InvalidComposition,
                "",
            );
        }
    }

    #[test]
    fn transforms_run_in_order_and_errors_name_the_transform() {
        let mut to = json!({});
        run(json!({"fromFieldPath": "spec.parameters.environment", "toFieldPath": "spec.forProvider.instanceClass",
                   "transforms": [{"type": "map", "map": {"staging": "small", "production": "large"}},
                                  {"type": "string", "string": {"fmt": "db.t3.%s"}}]}), &claim(), &mut to).unwrap();
        assert_eq!(
            to["spec"]["forProvider"]["instanceClass"],
            json!("db.t3.small")
        );
        let mut c = claim();
        c["spec"]["parameters"]["version"] = json!("abc");
        let e = run(
            json!({"fromFieldPath": "spec.parameters.version", "toFieldPath": "spec.v",
                           "transforms": [{"type": "convert", "convert": {"toType": "int64"}}]}),
            &c,
            &mut to,
        )
        .unwrap_err();
        assert_eq!(e.kind, Reason::TransformError);
        assert_eq!(
            e.message,
            "fromFieldPath spec.parameters.version: transform 0 (convert): cannot convert string \"abc\" to int64"
        );
    }

    #[test]
    fn integral_floats_are_written_as_integers() {
        let mut to = json!({});
        run(
            json!({"fromFieldPath": "spec.parameters.storageGB", "toFieldPath": "spec.gib",
                   "transforms": [{"type": "convert", "convert": {"toType": "float64"}}]}),
            &claim(),
            &mut to,
        )
        .unwrap();
        assert!(to["spec"]["gib"].is_i64());
    }

    #[test]
    fn reserved_targets_and_bad_paths() {
        let mut to = json!({});
        for bad in [
            "apiVersion",
            "kind",
            "metadata",
            "metadata.name",
            "metadata.namespace",
            "metadata.ownerReferences[0]",
        ] {
            fails(
                json!({"fromFieldPath": "metadata.name", "toFieldPath": bad}),
                &claim(),
                &mut to,
                Reason::InvalidPatchTarget,
                "",
            );
        }
        for ok in [
            "metadata.labels[a]",
            "metadata.annotations['crossplane.io/external-name']",
            "spec.kind",
            "spec.apiVersion",
        ] {
            run(
                json!({"fromFieldPath": "metadata.name", "toFieldPath": ok}),
                &claim(),
                &mut to,
            )
            .unwrap();
        }
        fails(
            json!({"fromFieldPath": ".spec", "toFieldPath": "spec.x"}),
            &claim(),
            &mut to,
            Reason::InvalidFieldPath,
            "at position 0",
        );
        fails(
            json!({"fromFieldPath": "spec.x", "toFieldPath": "spec[0"}),
            &claim(),
            &mut to,
            Reason::InvalidFieldPath,
            "",
        );
        fails(
            json!({"type": "ToCompositeFieldPath"}),
            &claim(),
            &mut to,
            Reason::InvalidComposition,
            "",
        );
        fails(
            json!({"type": "FromEnvironmentFieldPath", "fromFieldPath": "a"}),
            &claim(),
            &mut to,
            Reason::InvalidComposition,
            "EnvironmentConfigs",
        );
        // Writing through a scalar.
        let mut to = json!({"spec": {"x": "scalar"}});
        fails(
            json!({"fromFieldPath": "metadata.name", "toFieldPath": "spec.x.y"}),
            &claim(),
            &mut to,
            Reason::PatchError,
            "spec.x is a string, not an object",
        );
    }

    #[test]
    fn wildcard_to_field_path() {
        // Crossplane (composition_patches.go patchFieldValueToMultiple + fieldpath
        // ExpandWildcards): the value is written only into elements where the rest of the
        // path already exists...
        let mut to = json!({"spec": {"rules": [{"a": 1, "groups": []}, {"a": 2}]}});
        run(json!({"fromFieldPath": "spec.parameters.groups", "toFieldPath": "spec.rules[*].groups"}), &claim(), &mut to).unwrap();
        assert_eq!(
            to["spec"]["rules"],
            json!([{"a": 1, "groups": [1, 2]}, {"a": 2}])
        );
        // ...and it is an error ("cannot expand ToFieldPath") when nothing expands, whether
        // the elements lack the leaf or the array is missing.
        for mut to in [json!({"spec": {"rules": [{"a": 1}, {"a": 2}]}}), json!({})] {
            fails(
                json!({"fromFieldPath": "spec.parameters.groups", "toFieldPath": "spec.rules[*].groups"}),
                &claim(),
                &mut to,
                Reason::PatchError,
                "cannot expand toFieldPath spec.rules[*].groups",
            );
        }
        // A wildcard over a scalar is an error; over null, a missing field (skipped).
        let mut to = json!({"spec": {"rules": "x"}});
        fails(
            json!({"fromFieldPath": "spec.parameters.groups", "toFieldPath": "spec.rules[*].groups"}),
            &claim(),
            &mut to,
            Reason::PatchError,
            "",
        );
        let mut to = json!({"spec": {"rules": null}});
        run(json!({"fromFieldPath": "spec.parameters.groups", "toFieldPath": "spec.rules[*].groups"}), &claim(), &mut to).unwrap();
        assert_eq!(to, json!({"spec": {"rules": null}}));
    }

    #[test]
    fn to_field_path_index_above_1024_is_invalid() {
        // Crossplane refuses indexes above 1024 when setting (DefaultMaxFieldPathIndex); paved
        // reports it when the Composition is validated.
        let mut to = json!({});
        fails(
            json!({"fromFieldPath": "metadata.name", "toFieldPath": "spec.items[1025]"}),
            &claim(),
            &mut to,
            Reason::InvalidFieldPath,
            "index 1025",
        );
        run(
            json!({"fromFieldPath": "metadata.name", "toFieldPath": "spec.items[1024]"}),
            &claim(),
            &mut to,
        )
        .unwrap();
    }

    #[test]
    fn patch_sets_expand_in_place() {
        let spec: CompositionSpec = serde_json::from_value(json!({
            "compositeTypeRef": {"apiVersion": "a/v1", "kind": "K"},
            "patchSets": [{"name": "common", "patches": [
                {"fromFieldPath": "metadata.name", "toFieldPath": "spec.a"},
                {"fromFieldPath": "spec.parameters.version", "toFieldPath": "spec.b"}
            ]}],
            "resources": [{"name": "r", "base": {}, "patches": [
                {"type": "PatchSet", "patchSetName": "common"},
                {"fromFieldPath": "spec.parameters.storageGB", "toFieldPath": "spec.c"}
            ]}]
        }))
        .unwrap();
        let sets = patch_sets(&spec.patch_sets).unwrap();
        let prepared = prepare_all(&spec.resources[0].patches, &sets).unwrap();
        assert_eq!(prepared.len(), 3);
        assert_eq!(
            prepared[1].location,
            Location::Patch {
                index: 0,
                patch_type: "FromCompositeFieldPath",
                patch_set: Some(("common".into(), 1))
            }
        );
        let mut to = json!({});
        for p in &prepared {
            p.apply(&claim(), &mut to).unwrap();
        }
        assert_eq!(to, json!({"spec": {"a": "my-app-db", "b": "14", "c": 20}}));
        // Unknown and nested sets.
        let bad = vec![patch(json!({"type": "PatchSet", "patchSetName": "nope"}))];
        assert!(prepare_all(&bad, &sets).is_err());
        let bad = vec![patch(json!({"type": "PatchSet"}))];
        assert!(prepare_all(&bad, &sets).is_err());
        let nested: CompositionSpec = serde_json::from_value(json!({
            "compositeTypeRef": {"apiVersion": "a/v1", "kind": "K"},
            "patchSets": [{"name": "n", "patches": [{"type": "PatchSet", "patchSetName": "n"}]}]
        }))
        .unwrap();
        assert!(patch_sets(&nested.patch_sets).is_err());
    }
}
