"""A real multi-node cluster on one machine: `pilothouse up` and `pilothouse down`.

The API is in `control.localcluster.cluster`. This package stays import-light:
every node runs `python3 -m control.localcluster.agent_launcher` on connect.
"""
