"""Authentication: passwords, throttling, SSO sessions, login/registration pages."""
