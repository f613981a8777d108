"""The OCI distribution client: references, transport, auth, manifests and blobs."""
