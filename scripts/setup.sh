#!/usr/bin/env bash
# Installs what pilothouse and its tests need into ./.venv. Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need=()
  for pkg in python3-venv openssl containerd runc containernetworking-plugins busybox-static iproute2 \
    openssh-server nftables iptables conntrack kmod procps util-linux tmux haproxy etcd-server; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [ "${#need[@]}" -gt 0 ]; then
    echo "setup: installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.pilothouse-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing pilothouse and test tools into .venv"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e '.[test]'
  touch "$stamp"
fi

# The protobuf stubs are generated, not kept in git: again when a .proto changed.
if [ ! -f agent/cri/api_pb2_grpc.py ] || [ agent/cri/api.proto -nt agent/cri/api_pb2_grpc.py ]; then
  echo "setup: generating the CRI stubs"
  PYTHON=.venv/bin/python bash scripts/gen_cri.sh
fi
if [ ! -f control/api/protobuf/k8s_pb2.py ] || [ control/api/protobuf/k8s.proto -nt control/api/protobuf/k8s_pb2.py ]; then
  echo "setup: generating the Kubernetes protobuf stubs"
  PYTHON=.venv/bin/python bash scripts/gen_k8s_proto.sh
fi
if [ ! -f control/store/etcdpb/rpc_pb2_grpc.py ] || [ control/store/etcdpb/rpc.proto -nt control/store/etcdpb/rpc_pb2_grpc.py ]; then
  echo "setup: generating the etcd API stubs"
  PYTHON=.venv/bin/python bash scripts/gen_etcd_proto.sh
fi
