#!/usr/bin/env bash
# Regenerates the Python module in control/api/protobuf/ from k8s.proto there
# (no .pyi: decode.py reads the messages through their descriptors).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
"$PY" -m grpc_tools.protoc -I control/api/protobuf \
  --python_out=control/api/protobuf \
  control/api/protobuf/k8s.proto
