#!/usr/bin/env bash
# Regenerates the etcd v3 API stubs in control/store/etcdpb/ from rpc.proto there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
"$PY" -m grpc_tools.protoc -I control/store/etcdpb \
  --python_out=control/store/etcdpb --pyi_out=control/store/etcdpb \
  --grpc_python_out=control/store/etcdpb \
  control/store/etcdpb/rpc.proto
# grpc_tools writes an absolute import; the stubs live in a package.
sed -i 's/^import rpc_pb2 as rpc__pb2$/from . import rpc_pb2 as rpc__pb2/' control/store/etcdpb/rpc_pb2_grpc.py
