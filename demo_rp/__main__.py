"""`python -m demo_rp`: serve the demo RP with werkzeug on 127.0.0.1:$RP_PORT (one process)."""

from __future__ import annotations

import logging

from werkzeug.serving import run_simple

from . import create_app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = create_app()
    app.logger.setLevel(logging.INFO)
    port = app.config["RP_PORT"]
    print(
        f"{app.config['RP_NAME']}: {app.config['RP_BASE_URL']}/ (provider {app.config['RP_ISSUER']})"
    )
    # One process on purpose: the session registry lives in memory.
    run_simple("127.0.0.1", port, app, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
