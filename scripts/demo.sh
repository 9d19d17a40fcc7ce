#!/usr/bin/env bash
# The main job, for now: a control plane serving in the background, with a demo
# app applied to it. Installs what it needs; safe to run twice (a running
# control plane is reused, and applying again changes nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

DATA=${PILOTHOUSE_HOME:-$HOME/.pilothouse}
mkdir -p "$DATA"
if pilothouse version --server "$DATA/api.sock" >/dev/null 2>&1; then
  echo "demo: a control plane already serves $DATA"
else
  echo "demo: starting pilothouse serve (log: $DATA/serve.log)"
  setsid pilothouse serve --data-dir "$DATA" >>"$DATA/serve.log" 2>&1 </dev/null &
  echo $! >"$DATA/serve.pid"
  for _ in $(seq 1 100); do
    pilothouse version --server "$DATA/api.sock" >/dev/null 2>&1 && break
    sleep 0.1
  done
  pilothouse version --server "$DATA/api.sock" >/dev/null || { tail -n 20 "$DATA/serve.log"; exit 1; }
fi

pilothouse apply -f examples/demo.yaml
for kind in deployments services ingresses configmaps; do
  echo
  pilothouse get "$kind" -n demo
done
cat <<TXT

The API server is up. Try:
  .venv/bin/pilothouse get deploy -n demo -o yaml
  .venv/bin/pilothouse scale deploy/web -n demo --replicas=5
  KUBECONFIG=$DATA/kubeconfig python3 -c "..."        # the kubernetes Python client works too
Stop it with: kill \$(cat $DATA/serve.pid)
TXT
