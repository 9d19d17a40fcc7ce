"""Short descriptions of the kinds and of their common fields, for the
OpenAPI documents (what `kubectl explain` prints)."""

from __future__ import annotations

KIND_DESCRIPTIONS: dict[str, str] = {
    "Namespace": "Namespace provides a scope for Names.",
    "Node": "Node is a worker node; each node runs the pilothouse agent.",
    "Pod": "Pod is a collection of containers that can run on a host.",
    "Service": (
        "Service is a named abstraction of software service (for example, mysql) consisting "
        "of local port that the proxy listens on, and the selector that determines which "
        "pods will answer requests sent through the proxy."
    ),
    "Endpoints": "Endpoints is a collection of endpoints that implement the actual service.",
    "Secret": "Secret holds secret data of a certain type.",
    "ConfigMap": "ConfigMap holds configuration data for pods to consume.",
    "Event": "Event is a report of an event somewhere in the cluster.",
    "Deployment": "Deployment enables declarative updates for Pods and ReplicaSets.",
    "ReplicaSet": "ReplicaSet ensures that a specified number of pod replicas are running.",
    "Ingress": (
        "Ingress is a collection of rules that allow inbound connections to reach the "
        "endpoints defined by a backend."
    ),
    "IngressClass": "IngressClass represents the class of the Ingress, referenced by the Ingress Spec.",
    "EndpointSlice": "EndpointSlice represents a subset of the endpoints that implement a service.",
    "GatewayClass": "GatewayClass describes a class of Gateways available to the user.",
    "Gateway": "Gateway represents an instance of a service-traffic handling infrastructure.",
    "HTTPRoute": "HTTPRoute provides a way to route HTTP requests.",
    "DaemonSet": "DaemonSet represents the configuration of a daemon set.",
    "Job": "Job represents the configuration of a single job.",
    "CronJob": "CronJob represents the configuration of a single cron job.",
}

FIELD_DESCRIPTIONS: dict[str, str] = {
    "apiVersion": "APIVersion defines the versioned schema of this representation of an object.",
    "kind": "Kind is a string value representing the REST resource this object represents.",
    "metadata": "Standard object's metadata.",
    "spec": "Spec defines the desired behavior of the object.",
    "status": "Status is the most recently observed status of the object. Read-only.",
    "name": "Name must be unique within its scope.",
    "generateName": "A prefix the server uses to generate a unique name, if name is not given.",
    "namespace": "The namespace the object lives in.",
    "labels": "Map of string keys and values to organize and categorize (scope and select) objects.",
    "annotations": "Unstructured key value map to store arbitrary metadata.",
    "uid": "The unique in time and space value of this object, set by the server.",
    "resourceVersion": "The version of this object, for optimistic concurrency. Read-only.",
    "ownerReferences": "Objects this object depends on; it is garbage collected when they are gone.",
    "finalizers": "Must be empty before the object is deleted from the registry.",
    "replicas": "Number of desired pods. Defaults to 1.",
    "selector": "Label query over pods that should match the replica count.",
    "template": "Template describes the pods that will be created.",
    "strategy": "The deployment strategy to use to replace existing pods with new ones.",
    "minReadySeconds": "Seconds a new pod must be ready, without crashing, to count as available.",
    "containers": "List of containers belonging to the pod. There must be at least one.",
    "initContainers": "Containers run in order before the app containers are started.",
    "image": "Container image name.",
    "command": "Entrypoint array. Not executed within a shell.",
    "args": "Arguments to the entrypoint.",
    "env": "List of environment variables to set in the container.",
    "ports": "List of ports.",
    "resources": "Compute resources (requests and limits).",
    "volumes": "List of volumes that can be mounted by containers belonging to the pod.",
    "volumeMounts": "Pod volumes to mount into the container's filesystem.",
    "nodeName": "The node this pod is bound to.",
    "nodeSelector": "Labels a node must have for the pod to fit on it.",
    "restartPolicy": "Restart policy for all containers within the pod.",
    "type": "Type of the object or of the field's value.",
    "clusterIP": "The IP address of the service, allocated by the server.",
    "data": "Data contains the object's data.",
    "rules": "A list of rules.",
    "conditions": "The latest available observations of the object's state.",
}
