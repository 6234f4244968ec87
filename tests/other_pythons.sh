#!/usr/bin/env bash
# The runtime on the other supported Pythons: a one-step `pip install .` (no
# training extras, so no TensorFlow), then the bridge round trip and
# network-served ClassNet evaluations. Usage: tests/other_pythons.sh [3.12 3.13]
# An interpreter that is not found is reported and skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNTIME_TESTS=(tests/cosmicnet_cobaya/test_bridge.py tests/cosmicnet_cobaya/test_sources.py
  tests/cosmicnet_cobaya/test_default_networks.py tests/cosmicnet_cobaya/test_classnet.py
  tests/cosmicnet_cobaya/test_fast_paths.py)
find_python() {
  local version=$1 candidate
  local pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
  for candidate in "python$version" "$pyenv_root/versions/$version"*/bin/"python$version"; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c "" 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  return 1
}
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(3.12 3.13)
status=0
for v in "${versions[@]}"; do
  if ! python=$(find_python "$v"); then
    echo "Python $v not found: skipped"; continue
  fi
  venv="build/venv-$v"
  echo "== Python $v ($python): pip install . into $venv"
  rm -rf "$venv" && "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q ".[test]"
  # the installed package, not the source tree, is what the tests import
  (cd build && "../$venv/bin/pytest" -q -p no:cacheprovider --rootdir=.. \
    "${RUNTIME_TESTS[@]/#/../}") || status=1
done
exit $status
