"""The node's ingress proxy: HAProxy serving the route table (agent.protocol.ingress)."""
