"""What the API server and its clients agree on beyond object shapes.

Kubernetes' streaming channel protocol for exec (subprotocols, the close
channel, the headers that carry a refused upgrade's Status), and the paths of
pilothouse's own API extensions. Both sides import it; neither imports the
other.
"""

from __future__ import annotations

from agent.protocol.execio import EXEC_CHUNK_BYTES

V5 = "v5.channel.k8s.io"
PROTOCOLS = (
    V5,
    "v4.channel.k8s.io",
    "channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "base64.channel.k8s.io",
)
CLOSE_CHANNEL = 255
# A stdin message may carry this much (kubectl sends 4 KiB or less).
MAX_MESSAGE_BYTES = 4 * EXEC_CHUNK_BYTES
# A refused upgrade's Status, in headers: WebSocket clients rarely read the body.
REASON_HEADER = "X-Pilothouse-Reason"
MESSAGE_HEADER = "X-Pilothouse-Message"

# `pilothouse image import`: an archive streamed to the node agents.
IMAGE_IMPORT_PATH = "/apis/pilothouse.io/v1/images/import"
# The ingress proxies' traffic per route, merged over the ingress nodes (GET).
INGRESS_STATS_PATH = "/apis/pilothouse.io/v1/ingress/stats"

# Leader election among control planes on one store: the Lease (client-go's
# LeaseLock record in its spec) and the annotation where its holder says where
# the others reach it (its HTTPS API).
LEADER_LEASE_NAMESPACE = "kube-system"
LEADER_LEASE_NAME = "pilothouse-control-plane"
LEADER_ENDPOINT_ANNOTATION = "pilothouse.io/leader-endpoint"
# A request one API server passed on to the leader: never passed on again.
FORWARDED_HEADER = "X-Pilothouse-Forwarded-By"
