#!/usr/bin/env bash
# Regenerates the CRI gRPC stubs in agent/cri/ from agent/cri/api.proto.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
"$PY" -m grpc_tools.protoc -I agent/cri \
  --python_out=agent/cri --pyi_out=agent/cri --grpc_python_out=agent/cri \
  agent/cri/api.proto
# grpc_tools writes an absolute import; the stubs live in a package.
sed -i 's/^import api_pb2 as api__pb2$/from . import api_pb2 as api__pb2/' agent/cri/api_pb2_grpc.py
