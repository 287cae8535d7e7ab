#!/usr/bin/env bash
# Installs what runwarden's tests and local stack need, and nothing that is already there:
# Node dependencies (npm ci), MLflow pinned to $MLFLOW_VERSION in .venv/, and redis-server.
# Idempotent and quick when everything is present; progress lines go to stderr.
# Used by `npm run setup`, `npm test` and .ci/run.
set -euo pipefail

MLFLOW_VERSION="${MLFLOW_VERSION:-3.17.2}"
# What `mlflow.pyfunc.load_model` needs for an ONNX model (tests load runwarden's models in
# Python with them) and what `npm run bench:onnx` compares against.
ONNX_VERSION="${ONNX_VERSION:-1.23.2}"
ONNXRUNTIME_VERSION="${ONNXRUNTIME_VERSION:-1.31.1}"
NODE_MAJOR_MIN=20

cd "$(dirname "$0")/.."

# onnxruntime-node must not download its native binaries during npm install.
export ONNXRUNTIME_NODE_INSTALL=skip

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }
have() { command -v "$1" >/dev/null 2>&1; }

apt_install() {
  say "installing $* with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "$@" >/dev/null
}

# --- Node ------------------------------------------------------------------------------------
have node || die "node is not on PATH: install Node.js >= ${NODE_MAJOR_MIN} (https://nodejs.org)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt "$NODE_MAJOR_MIN" ]; then
  die "Node.js >= ${NODE_MAJOR_MIN} is required, found $(node --version)"
fi

if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] \
  || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing Node dependencies (npm ci)"
  npm ci --no-audit --no-fund >&2
else
  say "Node dependencies present"
fi

# --- Python and MLflow -----------------------------------------------------------------------
python_ok() { have python3 && python3 -c 'import venv, ensurepip' >/dev/null 2>&1; }
if ! python_ok; then
  if is_root && have apt-get; then
    apt_install python3 python3-venv
  fi
  python_ok || die "python3 with the venv module is required: sudo apt-get install python3 python3-venv, or brew install python"
fi

if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $(python3 --version)"
  python3 -m venv .venv
fi

# Reading the installed version from package metadata takes ~0.1 s; `mlflow --version` takes
# several seconds because it imports mlflow. The entry point must exist as well.
installed_mlflow="$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("mlflow"))' 2>/dev/null || true)"
if [ "$installed_mlflow" = "$MLFLOW_VERSION" ] && [ -x .venv/bin/mlflow ]; then
  say "mlflow ${MLFLOW_VERSION} present in .venv"
else
  say "installing mlflow==${MLFLOW_VERSION} into .venv${installed_mlflow:+ (found ${installed_mlflow})}"
  .venv/bin/python -m pip install --disable-pip-version-check -q "mlflow==${MLFLOW_VERSION}" >&2
  reported="$(.venv/bin/mlflow --version 2>/dev/null || true)"
  case "$reported" in
    *"version ${MLFLOW_VERSION}") say "installed: ${reported}" ;;
    *) die "mlflow install did not take: .venv/bin/mlflow --version printed '${reported}'" ;;
  esac
fi

installed_onnx="$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("onnx"), m.version("onnxruntime"))' 2>/dev/null || true)"
if [ "$installed_onnx" = "${ONNX_VERSION} ${ONNXRUNTIME_VERSION}" ]; then
  say "onnx ${ONNX_VERSION} and onnxruntime ${ONNXRUNTIME_VERSION} present in .venv"
else
  say "installing onnx==${ONNX_VERSION} onnxruntime==${ONNXRUNTIME_VERSION} into .venv"
  .venv/bin/python -m pip install --disable-pip-version-check -q "onnx==${ONNX_VERSION}" "onnxruntime==${ONNXRUNTIME_VERSION}" >&2
fi

# --- Redis -----------------------------------------------------------------------------------
# Tests start their own redis-server on a free port; a system service is neither needed nor used.
if have redis-server; then
  say "redis-server present"
else
  if is_root && have apt-get; then
    apt_install redis-server
  fi
  have redis-server || die "install redis-server: sudo apt-get install redis-server, or brew install redis"
fi

# --- A font for chart text ------------------------------------------------------------------
# Loss curves are drawn as SVG and rendered to PNG by resvg, which draws text with a system font:
# without one a chart has lines but no axis labels or title.
if [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || { have fc-list && [ -n "$(fc-list 2>/dev/null | head -1)" ]; }; then
  say "a system font is present"
elif is_root && have apt-get; then
  apt_install fonts-dejavu-core
else
  say "warning: no system font found; charts will have no text (sudo apt-get install fonts-dejavu-core)"
fi

say "everything is present"
