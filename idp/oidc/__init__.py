"""The OpenID Connect protocol: Authlib's server adapted to the domain."""
