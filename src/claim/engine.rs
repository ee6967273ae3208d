//! The composition engine as the claim controller uses it (`crate::compose`).

pub use crate::compose::{
    ComposeError, ObservedResource, Readiness, RenderInput, RenderOutput, composed_name, render,
};
