"""Health and metrics."""

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from handlers.base import BaseHandler
from rtserver import health


class HealthHandler(BaseHandler):
    async def get(self):
        checks = await health.check(self.ctx)
        self.write_json({"ok": all(checks.values()), **checks},
                        200 if all(checks.values()) else 503)


class MetricsHandler(BaseHandler):
    def get(self):
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest())


default_handlers = [
    (r"/healthz", HealthHandler),
    (r"/metrics", MetricsHandler),
]
