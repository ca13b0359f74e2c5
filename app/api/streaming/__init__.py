"""The streaming API: Server-Sent Events and WebSocket, fed by the after-commit events."""
