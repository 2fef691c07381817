"""The browser client (static/), end to end in real headless Chromium against the test server.

Each test opens one browser context per person (a sender, a grabber, a late comer), signs in
through the page's own form (the server runs with --dev here, so /dev/token answers) and uses
the page as a person would. Screenshots of the main screens go to test-output/.
"""
import asyncio
import base64
import contextlib
import dataclasses
import os
import pathlib
import datetime
import math
import re
import time

import jwt
import pytest

from jobs.runner import JobRunner
from rtserver import auth, refund
from rtserver.money import format_fen, parse_amount
from storage import pins
from storage.queue import SettlementQueue
from tests.test_packets import create_and_pay
from tests.test_tokens import sleep_until
from tests.test_packets import create_and_pay

async_api = pytest.importorskip("playwright.async_api",
                                reason="playwright is not installed (make install puts it in .venv)")
expect = async_api.expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--no-first-run", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = pathlib.Path(__file__).resolve().parent.parent / "test-output"
PHONE = {"width": 420, "height": 800}
SANDBOX_DELAY = 1.5  # seconds before the dev sandbox gateway notifies: long enough to see 等待到账

pytestmark = pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK),
    reason=f"no Chromium at {CHROMIUM}: `make install` installs Debian's chromium when run as root")

expect.set_options(timeout=10_000)


@pytest.fixture
def settings(run_settings, request):
    """The page signs in through /dev/token and pays through the dev sandbox gateway; a test
    may change more settings with an indirect parameter."""
    return dataclasses.replace(run_settings, **{"dev": True, "sandbox_delay": SANDBOX_DELAY,
                                                **getattr(request, "param", {})})


@contextlib.asynccontextmanager
async def chromium():
    async with async_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


class Person:
    """One browser context signed in as one user; it remembers every error the page threw."""

    def __init__(self, page, errors: list, sockets: list | None = None):
        self.page, self.errors = page, errors
        self.sockets = [] if sockets is None else sockets  # the page's WebSockets, as opened

    @classmethod
    async def sign_in(cls, browser, base_url: str, user_id: int, block_msgpack: bool = False):
        context = await browser.new_context(viewport=PHONE, locale="zh-CN")
        page = await context.new_page()
        errors, sockets = [], []
        page.on("pageerror", lambda error: errors.append(error))
        page.on("websocket", lambda ws: sockets.append(ws))
        if block_msgpack:
            await page.route("**/vendor/msgpack/**", lambda route: route.abort())
        await page.goto(base_url + "/")
        await page.fill("#signin-uid", str(user_id))
        await page.click("#signin-btn")
        await expect(page.locator("#chats")).to_be_visible()
        await expect(page.locator("#me-name")).not_to_be_empty()
        return cls(page, errors, sockets)

    async def token_exp(self, secret: str) -> int:
        """The `exp` of the token the page holds now."""
        token = await self.page.evaluate("sessionStorage.getItem('rt.token')")
        return jwt.decode(token, secret, algorithms=["HS256"])["exp"]

    async def open_room(self, key: str):
        await self.page.click(f".chat-item[data-room='{key}']")
        await expect(self.page.locator("#room")).to_be_visible()

    async def balance(self) -> int:
        return parse_amount(await self.page.locator("#balance").text_content())

    async def shot(self, name: str):
        SCREENSHOTS.mkdir(exist_ok=True)
        await self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), animations="disabled")

    def last_packet(self):
        return self.page.locator(".rp-bubble").last

    async def type_pin(self, title: str, pin: str):
        """Type a PIN on the pad's keypad once it asks for it under `title`."""
        await expect(self.page.locator(".pin-title")).to_have_text(title)
        await expect(self.page.locator(".pin-box.filled")).to_have_count(0)
        for digit in pin:
            await self.page.click(f".pin-key[data-key='{digit}']")


async def overview(browser, names: list[str]) -> None:
    """Put screenshots side by side in test-output/overview.png (README's docs/screenshot.png)."""
    images = "".join(
        '<img src="data:image/png;base64,%s">'
        % base64.b64encode((SCREENSHOTS / f"{name}.png").read_bytes()).decode() for name in names)
    gap = 16
    page = await browser.new_page(viewport={"width": len(names) * (PHONE["width"] + gap) + gap,
                                            "height": PHONE["height"] + 2 * gap})
    await page.set_content(f'<body style="margin:0;padding:{gap}px;display:flex;gap:{gap}px;'
                           f'background:#d8d8d8">{images}</body>')
    await page.screenshot(path=str(SCREENSHOTS / "overview.png"))
    await page.close()


async def three_in_a_group(admin, names=("张三", "李四", "王五"), deposit="100.00"):
    users = [await admin.user(name) for name in names]
    gid = await admin.group(users, "相亲相爱一家人")
    for uid in users:
        await admin.deposit(uid, deposit)
    return gid, users


@pytest.mark.gen_test(timeout=90)
async def test_lucky_packet_sent_from_the_form_grabbed_and_too_slow(admin, base_url, audit):
    gid, (alice, bob, carol) = await three_in_a_group(admin)
    async with chromium() as browser:
        sender = await Person.sign_in(browser, base_url, alice)
        grabber = await Person.sign_in(browser, base_url, bob)
        late = await Person.sign_in(browser, base_url, carol)
        await expect(sender.page.locator("#protocol")).to_have_text("rp.v1.msgpack")
        await sender.shot("chats")

        for person in (sender, grabber, late):
            await person.open_room(f"g:{gid}")
        await sender.page.fill("#chat-input", "大家好，发红包啦")
        await sender.page.click("#chat-send")
        await expect(grabber.page.locator(".bubble", has_text="大家好，发红包啦")).to_be_visible()

        # The form checks what the server would refuse, while typing.
        form = sender.page
        await form.click("#rp-btn")
        await expect(form.locator("#send")).to_be_visible()
        await expect(form.locator("label[for=rp-amount]")).to_contain_text("总金额")
        await form.fill("#rp-number", "4")
        await expect(form.locator("#send-error")).to_have_text("红包个数不可超过当前群聊人数（3人）")
        await expect(form.locator("#rp-send")).to_be_disabled()
        await form.fill("#rp-number", "2")
        await form.fill("#rp-amount", "500")
        await expect(form.locator("#send-error")).to_have_text("单个红包金额不可超过200.00元")
        await form.fill("#rp-amount", "10.001")
        await expect(form.locator("#send-error")).to_contain_text("最多两位小数")
        await form.fill("#rp-amount", "10")
        await form.fill("#rp-intro", "长" * 26)
        await expect(form.locator("#send-error")).to_have_text("祝福语不能超过25个字")
        await form.fill("#rp-intro", "新年快乐")
        await expect(form.locator("#send-error")).to_be_hidden()
        await expect(form.locator("#rp-total")).to_have_text("10.00")
        await sender.shot("send_form")
        await form.click("#rp-send")

        await expect(sender.page.locator("#room")).to_be_visible()
        await expect(sender.last_packet()).to_contain_text("新年快乐")
        await expect(sender.page.locator("#balance")).to_have_text("90.00")
        await sender.shot("room_sender")

        # The grabber: the envelope, 開, the amount and the detail page.
        await expect(grabber.last_packet()).to_contain_text("新年快乐")
        await grabber.last_packet().click()
        await expect(grabber.page.locator(".open-btn")).to_have_text("開")
        await expect(grabber.page.locator(".env-card")).to_contain_text("张三发出的红包")
        await grabber.shot("envelope")
        await grabber.page.click(".open-btn")
        await expect(grabber.page.locator("#detail")).to_be_visible()
        money = await grabber.page.locator(".detail-money").text_content()
        won = parse_amount(money)
        assert 1 <= won <= 999
        await expect(grabber.page.locator(".detail-arrival")).to_have_text("已存入零钱，可直接消费")
        await expect(grabber.page.locator(".detail-summary")).to_have_text(
            f"已领取1/2个，共{money}/10.00元")
        await expect(grabber.page.locator(".grab")).to_have_count(1)
        await expect(grabber.page.locator("#balance")).to_have_text(format_fen(10000 + won))
        await grabber.shot("detail_grabber")

        # The sender takes the other share of their own group packet: it is finished.
        await expect(sender.page.locator(".note")).to_have_text("李四领取了你的红包")
        await sender.last_packet().click()
        await sender.page.click(".open-btn")
        await expect(sender.page.locator(".detail-summary")).to_have_text(
            re.compile(r"^2个红包共10\.00元，\d+秒被抢光$"))
        await expect(sender.page.locator(".grab")).to_have_count(2)
        await expect(sender.page.locator(".grab .best")).to_have_count(1)
        await expect(sender.page.locator(".grab .best")).to_have_text("♛手气最佳")
        rest = 1000 - won
        await expect(sender.page.locator(".detail-money")).to_have_text(format_fen(rest))
        await expect(sender.page.locator("#balance")).to_have_text(format_fen(9000 + rest))
        best = sender.page.locator(".grab", has=sender.page.locator(".best"))
        await expect(best.locator(".grab-money")).to_have_text(f"{format_fen(max(won, rest))}元")
        await sender.shot("detail_sender")

        # Too slow: the bubble already says so, and the envelope has no 開.
        await expect(late.last_packet()).to_contain_text("已被领完")
        await late.last_packet().click()
        await expect(late.page.locator(".env-words")).to_have_text("手慢了，红包派完了")
        await expect(late.page.locator(".open-btn")).to_have_count(0)
        await late.shot("too_slow")
        await late.page.click(".env-link")
        await expect(late.page.locator(".grab")).to_have_count(2)
        await expect(late.page.locator(".detail-money")).to_have_count(0)
        await expect(late.page.locator("#balance")).to_have_text("100.00")

        # The grabber's room and 我的红包.
        await grabber.page.click("#detail .back")
        await expect(grabber.last_packet()).to_contain_text("已领取")
        await expect(grabber.page.locator(".note")).to_have_text("你领取了张三的红包")
        await grabber.shot("room_grabber")
        await grabber.page.click("#room .back")
        await grabber.page.click("#mybox-btn")
        await expect(grabber.page.locator("#box-total")).to_have_text(f"{money}元")
        await expect(grabber.page.locator("#box-count")).to_have_text("1")
        await expect(grabber.page.locator("#box-best")).to_have_text("1" if won >= rest else "0")
        await expect(grabber.page.locator(".box-item")).to_contain_text(money)
        await grabber.shot("my_packets")
        await grabber.page.click("#box-sent")
        await expect(grabber.page.locator(".box-who")).to_have_text("李四共发出")
        await expect(grabber.page.locator("#box-count")).to_have_text("0")

        for person in (sender, grabber, late):
            assert not person.errors
        await overview(browser, ["room_sender", "envelope", "detail_sender", "my_packets"])
    audit()


@pytest.mark.gen_test(timeout=60)
async def test_notices_are_gray_lines_in_the_stream_live_and_from_history(
        admin, connect, base_url, audit):
    gid, (alice, bob, carol) = await three_in_a_group(admin)
    pays, grabbers = await connect(alice), [await connect(bob), await connect(carol)]
    lines = ["李四领取了你的红包", "王五领取了你的红包", "你的红包已被领完"]
    async with chromium() as browser:
        sender = await Person.sign_in(browser, base_url, alice)
        await sender.open_room(f"g:{gid}")
        rp_id = await create_and_pay(pays, type=3, for_id=gid, number=2, amount="2.00")
        await expect(sender.last_packet()).to_be_visible()
        for grabber in grabbers:
            assert (await grabber.request("packet.grab", rp_id=rp_id))["result"] == "ok"
        await expect(sender.page.locator("#stream .note")).to_have_text(lines)  # live
        await sender.shot("notices_live")

        # Signed in afresh, the page has them from chat.history: after the packet, in order,
        # and only the grabber's own line for the grabber.
        again = await Person.sign_in(browser, base_url, alice)
        await again.open_room(f"g:{gid}")
        await expect(again.page.locator("#stream .note")).to_have_text(lines)
        stream = await again.page.locator("#stream > *").evaluate_all(
            "items => items.map((item) => item.classList.contains('note') ? 'note'"
            " : item.querySelector('.rp-bubble') ? 'packet' : null).filter(Boolean)")
        assert stream == ["packet", "note", "note", "note"]
        await again.shot("notices_history")
        grabber = await Person.sign_in(browser, base_url, bob)
        await grabber.open_room(f"g:{gid}")
        await expect(grabber.page.locator("#stream .note")).to_have_text(["你领取了张三的红包"])
        await grabber.shot("notices_grabber")
        for person in (sender, again, grabber):
            assert not person.errors
    audit()


@pytest.mark.gen_test(timeout=60)
async def test_personal_packet_and_the_servers_refusal(admin, base_url, audit):
    alice, bob = await admin.user("张三"), await admin.user("李四")
    await admin.deposit(alice, "6.00")
    async with chromium() as browser:
        sender = await Person.sign_in(browser, base_url, alice)
        receiver = await Person.sign_in(browser, base_url, bob)

        await sender.page.fill("#dm-uid", str(bob))
        await sender.page.click("#dm-form button")
        await expect(sender.page.locator("#room")).to_be_visible()
        await sender.page.click("#rp-btn")
        await expect(sender.page.locator("label[for=rp-amount]")).to_have_text("金额")
        await expect(sender.page.locator("#rp-number")).to_have_count(0)
        await sender.page.fill("#rp-amount", "200.01")
        await expect(sender.page.locator("#send-error")).to_have_text("单个红包金额不可超过200.00元")
        # Within the limits but more than the balance: only the server knows, and says so.
        await sender.page.fill("#rp-amount", "10")
        await sender.page.click("#rp-send")
        await expect(sender.page.locator("#send-error")).to_have_text(
            "零钱余额不足（balance is less than 10.00）")
        await sender.shot("send_refused")
        await sender.page.fill("#rp-amount", "5.2")
        await sender.page.click("#rp-send")
        await expect(sender.last_packet()).to_contain_text("恭喜发财，大吉大利")
        await expect(sender.page.locator("#balance")).to_have_text("0.80")

        await receiver.open_room(f"u:{alice}")
        await expect(receiver.last_packet()).to_contain_text("领取红包")
        await receiver.last_packet().click()
        await receiver.page.click(".open-btn")
        await expect(receiver.page.locator(".detail-money")).to_have_text("5.20")
        await expect(receiver.page.locator(".detail-summary")).to_have_text("红包金额5.20元，已被领取")
        await expect(receiver.page.locator("#balance")).to_have_text("5.20")

        # The sender cannot open their own personal packet: the tap shows who took it.
        await expect(sender.last_packet()).to_contain_text("已被领取")
        await sender.last_packet().click()
        await expect(sender.page.locator("#detail")).to_be_visible()
        await expect(sender.page.locator(".grab-name")).to_have_text("李四")
        await expect(sender.page.locator(".detail-money")).to_have_count(0)
        for person in (sender, receiver):
            assert not person.errors
    audit()


@pytest.mark.gen_test(timeout=90)
async def test_sandbox_payment_waits_for_arrival_then_arrives(admin, base_url, ctx, audit):
    gid, (alice, bob, carol) = await three_in_a_group(admin, deposit="1.00")
    runner = JobRunner(ctx)  # the settlement consumer, as `rtserver serve` runs it inline
    runner.start()
    try:
        async with chromium() as browser:
            sender = await Person.sign_in(browser, base_url, alice)
            grabber = await Person.sign_in(browser, base_url, bob)
            await sender.open_room(f"g:{gid}")
            await grabber.open_room(f"g:{gid}")
            await sender.page.click("#rp-btn")
            await sender.page.click("#rp-switch")  # 普通红包: each share the same
            await expect(sender.page.locator("label[for=rp-amount]")).to_contain_text("单个金额")
            await sender.page.fill("#rp-number", "2")
            await sender.page.fill("#rp-amount", "3")
            await expect(sender.page.locator("#rp-total")).to_have_text("6.00")
            await sender.page.select_option("#rp-pay", "sandbox")
            await sender.page.click("#rp-send")

            # Paid in the app, not yet by the provider's notification: 等待到账.
            await expect(grabber.last_packet()).to_contain_text("等待到账")
            await grabber.last_packet().click()
            await grabber.page.click(".open-btn")
            await expect(grabber.page.locator(".detail-money")).to_have_text("3.00")
            await expect(grabber.page.locator(".detail-arrival")).to_contain_text("到账中")
            await grabber.shot("sandbox_awaiting")

            # The notification lands, settlement credits the share: 到账.
            await expect(grabber.page.locator(".detail-arrival")).to_have_text(
                "已存入零钱，可直接消费")
            await expect(grabber.page.locator("#balance")).to_have_text("4.00")
            await expect(sender.last_packet()).not_to_contain_text("等待到账")
            await expect(sender.page.locator("#balance")).to_have_text("1.00")
            await grabber.shot("sandbox_arrived")
            for person in (sender, grabber):
                assert not person.errors
        await queue_drained(SettlementQueue(ctx.redis, ctx.keys))
    finally:
        await runner.stop()
    audit()


async def queue_drained(queue: SettlementQueue, within: float = 15) -> None:
    """Wait for the settler's second pass (5 s after the first): no work outlives the test."""
    for _ in range(int(within * 10)):
        if not await queue.redis.zcard(queue.delayed) and not await queue.redis.xlen(queue.stream):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the settlement queue did not drain")


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("settings", [{"packet_ttl": 4}], indirect=True)
async def test_an_expired_packet_says_so(admin, connect, base_url):
    gid, (alice, bob, carol) = await three_in_a_group(admin)
    sender = await connect(alice)
    async with chromium() as browser:
        late = await Person.sign_in(browser, base_url, bob)
        await late.open_room(f"g:{gid}")
        created = await sender.request("packet.create", type=3, for_id=gid, number=2,
                                       amount="2.00", pay_type="balance")
        assert (await sender.request("packet.pay", rp_id=created["rp_id"]))["ok"]
        await expect(late.last_packet()).to_contain_text("恭喜发财，大吉大利")
        await expect(late.last_packet()).not_to_contain_text("已过期")
        await asyncio.sleep(4.5)  # past the packet's time: it expires by the clock, unannounced
        await late.last_packet().click()
        await expect(late.page.locator(".env-words")).to_have_text(
            "该红包已超过24小时。如已领取，可在“我的红包”中查看")
        await expect(late.page.locator(".open-btn")).to_have_count(0)
        await late.shot("expired")
        await late.page.click(".env-close")
        await expect(late.last_packet()).to_contain_text("已过期")
        await late.last_packet().click()
        await late.page.click(".env-link")
        await expect(late.page.locator(".detail-summary")).to_have_text(
            "该红包已过期。已领取0/2个，共0.00/2.00元")
        assert not late.errors


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("settings", [{"rate_limit": 5}], indirect=True)
async def test_catching_up_many_rooms_waits_out_the_rate_limit(admin, connect, base_url):
    me, friend = await admin.user("张三"), await admin.user("李四")
    groups = [await admin.group([me, friend], f"群{n}") for n in range(14)]
    talkers = [await connect(friend), await connect(friend)]  # 7 each: within one burst of 10
    for n, gid in enumerate(groups):
        sent = await talkers[n % 2].request("chat.send", to_type="group", to_id=gid, text=f"第{n}条")
        assert sent["ok"], sent
    async with chromium() as browser:
        person = await Person.sign_in(browser, base_url, me)
        # 14 histories at once are more than a burst of 10: the refused ones are asked again.
        for n in range(14):
            await expect(person.page.locator(".chat-preview", has_text=f"李四: 第{n}条")).to_be_visible()
        assert not person.errors


@pytest.mark.gen_test(timeout=60)
async def test_demo_button_sets_up_a_world_and_signs_in(http_server, base_url):
    async with chromium() as browser:
        context = await browser.new_context(viewport=PHONE, locale="zh-CN")
        page = await context.new_page()
        await page.goto(base_url + "/")
        await Person(page, []).shot("signin")
        await page.click("#demo-btn")
        await expect(page.locator("#me-name")).to_have_text("张三")
        await expect(page.locator(".chat-item", has_text="相亲相爱一家人(5)")).to_be_visible()
        await expect(page.locator(".chat-item", has_text="周末羽毛球(3)")).to_be_visible()
        await expect(page.locator(".chat-item", has_text="钱七")).to_be_visible()
        await Person(page, []).shot("demo_chats")
        # Signed out, the demo people stay one click away.
        await page.click("#signout-btn")
        await expect(page.locator(".demo-user")).to_have_count(5)
        await page.click(".demo-user >> text=李四")
        await expect(page.locator("#me-name")).to_have_text("李四")


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("settings", [{"dev": False}], indirect=True)
async def test_outside_dev_the_chat_app_hands_the_token_in_the_url(admin, base_url, settings):
    uid = await admin.user("张三")
    async with chromium() as browser:
        page = await (await browser.new_context(viewport=PHONE)).new_page()
        await page.goto(base_url + "/")
        await page.fill("#signin-uid", str(uid))
        await page.click("#signin-btn")
        await expect(page.locator("#signin-error")).to_contain_text("未开启 --dev")
        await page.click("#demo-btn")
        await expect(page.locator("#signin-error")).to_have_text("演示数据只在 --dev 模式下提供")

        token = auth.issue_token(settings.token_secret, uid)
        await page.goto(f"{base_url}/#token={token}")
        await expect(page.locator("#me-name")).to_have_text("张三")
        assert token not in page.url, "the token leaves the address bar once read"


@pytest.mark.gen_test(timeout=60)
async def test_json_fallback_reconnects_and_catches_up(admin, connect, base_url, ctx):
    users = [await admin.user(name) for name in ("张三", "李四")]
    gid = await admin.group(users, "断线重连")
    async with chromium() as browser:
        person = await Person.sign_in(browser, base_url, users[0], block_msgpack=True)
        await expect(person.page.locator("#protocol")).to_have_text("rp.v1.json")
        await person.open_room(f"g:{gid}")
        other = await connect(users[1])
        await other.request("chat.send", to_type="group", to_id=gid, text="在线时的消息")
        await expect(person.page.locator(".bubble", has_text="在线时的消息")).to_be_visible()

        # The server drops every socket while the browser is offline; a message is sent meanwhile.
        await person.page.context.set_offline(True)
        ctx.hub.shut_all(1001, "restart")
        await expect(person.page.locator("#status")).to_be_visible()
        other = await connect(users[1])
        await other.request("chat.send", to_type="group", to_id=gid, text="断线时的消息")
        await person.page.context.set_offline(False)
        await expect(person.page.locator(".bubble", has_text="断线时的消息")).to_be_visible()
        await expect(person.page.locator("#status")).to_be_hidden()
        await expect(person.page.locator(".bubble", has_text="在线时的消息")).to_have_count(1)
        assert not person.errors


@pytest.mark.gen_test(timeout=90)
async def test_paying_with_the_pin_pad_a_wrong_pin_says_the_tries_left_then_the_lock(
        admin, base_url, ctx, audit):
    gid, (alice, _, _) = await three_in_a_group(admin)
    async with chromium() as browser:
        sender = await Person.sign_in(browser, base_url, alice)
        page = sender.page
        # 设置支付密码 from the 我 card: typed twice; then changed: the old one, the new twice.
        await page.click("#pin-btn")
        await sender.type_pin("设置支付密码", "135790")
        await sender.type_pin("请再次填写以确认", "135790")
        await expect(page.locator("#toast")).to_have_text("支付密码设置成功")
        await expect(page.locator("#pinpad")).to_be_hidden()
        await page.click("#pin-btn")
        await sender.type_pin("请输入原支付密码，以验证身份", "135790")
        await sender.type_pin("请设置新的支付密码", "246801")
        await sender.type_pin("请再次填写以确认", "246801")
        await expect(page.locator("#toast")).to_have_text("支付密码已修改")
        await expect(page.locator("#toast")).to_be_hidden()

        async def send_packet(total: str):
            await page.click("#rp-btn")
            await page.fill("#rp-number", "2")
            await page.fill("#rp-amount", total)
            await page.click("#rp-send")
            await expect(page.locator(".pin-amount")).to_have_text(f"¥{total}")

        await sender.open_room(f"g:{gid}")
        await send_packet("10.00")
        await sender.shot("pin_pad")
        await sender.type_pin("请输入支付密码", "135790")  # the old one: wrong now
        await expect(page.locator(".pin-error")).to_have_text("支付密码错误，剩余次数：4")
        await expect(page.locator(".pin-box.filled")).to_have_count(0)
        await sender.shot("pin_wrong")
        await sender.type_pin("请输入支付密码", "246801")
        await expect(page.locator("#room")).to_be_visible()
        await expect(page.locator("#pinpad")).to_be_hidden()
        await expect(sender.last_packet()).to_contain_text("恭喜发财，大吉大利")
        await expect(page.locator("#balance")).to_have_text("90.00")

        # Five wrong in a row: the pad closes, and the form says until when, in Beijing time.
        await send_packet("5.00")
        for left in (4, 3, 2, 1):
            await sender.type_pin("请输入支付密码", "000000")
            await expect(page.locator(".pin-error")).to_have_text(f"支付密码错误，剩余次数：{left}")
        await sender.type_pin("请输入支付密码", "000000")
        await expect(page.locator("#pinpad")).to_be_hidden()
        async with ctx.db.cursor() as cur:
            until = (await pins.get(cur, alice)).locked_until
        beijing = datetime.datetime.fromtimestamp(
            math.ceil(until / 60) * 60, datetime.timezone(datetime.timedelta(hours=8)))
        await expect(page.locator("#send-error")).to_have_text(
            f"支付密码已锁定，请于北京时间{beijing:%Y-%m-%d %H:%M}后重试")
        await expect(page.locator("#balance")).to_have_text("90.00")
        await sender.shot("pin_locked")
        assert not sender.errors
    audit()


SHORT_TOKEN = 4  # seconds: a token that runs out while the test watches


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("settings", [{"dev_token_ttl": SHORT_TOKEN}], indirect=True)
async def test_a_page_renews_its_token_before_it_runs_out_and_stays_connected(
        admin, base_url, settings):
    uid = await admin.user("张三")
    async with chromium() as browser:
        person = await Person.sign_in(browser, base_url, uid)
        first = await person.token_exp(settings.token_secret)
        await sleep_until(first + 1.5)  # the server would have closed the socket at `first`
        assert await person.token_exp(settings.token_secret) > first
        assert len(person.sockets) == 1 and not person.sockets[0].is_closed()
        await expect(person.page.locator("#status")).to_be_hidden()
        await expect(person.page.locator("#me-name")).to_have_text("张三")
        assert not person.errors


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("settings", [{"dev_token_ttl": SHORT_TOKEN}], indirect=True)
async def test_a_page_whose_token_ran_out_gets_a_new_one_and_reconnects(
        admin, base_url, settings):
    uid = await admin.user("张三")
    async with chromium() as browser:
        person = await Person.sign_in(browser, base_url, uid)
        first = await person.token_exp(settings.token_secret)
        refused = []

        async def refuse_the_first_renewal(route):
            if refused:
                return await route.continue_()
            refused.append(route.request.url)
            await route.abort()
        await person.page.route("**/dev/token", refuse_the_first_renewal)

        # Without its renewal the socket is closed (4001) at `first`; the page asks again.
        await person.page.wait_for_event("websocket", timeout=15_000)
        assert refused and person.sockets[0].is_closed()
        await expect(person.page.locator("#status")).to_be_hidden()
        await expect(person.page.locator("#me-name")).to_have_text("张三")
        assert len(person.sockets) == 2, "it tried the old token first, and was refused"
        assert await person.token_exp(settings.token_secret) > first
        assert not person.errors


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("settings", [{"dev": False}], indirect=True)
async def test_a_chat_app_page_asks_the_chat_app_for_its_next_token(admin, base_url, settings):
    uid = await admin.user("张三")
    asked = []

    def chat_app_token():
        asked.append(time.time())
        return auth.issue_token(settings.token_secret, uid, ttl=SHORT_TOKEN)

    async with chromium() as browser:
        context = await browser.new_context(viewport=PHONE, locale="zh-CN")
        # The chat app's side (a WebView's injected script): answer the page's call with a token.
        await context.expose_function("chatAppToken", chat_app_token)
        await context.add_init_script("""
            addEventListener("message", async (e) => {
              if (e.data && e.data.type === "rtserver.token_needed") {
                location.hash = "token=" + await window.chatAppToken();
              }
            });""")
        page = await context.new_page()
        sockets = []
        page.on("websocket", lambda ws: sockets.append(ws))
        first = int(time.time()) + SHORT_TOKEN
        await page.goto(f"{base_url}/#token={auth.issue_token(settings.token_secret, uid, SHORT_TOKEN)}")
        await expect(page.locator("#me-name")).to_have_text("张三")
        await page.evaluate("window.sameDocument = true")
        await sleep_until(first + 1.5)
        assert asked, "the page never asked the chat app"
        assert len(sockets) == 1 and not sockets[0].is_closed()
        assert await page.evaluate("window.sameDocument"), "the page was loaded again"
        assert "token" not in page.url


@pytest.mark.gen_test(timeout=90)
@pytest.mark.parametrize("settings", [{"daily_send_count": 1}], indirect=True)
async def test_the_ledger_page_and_the_servers_words_for_a_limit_and_a_freeze(
        admin, connect, base_url, audit):
    alice, bob = await admin.user("张三"), await admin.user("李四")
    await admin.deposit(alice, "10.00")
    for n in range(22):
        await admin.deposit(bob, "1.00")
    a, b = await connect(alice), await connect(bob)
    from_alice = await create_and_pay(a, type=1, for_id=bob, amount="1.23")
    assert (await b.request("packet.grab", rp_id=from_alice))["result"] == "ok"
    await create_and_pay(b, type=1, for_id=alice, amount="2.00")
    status, _ = await admin.call("POST", f"/admin/wallets/{bob}/withdraw",
                                 {"amount": "5.00", "ref": f"bank-card-{bob}"})
    assert status == 200
    async with chromium() as browser:
        person = await Person.sign_in(browser, base_url, bob)
        page = person.page
        await expect(page.locator("#balance")).to_have_text("16.23")
        await person.shot("ledger_entry")
        await page.click("#ledger-btn")
        await expect(page.locator("#ledger")).to_be_visible()
        rows = page.locator(".ledger-item")
        await expect(rows).to_have_count(20)
        for i, (title, amount) in enumerate([("提现", "-5.00"), ("发出红包", "-2.00"),
                                             ("张三的红包", "+1.23"), ("充值", "+1.00")]):
            await expect(rows.nth(i).locator(".ledger-title")).to_have_text(title)
            await expect(rows.nth(i).locator(".ledger-amount")).to_have_text(amount)
        await expect(rows.first.locator(".ledger-balance")).to_have_text("余额 16.23")
        await person.shot("ledger")
        await page.locator(".ledger-body").evaluate("body => body.scrollTo(0, body.scrollHeight)")
        await expect(rows).to_have_count(25)  # the next page, fetched at the end of the list
        await expect(page.locator("#ledger-more")).to_have_text("没有更多了")
        await rows.nth(2).click()  # a packet's row opens its detail
        await expect(page.locator(".detail-money")).to_have_text("1.23")
        await page.click("#detail .back")
        await expect(rows).to_have_count(25)

        # A second packet today is one past --daily-send-count: the server's words say so.
        await page.click("#ledger .back")
        await page.fill("#dm-uid", str(alice))
        await page.click("#dm-form button")
        await page.click("#rp-btn")
        await page.fill("#rp-amount", "1")
        await page.click("#rp-send")
        await expect(page.locator("#send-error")).to_have_text(
            "已超过今日发红包的限额（at most 1 packets a day may be sent）")
        await person.shot("limit_reached")

        # A frozen account opens the envelope, but the 開 is refused.
        status, _ = await admin.call("PUT", f"/admin/users/{alice}/frozen",
                                     {"frozen": True, "reason": "风控"})
        assert status == 200
        frozen = await Person.sign_in(browser, base_url, alice)
        await frozen.page.fill("#dm-uid", str(bob))
        await frozen.page.click("#dm-form button")
        await frozen.last_packet().click()
        await frozen.page.click(".open-btn")
        await expect(frozen.page.locator(".env-words")).to_have_text(
            "你的账户已被冻结（this account is frozen）")
        await frozen.shot("frozen")
        await expect(frozen.page.locator("#balance")).to_have_text("8.77")
        for someone in (person, frozen):
            assert not someone.errors
    audit()


@pytest.mark.gen_test(timeout=90)
@pytest.mark.parametrize("settings", [{"packet_ttl": 6}], indirect=True)
async def test_an_exclusive_packet_from_the_member_picker_opens_to_its_member_alone(
        admin, base_url, ctx, audit):
    gid, (alice, bob, carol) = await three_in_a_group(admin)
    async with chromium() as browser:
        sender = await Person.sign_in(browser, base_url, alice)
        chosen = await Person.sign_in(browser, base_url, bob)
        other = await Person.sign_in(browser, base_url, carol)
        for person in (sender, chosen, other):
            await person.open_room(f"g:{gid}")

        form = sender.page
        await form.click("#rp-btn")
        await form.click("#rp-exclusive")
        # The picker lists the group's other members, from group.members.
        await expect(form.locator("#rp-to option")).to_have_text(["选择群成员", "李四", "王五"])
        await expect(form.locator("#rp-number")).to_have_count(0)
        await expect(form.locator("#rp-password")).to_have_count(0)
        await form.fill("#rp-amount", "3")
        await expect(form.locator("#send-error")).to_have_text("请选择领取人")
        await expect(form.locator("#rp-send")).to_be_disabled()
        await form.select_option("#rp-to", str(bob))
        await form.fill("#rp-amount", "200.01")
        await expect(form.locator("#send-error")).to_have_text("单个红包金额不可超过200.00元")
        await form.fill("#rp-amount", "3")
        await form.fill("#rp-intro", "给李四的")
        await expect(form.locator("#send-error")).to_be_hidden()
        await sender.shot("exclusive_form")
        await form.click("#rp-send")
        await expect(sender.last_packet()).to_contain_text("李四的专属红包")
        await expect(sender.page.locator("#balance")).to_have_text("97.00")

        # Someone else sees whose it is, and no 開.
        await expect(other.last_packet()).to_contain_text("李四的专属红包")
        await other.last_packet().click()
        await expect(other.page.locator(".env-words")).to_have_text("仅李四可领取")
        await expect(other.page.locator(".env-card")).to_contain_text("张三发给李四的专属红包")
        await expect(other.page.locator(".open-btn")).to_have_count(0)
        await other.shot("exclusive_not_yours")
        await other.page.click(".env-close")

        await expect(chosen.last_packet()).to_contain_text("给你的专属红包")
        await chosen.last_packet().click()
        await chosen.shot("exclusive_envelope")
        await chosen.page.click(".open-btn")
        await expect(chosen.page.locator(".detail-money")).to_have_text("3.00")
        await expect(chosen.page.locator(".detail-for")).to_have_text("李四的专属红包")
        await expect(chosen.page.locator(".detail-summary")).to_have_text("红包金额3.00元，已被领取")
        await expect(chosen.page.locator("#balance")).to_have_text("103.00")
        await chosen.shot("exclusive_detail")

        # Expired and refunded with nothing left to return: no 未领取的0.00元已退回.
        await asyncio.sleep(6.5)
        await refund.refund_expired(ctx)
        await sender.last_packet().click()
        await expect(sender.page.locator(".grab-name")).to_have_text("李四")
        await expect(sender.page.locator(".detail-foot")).to_have_count(0)
        for person in (sender, chosen, other):
            assert not person.errors
    audit()


@pytest.mark.gen_test(timeout=90)
@pytest.mark.parametrize("settings", [{"max_share": "50.00", "max_shares": 5}], indirect=True)
async def test_a_password_packet_shows_its_phrase_and_its_button_says_it(admin, base_url, audit):
    gid, (alice, bob, carol) = await three_in_a_group(admin)
    async with chromium() as browser:
        sender = await Person.sign_in(browser, base_url, alice)
        grabber = await Person.sign_in(browser, base_url, bob)
        for person in (sender, grabber):
            await person.open_room(f"g:{gid}")

        # The form checks with the limits the server's flags set, as hello told them.
        form = sender.page
        await form.click("#rp-btn")
        await form.fill("#rp-number", "2")
        await form.fill("#rp-amount", "100.01")
        await expect(form.locator("#send-error")).to_have_text("单个红包金额不可超过50.00元")
        await form.fill("#rp-amount", "4")
        await form.fill("#rp-password", "芝麻开门" * 6)
        await expect(form.locator("#rp-password")).to_have_value("芝麻开门" * 5)  # 20 at most
        await form.fill("#rp-password", "芝麻开门")
        await expect(form.locator("#send-error")).to_be_hidden()
        await sender.shot("password_form")
        await form.click("#rp-send")
        await expect(sender.last_packet()).to_contain_text("口令：芝麻开门")
        await expect(sender.page.locator("#balance")).to_have_text("96.00")

        await expect(grabber.last_packet()).to_contain_text("口令：芝麻开门")
        await grabber.last_packet().click()
        await expect(grabber.page.locator(".env-phrase")).to_have_text("口令：芝麻开门")
        await expect(grabber.page.locator(".say-btn")).to_have_text("说口令领红包")
        await grabber.shot("password_envelope")
        await grabber.page.click(".say-btn")
        await expect(grabber.page.locator("#detail")).to_be_visible()
        won = parse_amount(await grabber.page.locator(".detail-money").text_content())
        await expect(grabber.page.locator("#balance")).to_have_text(format_fen(10000 + won))

        # The phrase is said in the room, as the grabber's own message.
        said = sender.page.locator(".bubble", has_text="芝麻开门")
        await expect(said).to_have_count(1)
        await sender.shot("password_said")
        for person in (sender, grabber):
            assert not person.errors
    audit()


@pytest.mark.gen_test(timeout=60)
async def test_the_detail_line_of_a_voided_or_unpaid_personal_packet_does_not_wait(
        admin, base_url):
    me = await admin.user("张三")
    async with chromium() as browser:
        person = await Person.sign_in(browser, base_url, me)
        lines = await person.page.evaluate("""async () => {
            const { summaryLine } = await import("/js/packets.js");
            const packet = (type, status, extra) => ({ type, status, total: "5.00", number: 1,
                grabbed_count: 0, grabbed_total: "0.00", ...extra });
            return [packet(1, "voided"), packet(1, "unpaid"), packet(1, "active"),
                    packet(4, "voided"), packet(4, "active", { to_user: { id: 2, name: "李四" } })]
                .map(summaryLine);
        }""")
        assert lines == ["红包金额5.00元，该红包未支付成功，已失效", "红包金额5.00元，尚未支付",
                         "红包金额5.00元，等待对方领取", "红包金额5.00元，该红包未支付成功，已失效",
                         "红包金额5.00元，等待李四领取"]
        assert not person.errors
