"""Remote consoles: tokens (tokens.py), the API that issues them (api.py) and the
websocket proxy at ``/console`` on the cloud's port that honours them (proxy.py)."""
