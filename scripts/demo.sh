#!/usr/bin/env bash
# The main job: a local multi-node cluster (`pilothouse up`) with a demo app
# applied, and the console open on it. Installs what it needs; safe to run
# twice (`up` reuses what is there, and applying again changes nothing).
# Needs root, for network namespaces. NODES=N picks the node count (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

pilothouse up --nodes "${NODES:-3}" --no-console
pilothouse apply -f examples/demo.yaml
pilothouse get nodes -o wide
pilothouse get pods -n demo -o wide

if [ -t 0 ] && [ -t 1 ]; then
  exec pilothouse  # attaches to the control plane that `up` left running
fi
cat <<'TXT'

Not on a terminal, so the console was not opened. Open it with:
  .venv/bin/pilothouse
Remove the cluster with:
  .venv/bin/pilothouse down
TXT
