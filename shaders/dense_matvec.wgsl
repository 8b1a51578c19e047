// SPDX-License-Identifier: MIT OR Apache-2.0
// Dense forward, matrix-vector shape (few rows: the decode case, memory
// bound), W^T read with 16-byte loads (the widest in core WGSL). The body
// is shared/matvec_body.wgsl.

#import storage
#import dense_bindings
#import dense_weights
#import matvec_body
