#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# The main job: routes a small model's layers through a Keras policy map and
# runs them on the best GPU adapter (Mesa's lavapipe where there is no GPU,
# installed when missing). Arguments go to the example: [policy_map.json] [rows].
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/gpu-drivers.sh
ensure_gpu_drivers
exec cargo run --release --example run_model -- "$@"
