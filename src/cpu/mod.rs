// SPDX-License-Identifier: MIT OR Apache-2.0
//! CPU twins of the GPU kernels: the same inputs, the same order of
//! summation, the same rounding, so that a GPU result can be checked
//! against a value computed the same way.

pub mod cast;
pub mod dense;
pub mod float8;
pub mod int4;
pub mod int8;
