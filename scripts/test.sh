#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# Runs the whole test suite. GPU tests run on real adapters; on a machine
# without a GPU those are Mesa's CPU drivers (lavapipe for Vulkan, llvmpipe
# for OpenGL), which this script installs when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/gpu-drivers.sh
ensure_gpu_drivers
exec cargo test "$@"
