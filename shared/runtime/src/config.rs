//! Configuration: built-in defaults, then a TOML file, then `NEARLINE__SECTION__KEY`
//! environment variables, parsed once in `main` and passed down explicitly.
//!
//! Loading never stops at the first mistake: every unknown key, badly typed value and
//! out-of-range setting is collected and reported together, so an operator fixes a
//! configuration in one round instead of one error per restart.

mod load;
mod sections;
mod secret;

pub use load::{ConfigError, ENV_PREFIX, Problem, load};
pub use sections::*;
pub use secret::{DatabaseUrl, Secret};
