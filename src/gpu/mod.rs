// SPDX-License-Identifier: MIT OR Apache-2.0
//! The GPU runtime: adapters and their capabilities, device tensors,
//! shader composition, pipelines, recorded forwards, and the kernels' ops
//! (Dense for every weight format, add, cast, norms, attention, the
//! embeddings, roofline probes). It knows storage and weight formats, not
//! Keras policies (the policy-to-kernel bridge is [`crate::routing`]).
//!
//! A forward is data: a [`recorder::Graph`] of tensors and dispatches is
//! built into a [`recorder::Forward`] (buffers from a pool sized up front,
//! one uniform buffer, bind groups and pipelines made once), which runs as
//! one command encoder and one submission, reading back only its outputs.
//! The host-slice helpers ([`context::GpuContext::dense`], ...) record a
//! one-op forward and run it.

pub mod attention;
pub mod buffers;
pub mod cast;
pub mod context;
pub mod dense;
pub mod embedding;
pub mod kernels;
pub mod mirror;
pub mod norm;
pub mod pipelines;
pub mod probes;
pub mod recorder;
pub mod rope;
pub mod shaders;
pub mod tensor;
pub mod tuning;

/// What can go wrong on the GPU side (a kind of [`crate::Error`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GpuError {
    /// No adapter was found for the requested backends.
    #[error(
        "No GPU adapter found (backends: {backends}). On a machine without a GPU install Mesa's \
         CPU drivers: `sudo apt-get install mesa-vulkan-drivers libegl-mesa0` (lavapipe for \
         Vulkan, llvmpipe for OpenGL), or set WGPU_BACKEND to a backend this machine has."
    )]
    NoAdapter {
        /// The backends searched.
        backends: String,
    },

    /// `WGPU_ADAPTER_NAME` or an explicit choice named no adapter.
    #[error("No GPU adapter named like '{wanted}'. Adapters found: {found}.")]
    AdapterNotFound {
        /// The name asked for.
        wanted: String,
        /// The adapters there are.
        found: String,
    },

    /// The adapter refused to open a device.
    #[error("The adapter '{adapter}' could not open a device: {message}")]
    RequestDevice {
        /// The adapter's name.
        adapter: String,
        /// wgpu's explanation.
        message: String,
    },

    /// A shader failed to compose, parse or validate.
    #[error("Shader '{label}' is invalid: {message}")]
    Shader {
        /// Which shader variant.
        label: String,
        /// The compiler's explanation.
        message: String,
    },

    /// A variant needs a feature this adapter lacks.
    #[error(
        "Kernel variant '{variant}' needs {feature}, which the adapter '{adapter}' does not have."
    )]
    MissingFeature {
        /// The variant.
        variant: String,
        /// The missing feature.
        feature: &'static str,
        /// The adapter's name.
        adapter: String,
    },

    /// A buffer larger than the adapter allows for one binding.
    #[error(
        "Buffer '{label}' needs {bytes} bytes, more than this adapter's limit of {limit} bytes for \
         one storage binding; use an adapter with a larger max_storage_buffer_binding_size, or \
         fewer rows (Dense weights are split across bindings by themselves, down to 128 outputs \
         each)."
    )]
    BufferTooLarge {
        /// Which buffer.
        label: String,
        /// Its size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },

    /// wgpu reported a validation or out-of-memory error.
    #[error("GPU error during {during}: {message}")]
    Wgpu {
        /// What was being done.
        during: String,
        /// wgpu's message.
        message: String,
    },

    /// The device was lost (driver reset, removed GPU, ...).
    #[error("The GPU device was lost: {0}. Create a new GpuContext.")]
    DeviceLost(String),
}

/// Gives Mesa a private `XDG_RUNTIME_DIR` where the one set is missing or
/// not a private folder (a container, a CI machine, ssh without a login
/// session): Mesa's drivers, probed while wgpu lists adapters, print
/// `error: XDG_RUNTIME_DIR is invalid or not set in the environment` two
/// to four times otherwise, which reads as a failure. The folder is
/// `<temp dir>/dtype-policy-runtime-<uid>`, mode 0700; a valid variable is
/// left as it is. Does nothing on other systems than Linux.
///
/// # Safety
///
/// It sets an environment variable: call it before any other thread is
/// started (first thing in `main`), as [`std::env::set_var`] requires.
pub unsafe fn quiet_mesa() {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        let private = |m: &std::fs::Metadata| m.is_dir() && m.permissions().mode() & 0o077 == 0;
        let valid = std::env::var_os("XDG_RUNTIME_DIR")
            .and_then(|dir| std::fs::metadata(dir).ok())
            .is_some_and(|m| private(&m));
        if valid {
            return;
        }
        let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
        let dir = std::env::temp_dir().join(format!("dtype-policy-runtime-{uid}"));
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        // Not followed through a link: the folder itself must be ours.
        if std::fs::symlink_metadata(&dir).is_ok_and(|m| private(&m) && m.uid() == uid) {
            // SAFETY: the caller runs this before any other thread exists.
            unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
        }
    }
}
