"""The edges: the WebSocket endpoint and the HTTP routes (thin: they call the service)."""
