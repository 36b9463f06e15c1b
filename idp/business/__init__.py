"""Businesses: one identity per enterprise (keyed by its tax code), the people who represent it,
and their authorizations. The protocol side of acting for a business is idp.oidc.acting."""
