"""Pages of the accounts package: login, second factor, registration, the account console.

One blueprint; each module adds its routes to it.
"""

from flask import Blueprint

bp = Blueprint("accounts", __name__)

from idp.accounts.views import account, console, login, recovery, register, security  # noqa: E402,F401  (routes)
