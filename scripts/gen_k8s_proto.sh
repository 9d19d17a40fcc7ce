#!/usr/bin/env bash
# Regenerates the Python stubs in control/api/protobuf/ from k8s.proto there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
"$PY" -m grpc_tools.protoc -I control/api/protobuf \
  --python_out=control/api/protobuf --pyi_out=control/api/protobuf \
  control/api/protobuf/k8s.proto
