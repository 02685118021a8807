"""Block storage (Cinder v3) service."""
