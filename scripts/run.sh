#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# The main job: loads a transformer encoder block made in Keras from its .keras
# file and runs it under a policy map and under each policy Keras saved it in, on
# the best GPU adapter (Mesa's lavapipe where there is no GPU,
# installed when missing). Arguments go to the example: [policy_map.json].
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/gpu-drivers.sh
ensure_gpu_drivers
exec cargo run --release --example keras_model -- "$@"
