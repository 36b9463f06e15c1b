"""A bare Flask endpoint: the WSGI server's own ceiling on one core, beside the provider.

    taskset -c 0 .venv/bin/gunicorn --chdir bench bare_app:app
"""

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/.well-known/openid-configuration")
def ping():
    return jsonify(ok=True)
