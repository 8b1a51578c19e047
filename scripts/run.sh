#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# The main job: generates text with a KerasHub LlamaCausalLM (a tiny committed
# preset with its tokenizer) under a policy map, on the best GPU adapter (Mesa's
# lavapipe where there is no GPU, installed when missing), then checks its greedy
# tokens against KerasHub's under each policy Keras saved it in. Arguments go to
# the example: [policy_map.json] [prompt].
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/gpu-drivers.sh
ensure_gpu_drivers
exec cargo run --release --example generate -- "$@"
