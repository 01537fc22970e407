"""reconcile.toml: environments and their settings."""
