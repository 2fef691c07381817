"""Provisioning by the chat app's back end: users, groups, members."""
import time

from rtserver.context import Context
from rtserver.errors import BadRequest, Forbidden, NotFound
from rtserver.uow import UnitOfWork
from storage import people


async def put_user(ctx: Context, user_id: int, name: str) -> dict:
    async with UnitOfWork(ctx) as uow:
        await people.put_user(uow.cur, user_id, name, int(time.time()))
        uow.after_commit(lambda: tell_nodes_renamed(ctx, user_id))
        await uow.commit()
    return {"id": user_id, "name": name}


async def put_group(ctx: Context, group_id: int, name: str, members: list[int]) -> dict:
    """Create or rename a group and make its members exactly `members`."""
    async with UnitOfWork(ctx) as uow:
        await _check_users_exist(uow.cur, members)
        await people.put_group(uow.cur, group_id, name, int(time.time()))
        before = set(await people.member_ids(uow.cur, group_id))
        added = await people.add_members(uow.cur, group_id, members, int(time.time()))
        removed = await people.remove_members(uow.cur, group_id, before - set(members),
                                              int(time.time()))
        _after_membership_change(uow, group_id, added, removed)
        await uow.commit()
    return {"id": group_id, "name": name, "members": sorted(set(members))}


async def add_members(ctx: Context, group_id: int, user_ids: list[int]) -> dict:
    async with UnitOfWork(ctx) as uow:
        await _check_group_exists(uow.cur, group_id)
        await _check_users_exist(uow.cur, user_ids)
        added = await people.add_members(uow.cur, group_id, user_ids, int(time.time()))
        _after_membership_change(uow, group_id, added, [])
        members = await people.member_ids(uow.cur, group_id)
        await uow.commit()
    return {"id": group_id, "members": members}


async def remove_member(ctx: Context, group_id: int, user_id: int) -> dict:
    async with UnitOfWork(ctx) as uow:
        await _check_group_exists(uow.cur, group_id)
        removed = await people.remove_members(uow.cur, group_id, [user_id], int(time.time()))
        if not removed:
            raise NotFound(f"user {user_id} is not a member of group {group_id}")
        _after_membership_change(uow, group_id, [], removed)
        members = await people.member_ids(uow.cur, group_id)
        await uow.commit()
    return {"id": group_id, "members": members}


def _after_membership_change(uow: UnitOfWork, group_id: int, added, removed) -> None:
    if not (added or removed):
        return
    ctx = uow.ctx

    uow.after_commit(lambda: tell_nodes_members_changed(ctx, group_id, added, removed))


async def tell_nodes_renamed(ctx: Context, user_id: int) -> None:
    await ctx.bus.renamed(user_id)


async def tell_nodes_members_changed(ctx: Context, group_id: int, added, removed) -> None:
    """Every node drops its copy of the member list and moves its connections between rooms."""
    await ctx.bus.members_changed(group_id, list(added), list(removed))


async def _check_users_exist(cur, user_ids) -> None:
    missing = await people.missing_users(cur, user_ids)
    if missing:
        raise BadRequest(f"unknown users: {missing}")


async def _check_group_exists(cur, group_id: int) -> None:
    if not await people.get_group(cur, group_id):
        raise NotFound(f"no group {group_id}")


async def members(ctx: Context, user_id: int, group_id: int) -> dict:
    """A group's members with their names, for pickers such as the 专属红包 form: only to a
    member (a group that does not exist has none, so asking for one is `forbidden` too)."""
    async with ctx.db.cursor() as cur:
        ids = await people.member_ids(cur, group_id)
        if user_id not in ids:
            raise Forbidden("not a member of this group")
        names = await people.names(cur, ids)
    return {"members": [{"id": uid, "name": names.get(uid, "")} for uid in ids]}
