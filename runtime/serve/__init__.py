"""Serving a request: the gate, the proxy to a micro, and static files."""
