// SPDX-License-Identifier: MIT OR Apache-2.0
//! Keras dtype policies: pure host logic, no GPU types.
//!
//! - [`dtype`]: dtype names;
//! - [`float`], [`quantized`], [`any`]: the policy classes and string parsing;
//! - [`map`]: `DTypePolicyMap` and path lookup;
//! - [`global`]: the process-wide default;
//! - [`keras_json`]: Keras's config and serialized-object JSON.

pub mod any;
pub mod dtype;
pub mod float;
pub mod global;
pub mod keras_json;
pub mod map;
pub(crate) mod python;
pub mod quantized;
