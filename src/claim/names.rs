//! Names the claim controller writes under: its field manager and its finalizer. A leaf module,
//! so every step can use them without reaching into the controller's `mod.rs`.

/// The field manager of every server-side apply of the claim controller.
pub const FIELD_MANAGER: &str = "paved";
/// The finalizer paved puts on claims, so that composed objects are deleted with them.
pub const FINALIZER: &str = "paved.dev/claim";

/// Status keys the controller itself manages; everything else in the engine's claim status comes
/// from patches to the claim (ToCompositeFieldPath, CombineToComposite).
pub const OWN_STATUS_KEYS: [&str; 5] = [
    "conditions",
    "problem",
    "compositionRef",
    "resourceRefs",
    "connectionDetails",
];
