"""The payment providers, one module each, and the ones this server has keys for.

Each provider signs, calls and verifies exactly as its own API documentation prescribes; what a
verified answer does to money is decided in `rtserver.payments`, never here. A provider gives:
`place` (the order at the provider, for the app), `app_params` (what the app's SDK takes),
`verify` (a notification) and `answer` (our reply to it); one that `places_orders` also
`query`, `close`, `refund` and `query_refund`, through its own `calls.Caller`.
"""
from rtserver.config import Settings
from rtserver.providers.alipay import Alipay
from rtserver.providers.sandbox import Sandbox
from rtserver.providers.unionpay import UnionPay
from rtserver.providers.wechat import WechatPay


PROVIDERS = (Alipay, WechatPay, UnionPay, Sandbox)


def load_providers(settings: Settings) -> dict:
    """The providers this server has keys for, by name."""
    found = {}
    for kind in PROVIDERS:
        provider = kind.from_settings(settings)
        if provider is not None:
            found[provider.name] = provider
    return found
