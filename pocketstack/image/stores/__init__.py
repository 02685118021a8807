"""Image stores: where image bytes live (file system, object storage)."""
