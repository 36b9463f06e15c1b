"""Legacy systems and their accounts: import, old-password verification, linking, report."""
