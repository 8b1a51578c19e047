// SPDX-License-Identifier: MIT OR Apache-2.0
//! The global default policy (`keras.config.dtype_policy` / `set_dtype_policy`).
//!
//! **Process-wide**, unlike Keras, which keeps it per thread. A Rust program
//! typically sets the policy once at start-up and then loads and runs layers
//! on worker threads (a thread pool, an async runtime); a per-thread value
//! would silently give those threads `float32`. Reads and writes are guarded
//! by a lock, so every read sees one complete policy that some call set.
//! Code that wants a different default in one place should pass an explicit
//! policy (or give a [`DTypePolicyMap`](crate::DTypePolicyMap) its own
//! default) rather than change the global one.

use std::sync::RwLock;

use crate::error::Result;
use crate::policy::any::{IntoPolicy, Policy};
use crate::policy::dtype::DType;
use crate::policy::float::DTypePolicy;

/// `None` until set: `float32`, Keras's `floatx()` default.
static GLOBAL_POLICY: RwLock<Option<Policy>> = RwLock::new(None);

/// The current default policy (initially `float32`).
pub fn dtype_policy() -> Policy {
    // A panic elsewhere while holding the lock cannot leave a half-written
    // policy (the write is one assignment), so a poisoned lock is still good.
    let guard = GLOBAL_POLICY.read().unwrap_or_else(|e| e.into_inner());
    match &*guard {
        Some(policy) => policy.clone(),
        None => Policy::Float(DTypePolicy::from_dtype(DType::Float32)),
    }
}

/// Sets the default policy for the whole process: a policy, or a policy name
/// (quantized names too, e.g. `"int8_from_mixed_bfloat16"`).
///
/// ```
/// dtype_policy::set_dtype_policy("mixed_bfloat16")?;
/// assert_eq!(dtype_policy::dtype_policy().name(), "mixed_bfloat16");
/// # dtype_policy::set_dtype_policy("float32")?;
/// # Ok::<(), dtype_policy::Error>(())
/// ```
pub fn set_dtype_policy(policy: impl IntoPolicy) -> Result<()> {
    let policy = policy.into_policy()?;
    let mut guard = GLOBAL_POLICY.write().unwrap_or_else(|e| e.into_inner());
    *guard = Some(policy);
    Ok(())
}
