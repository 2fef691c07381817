"""Development helpers, served only under --dev."""
from handlers.base import BaseHandler
from rtserver import auth, demo
from rtserver.errors import BadRequest, NotFound


class DevHandler(BaseHandler):
    """A handler that exists only under --dev: elsewhere it is a plain 404."""

    def prepare(self):
        if not self.ctx.settings.dev:
            raise NotFound("only under --dev")
        super().prepare()


class DevTokenHandler(DevHandler):
    def post(self):
        user_id = self.json_body().get("user_id")
        if type(user_id) is not int or not 0 < user_id < 2**63:
            raise BadRequest("user_id must be a positive integer")
        self.write_json({"token": auth.issue_token(self.ctx.settings.token_secret, user_id,
                                                   self.ctx.settings.dev_token_ttl)})


class DevDemoHandler(DevHandler):
    async def post(self):
        self.write_json(await demo.set_up(self.ctx))


default_handlers = [(r"/dev/token", DevTokenHandler), (r"/dev/demo", DevDemoHandler)]
