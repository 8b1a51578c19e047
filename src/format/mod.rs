// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host-side formats, defined once (no GPU types): how values are stored in
//! kernel buffers ([`StorageFormat`]), how a Dense kernel's weights are
//! stored ([`WeightFormat`]), the packed layouts of quantized weights
//! ([`packing`]), and a Dense kernel as Keras stores it, float or quantized
//! ([`DenseKernel`]), made from Keras's own variables or from float
//! weights through Keras's quantizers. The GPU runtime uploads a
//! [`DenseKernel`]; the CPU twins compute from the same one.

pub mod embedding;
pub mod kernel;
pub mod packing;
pub mod storage;

pub use kernel::{
    DenseKernel, FloatValues, KerasDenseVariables, KernelAxes, KernelValues, Variable,
    VariableValues, WeightFormat,
};
pub use storage::{HostFloat, StorageFormat};
