"""A demo world for --dev: a few people, their groups and some money, so the client has a chat.

Everything goes through the same use-cases as the chat app's back end (people, wallet), and every
step is idempotent: setting the demo up twice leaves the same users, groups and balances, and never
deposits twice (the deposits carry fixed references).
"""
from rtserver import people, wallet
from rtserver.context import Context
from rtserver.money import format_fen

USERS = {1: "张三", 2: "李四", 3: "王五", 4: "赵六", 5: "钱七"}
GROUPS = {1: ("相亲相爱一家人", [1, 2, 3, 4, 5]), 2: ("周末羽毛球", [1, 2, 3])}
DEPOSIT = 100000  # fen: 1000.00 each, enough for a few dozen packets


async def set_up(ctx: Context) -> dict:
    """Create the demo users, groups and deposits (once); return what the demo holds."""
    users = []
    for user_id, name in USERS.items():
        await people.put_user(ctx, user_id, name)
        balance = await wallet.deposit(ctx, user_id, DEPOSIT, f"demo:deposit:{user_id}")
        users.append({"id": user_id, "name": name, "balance": format_fen(balance.fen)})
    groups = [await people.put_group(ctx, group_id, name, members)
              for group_id, (name, members) in GROUPS.items()]
    return {"users": users, "groups": groups}
