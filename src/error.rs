//! Typed errors. Every variant says what went wrong and, where the user can act, what to do.

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no GPU adapter found{detail}.\n  t2v needs a Vulkan, Metal or DX12 driver. On Linux without a GPU, install the \
         software Vulkan driver lavapipe: `sudo apt-get install mesa-vulkan-drivers` (on Debian 12, Mesa 25 from \
         bookworm-backports is ~4x faster: `apt-get install -t bookworm-backports mesa-vulkan-drivers`).\n  \
         `t2v devices` lists the adapters wgpu can see."
    )]
    NoAdapter { detail: String },

    #[error("no adapter matches '{wanted}'; available: {available}")]
    AdapterNotFound { wanted: String, available: String },

    #[error("could not open the GPU device '{adapter}': {reason}")]
    DeviceRequest { adapter: String, reason: String },

    #[error("out of device memory: {what} needs {need} but the allocation failed ({reason}); try fewer frames or a smaller size")]
    OutOfMemory { what: String, need: Bytes, reason: String },

    #[error("{op}: {msg}")]
    Shape { op: &'static str, msg: String },

    #[error("{op}: {what} needs a {need} binding but the adapter allows at most {limit} per storage binding, and this op cannot split it further")]
    BindingTooLarge { op: &'static str, what: String, need: Bytes, limit: Bytes },

    #[error("GPU error: {0}")]
    Gpu(String),

    #[error("shader {name}: {msg}")]
    Shader { name: String, msg: String },

    #[error("{path}: {msg}")]
    Config { path: String, msg: String },

    #[error(transparent)]
    Weights(#[from] crate::weights::WeightError),

    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// A byte count that prints in human units (B, KiB, MiB, GiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0 as f64;
        let units = [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
        for (name, size) in units {
            if self.0 >= size {
                return write!(f, "{:.2} {}", b / size as f64, name);
            }
        }
        write!(f, "{} B", self.0)
    }
}

/// Shorthand for shape errors in op wrappers.
pub fn shape_err<T>(op: &'static str, msg: impl Into<String>) -> Result<T> {
    Err(Error::Shape { op, msg: msg.into() })
}
