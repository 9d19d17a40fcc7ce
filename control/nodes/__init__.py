"""Node links: one supervisor per node, speaking the agent protocol to its agent."""
