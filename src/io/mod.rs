// SPDX-License-Identifier: MIT OR Apache-2.0
//! File loaders, apart from the runtime: `.keras` archives (zip),
//! `model.weights.h5` (HDF5). They check every size a file declares
//! against the bytes it really has, and never panic on what a file holds.

pub mod archive;
pub mod h5;
pub mod npy;
pub mod safetensors;
