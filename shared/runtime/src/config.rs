//! Configuration: built-in defaults, then a TOML file, then `NEARLINE__SECTION__KEY`
//! environment variables, parsed once in `main` and passed down explicitly.
//!
//! Loading never stops at the first mistake: every unknown key, badly typed value and
//! out-of-range setting is collected and reported together, so an operator fixes a
//! configuration in one round instead of one error per restart.

mod load;
mod secret;
mod sections;

pub use load::{ConfigError, ENV_PREFIX, Problem, load};
pub use secret::{DatabaseUrl, Secret};
pub use sections::*;
