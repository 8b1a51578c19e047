// SPDX-License-Identifier: MIT OR Apache-2.0
//! CPU twins of the GPU kernels: the same inputs, the same order of
//! summation, the same rounding, so that a GPU result can be checked
//! against a value computed the same way. Host code only: no GPU types.

pub mod add;
pub mod attention;
pub mod cast;
pub mod dense;
pub mod norm;
pub mod probes;
