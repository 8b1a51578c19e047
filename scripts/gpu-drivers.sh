# SPDX-License-Identifier: MIT OR Apache-2.0
# Sourced by the quick-start scripts: makes sure a Vulkan and an OpenGL (EGL)
# driver exist, installing Mesa's CPU drivers on Debian/Ubuntu when missing.

# Debian packages: lavapipe (Vulkan on the CPU), EGL + llvmpipe (OpenGL on the CPU).
GPU_DRIVER_PACKAGES="mesa-vulkan-drivers libvulkan1 libegl1 libegl-mesa0 libgl1-mesa-dri"

# Whether any of the paths (globs, expanded by the caller) exists: `ls a b`
# fails when either is missing, and each driver lives in only one of them.
any_exists() {
  local path
  for path in "$@"; do
    [ -e "$path" ] && return 0
  done
  return 1
}

have_gpu_drivers() {
  # Read once, not piped into `grep -q`: under pipefail, grep quitting at
  # its first match kills ldconfig with SIGPIPE and fails the test.
  local libraries
  libraries="$(ldconfig -p 2>/dev/null || true)"
  any_exists /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json &&
    grep -q 'libvulkan\.so\.1' <<<"$libraries" &&
    grep -q 'libEGL\.so\.1' <<<"$libraries" &&
    any_exists /usr/lib/*/dri/swrast_dri.so /usr/lib/dri/swrast_dri.so
}

ensure_gpu_drivers() {
  if have_gpu_drivers; then
    return 0
  fi
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo="sudo"
    else
      echo "error: no Vulkan/EGL driver found. Install Mesa's CPU drivers (or your GPU's driver):" >&2
      echo "  sudo apt-get install -y $GPU_DRIVER_PACKAGES" >&2
      exit 1
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: no Vulkan/EGL driver found and no apt-get to install one." >&2
    echo "Install Mesa's Vulkan driver (lavapipe) and EGL with your package manager." >&2
    exit 1
  fi
  echo "Installing Mesa's CPU GPU drivers: $GPU_DRIVER_PACKAGES" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $GPU_DRIVER_PACKAGES >/dev/null
}
