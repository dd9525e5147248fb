//! placeholder
#[cfg(feature = "module")]
mod bridge;
pub mod core;
