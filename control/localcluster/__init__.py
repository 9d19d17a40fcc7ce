"""A real multi-node cluster on one machine: `pilothouse up` and `pilothouse down`.

`cluster` has `up` and `down`. `plan` computes every name and address from the
options; `network`, `daemons`, `images`, `serve` (the control plane, and the
Nodes registered through its API) and `teardown` carry it out; `state` records
what was made and `layout` says where the files live.

This package stays import-light: every node runs
`python3 -m control.localcluster.agent_launcher` on connect.
"""
