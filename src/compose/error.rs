//! Rendering errors: where (Composition, resource, patch or transform, field path) and what
//! (the offending value), plus a bounded reason for conditions and metrics.

use std::fmt;

/// A bounded category of rendering error, used as a condition reason and a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The Composition itself is invalid (missing required fields, unknown patch set, duplicate
    /// names, Pipeline mode, unsupported environment patches, invalid regexp, ...).
    InvalidComposition,
    /// The claim cannot be rendered (not an object, no name or namespace).
    InvalidClaim,
    /// A field path in the Composition is malformed.
    InvalidFieldPath,
    /// A source field with policy `Required` is missing.
    RequiredFieldMissing,
    /// A transform failed on the value it was given.
    TransformError,
    /// Writing the patched value failed (e.g. indexing into a scalar).
    PatchError,
    /// A patch targets a field paved does not let Compositions write.
    InvalidPatchTarget,
    /// A readiness check cannot run on the observed object: the field has the wrong type
    /// (Crossplane fails the reconcile with an error here, rather than reporting NotReady).
    ReadinessCheckError,
    /// A pipeline step runs a Composition Function paved does not run (anything other than
    /// function-patch-and-transform and function-auto-ready).
    UnsupportedFunction,
}

impl Reason {
    /// CamelCase name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::InvalidComposition => "InvalidComposition",
            Reason::InvalidClaim => "InvalidClaim",
            Reason::InvalidFieldPath => "InvalidFieldPath",
            Reason::RequiredFieldMissing => "RequiredFieldMissing",
            Reason::TransformError => "TransformError",
            Reason::PatchError => "PatchError",
            Reason::InvalidPatchTarget => "InvalidPatchTarget",
            Reason::ReadinessCheckError => "ReadinessCheckError",
            Reason::UnsupportedFunction => "UnsupportedFunction",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where in a resource an error happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// The resource's base template.
    Base,
    /// A patch. `patch_set` is set when the patch comes from a PatchSet included by the
    /// resource's patch `index`: (set name, index within the set).
    Patch {
        /// Index in the resource's `patches`.
        index: usize,
        /// The patch type (of the included patch, for patch sets).
        patch_type: &'static str,
        /// The including PatchSet, if any: (name, index in the set).
        patch_set: Option<(String, usize)>,
    },
    /// An entry of `connectionDetails`.
    ConnectionDetail {
        /// Index in `connectionDetails`.
        index: usize,
    },
    /// An entry of `readinessChecks`.
    ReadinessCheck {
        /// Index in `readinessChecks`.
        index: usize,
        /// The check type.
        check_type: &'static str,
    },
    /// A patch set, independently of the resources including it.
    PatchSet {
        /// Name of the set.
        name: String,
        /// Index of the patch in the set.
        index: usize,
    },
}

impl Location {
    /// The field path of this location relative to its resource, e.g. `.patches[1]`.
    pub fn path_suffix(&self) -> String {
        match self {
            Location::Base => ".base".into(),
            Location::Patch { index, .. } => format!(".patches[{index}]"),
            Location::ConnectionDetail { index } => format!(".connectionDetails[{index}]"),
            Location::ReadinessCheck { index, .. } => format!(".readinessChecks[{index}]"),
            Location::PatchSet { index, .. } => format!(".patches[{index}]"),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Base => f.write_str("base"),
            Location::Patch {
                index,
                patch_type,
                patch_set: None,
            } => write!(f, "patch {index} ({patch_type})"),
            Location::Patch {
                index,
                patch_type,
                patch_set: Some((name, inner)),
            } => write!(
                f,
                "patch {index} (PatchSet {name}), patch {inner} ({patch_type})"
            ),
            Location::ConnectionDetail { index } => write!(f, "connectionDetails {index}"),
            Location::ReadinessCheck { index, check_type } => {
                write!(f, "readinessChecks {index} ({check_type})")
            }
            Location::PatchSet { name, index } => write!(f, "patchSet {name}, patch {index}"),
        }
    }
}

/// An error rendering a Composition for a claim.
///
/// Display: `composition postgresql-aws, resource rds-instance (index 0), patch 1
/// (FromCompositeFieldPath): fromFieldPath spec.parameters.version: transform 0 (convert):
/// cannot convert string "abc" to int64`.
///
/// Boxed so that `Result<_, ComposeError>` stays one pointer wide.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ComposeError(Box<Inner>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct Inner {
    composition: String,
    step: Option<(String, usize)>,
    resource: Option<(String, usize)>,
    path: Option<String>,
    location: Option<Location>,
    kind: Reason,
    message: String,
}

impl ComposeError {
    /// A bounded CamelCase category: InvalidComposition, InvalidClaim, InvalidFieldPath,
    /// RequiredFieldMissing, TransformError, PatchError or InvalidPatchTarget.
    pub fn reason(&self) -> &'static str {
        self.0.kind.as_str()
    }

    /// The category as an enum.
    pub fn kind(&self) -> Reason {
        self.0.kind
    }

    /// Name of the Composition.
    pub fn composition(&self) -> &str {
        &self.0.composition
    }

    /// The pipeline step concerned, if any (mode Pipeline): (name, index in spec.pipeline).
    pub fn step(&self) -> Option<(&str, usize)> {
        self.0.step.as_ref().map(|(n, i)| (n.as_str(), *i))
    }

    /// Where in the Composition the error is, as a field path such as
    /// `spec.resources[0].patches[1]` or `spec.pipeline[0].input.resources[2].connectionDetails[0]`
    /// (`spec` when it concerns the Composition as a whole).
    pub fn path(&self) -> &str {
        self.0.path.as_deref().unwrap_or("spec")
    }

    /// The resource concerned, if any: (name, index in spec.resources, or in the step's
    /// input.resources in mode Pipeline).
    pub fn resource(&self) -> Option<(&str, usize)> {
        self.0.resource.as_ref().map(|(n, i)| (n.as_str(), *i))
    }

    /// Where within the resource (patch, connection detail, readiness check, base).
    pub fn location(&self) -> Option<&Location> {
        self.0.location.as_ref()
    }

    /// What is wrong, naming the field path and the offending value (without the
    /// Composition/resource/location prefix of Display).
    pub fn message(&self) -> &str {
        &self.0.message
    }

    pub(crate) fn new(composition: &str, kind: Reason, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            composition: composition.to_string(),
            step: None,
            resource: None,
            path: None,
            location: None,
            kind,
            message: message.into(),
        }))
    }

    pub(crate) fn at_resource(mut self, name: &str, index: usize) -> Self {
        self.0.resource = Some((name.to_string(), index));
        self
    }

    pub(crate) fn at(mut self, location: Location) -> Self {
        self.0.location = Some(location);
        self
    }

    pub(crate) fn at_step(mut self, name: &str, index: usize) -> Self {
        self.0.step = Some((name.to_string(), index));
        self
    }

    pub(crate) fn with_path(mut self, path: impl Into<String>) -> Self {
        self.0.path = Some(path.into());
        self
    }
}

impl fmt::Display for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self;
        write!(f, "composition {}", e.composition)?;
        if let Some((name, index)) = &e.step {
            write!(f, ": mode Pipeline, step {name} (index {index})")?;
        }
        if let Some((name, index)) = &e.resource {
            write!(f, ", resource {name} (index {index})")?;
        }
        if let Some(loc) = &e.location {
            write!(f, ", {loc}")?;
        }
        write!(f, ": {}", e.message)
    }
}

/// An error inside one step, before the Composition/resource context is added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StepError {
    pub kind: Reason,
    pub message: String,
}

impl StepError {
    pub(crate) fn new(kind: Reason, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}
