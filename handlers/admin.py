"""The admin API of the chat app's back end: users, groups, members, deposits, withdrawals,
frozen accounts, PINs, and the outbound events that were not delivered."""
from handlers.base import AdminHandler
from rtserver import frozen, outbound, people, pins, wallet
from rtserver.errors import BadRequest, InvalidAmount
from rtserver.integers import MAX_ID, positive_integer
from rtserver.money import format_fen, parse_amount
from storage.schema import EventState

MAX_NAME = 64  # characters of a user's or a group's name
MAX_REF = 64  # characters of a deposit's or a withdrawal's reference
MAX_REASON = 200  # characters of why an account is frozen
MAX_MEMBERS = 10_000  # ids in one membership list
MAX_MOVEMENT = 999_999_999_999  # fen: 9999999999.99, the most a wallet (DECIMAL(12,2)) holds
MAX_EVENTS = 500  # outbound events in one listing, or named in one replay
EVENT_STATES = {state.wire_name: state for state in EventState}


def _text(value, field: str, max_len: int) -> str:
    """Text of 1 to max_len characters, not all blank."""
    if not isinstance(value, str) or not 1 <= len(value) <= max_len or not value.strip():
        raise BadRequest(f"{field} must be text of 1 to {max_len} characters, not all blank")
    return value


def _name(body: dict) -> str:
    return _text(body.get("name"), "name", MAX_NAME).strip()


def _ids(value, field: str) -> list[int]:
    if not isinstance(value, list) or not all(type(v) is int and 0 < v <= MAX_ID for v in value):
        raise BadRequest(f"{field} must be a list of user ids")
    if len(value) > MAX_MEMBERS:
        raise BadRequest(f"{field} is too long")
    return value


def _path_id(text: str) -> int:
    """Read an id in the path; routes take any segment so that a bad one is a 400 with a message."""
    found = positive_integer(text, MAX_ID)
    if found is None:
        raise BadRequest(f"ids are integers from 1 to {MAX_ID}, written without a leading zero")
    return found


class UserHandler(AdminHandler):
    async def put(self, user_id):
        self.write_json(await people.put_user(self.ctx, _path_id(user_id), _name(self.json_body())))


class GroupHandler(AdminHandler):
    async def put(self, group_id):
        body = self.json_body()
        members = _ids(body.get("members", []), "members")
        self.write_json(await people.put_group(self.ctx, _path_id(group_id), _name(body), members))


class GroupMembersHandler(AdminHandler):
    async def post(self, group_id):
        user_ids = _ids(self.json_body().get("user_ids"), "user_ids")
        self.write_json(await people.add_members(self.ctx, _path_id(group_id), user_ids))


class GroupMemberHandler(AdminHandler):
    async def delete(self, group_id, user_id):
        self.write_json(await people.remove_member(self.ctx, _path_id(group_id), _path_id(user_id)))


class FrozenHandler(AdminHandler):
    async def put(self, user_id):
        body = self.json_body()
        if type(body.get("frozen")) is not bool:
            raise BadRequest("frozen must be true or false")
        reason = body.get("reason", "")
        if not isinstance(reason, str) or len(reason) > MAX_REASON:
            raise BadRequest(f"reason must be text of at most {MAX_REASON} characters")
        self.write_json(await frozen.set_frozen(self.ctx, _path_id(user_id), body["frozen"],
                                                reason))


def _movement(body: dict, what: str) -> tuple[int, str]:
    """The (fen, ref) of a deposit's or a withdrawal's body."""
    ref = _text(body.get("ref"), "ref", MAX_REF)
    fen = parse_amount(body.get("amount"))
    if fen > MAX_MOVEMENT:
        raise InvalidAmount(f"a {what} is at most {format_fen(MAX_MOVEMENT)}")
    return fen, ref


class DepositHandler(AdminHandler):
    async def post(self, user_id):
        fen, ref = _movement(self.json_body(), "deposit")
        balance = await wallet.deposit(self.ctx, _path_id(user_id), fen, ref)
        self.write_json({"balance": format_fen(balance.fen)})


class PinHandler(AdminHandler):
    async def delete(self, user_id):
        self.write_json(await pins.remove_pin(self.ctx, _path_id(user_id)))


class WithdrawHandler(AdminHandler):
    async def post(self, user_id):
        fen, ref = _movement(self.json_body(), "withdrawal")
        balance = await wallet.withdraw(self.ctx, _path_id(user_id), fen, ref)
        self.write_json({"balance": format_fen(balance.fen)})


def _event_id(text, field: str) -> int:
    found = positive_integer(text, MAX_ID)
    if found is None:
        raise BadRequest(f"{field} must be an event id as sent (digits, in a string)")
    return found


class EventsHandler(AdminHandler):
    """`GET /admin/events?state=failed&after=ID&limit=N`: outbound events in a state, oldest
    first, a page from after `after`."""

    async def get(self):
        state = EVENT_STATES.get(self.get_query_argument("state", "failed"))
        if state is None:
            raise BadRequest(f"state must be one of {', '.join(EVENT_STATES)}")
        after = self.get_query_argument("after", None)
        limit = positive_integer(self.get_query_argument("limit", "100"), MAX_EVENTS)
        if limit is None:
            raise BadRequest(f"limit must be an integer from 1 to {MAX_EVENTS}")
        self.write_json(await outbound.listing(
            self.ctx, state, 0 if after is None else _event_id(after, "after"), limit))


class ReplayHandler(AdminHandler):
    """`POST /admin/events/replay` `{"ids": [...]}` (or `{}`: every failed one): send failed
    events again, each with its own id, for another --events-retry-for."""

    async def post(self):
        body, ids = self.json_body(), None
        if set(body) - {"ids"}:  # a misspelt "ids" must not replay every failed event
            raise BadRequest('the body is {"ids": [...]}, or {} for every failed event')
        if "ids" in body:
            ids = body["ids"]
            if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_EVENTS:
                raise BadRequest(f"ids must be a list of 1 to {MAX_EVENTS} event ids")
            ids = [_event_id(event_id, "ids") for event_id in ids]
        self.write_json(await outbound.replay(self.ctx, ids))


default_handlers = [
    (r"/admin/users/([^/]+)", UserHandler),
    (r"/admin/users/([^/]+)/frozen", FrozenHandler),
    (r"/admin/groups/([^/]+)", GroupHandler),
    (r"/admin/groups/([^/]+)/members", GroupMembersHandler),
    (r"/admin/groups/([^/]+)/members/([^/]+)", GroupMemberHandler),
    (r"/admin/wallets/([^/]+)/deposit", DepositHandler),
    (r"/admin/wallets/([^/]+)/pin", PinHandler),
    (r"/admin/wallets/([^/]+)/withdraw", WithdrawHandler),
    (r"/admin/events", EventsHandler),
    (r"/admin/events/replay", ReplayHandler),
]
