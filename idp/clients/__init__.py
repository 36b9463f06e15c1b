"""The registry of relying parties (OpenID Connect clients)."""
