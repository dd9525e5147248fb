//! placeholder
pub mod core;
#[cfg(feature = "module")]
mod bridge;
