"""What a user does to a cluster: scale, cordon, drain, roll out, delete.

The CLI and the console both call these, over the API client, with kubectl's
semantics and wording. They report through return values (and, for a drain,
a listener); the front ends print or show them.
"""

from __future__ import annotations


class OperationError(Exception):
    """The cluster's state rules the operation out; the message says why, as kubectl would."""
