"""The node's service data plane: the service table the control plane sends, the
nftables rules that route ClusterIPs and NodePorts, and the node-local cluster DNS."""
