"""The kubelet-like pod lifecycle: one worker per pod, driven by sync_pods."""
