//! gnno-core: the negative-sampling engine behind the `gnno` Python package.
//!
//! Pure Rust, no Python: the binding crate `gnno-py` converts arrays and
//! errors and calls into these modules.
//!
//! * [`interactions`]: the CSR user–item matrix.
//! * [`proposal`], [`sampling`]: score-free negatives (uniform, popularity).
//! * [`rng`], [`pool`]: deterministic random streams and the owned thread pool.
//! * [`kernels`], [`simd`]: the numeric kernels and their CPU paths, chosen
//!   once at run time.
//! * [`memory`], [`dynamic`]: the score-based samplers' memory and engine.
//! * [`alloc`]: allocations sized by user input, reserved fallibly.

pub mod alloc;
pub mod dynamic;
pub mod error;
pub mod interactions;
pub mod kernels;
pub mod memory;
pub mod pool;
pub mod proposal;
pub mod rng;
pub mod sampling;
pub mod simd;

pub use error::{Error, ErrorKind, Result};
pub use interactions::Interactions;
