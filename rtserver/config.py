"""Every flag of `rtserver`, declared once; each also read from `RTSERVER_<FLAG>`."""
import dataclasses
import os

from tornado.options import OptionParser

from rtserver.errors import InvalidAmount
from rtserver.limits import DailyLimit, limits_of
from rtserver.money import parse_amount

DEV_SECRET = "rtserver-dev-only-secret"


def flag(default, help: str):
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class Settings:
    """The flags as one immutable value. The command line is built from these fields."""

    port: int = flag(8888, "HTTP and WebSocket port")
    address: str = flag("127.0.0.1", "address to listen on")
    processes: int = flag(1, "serve processes sharing the port (SO_REUSEPORT), supervised")
    mysql_url: str = flag("mysql://root@127.0.0.1:3306/rtserver", "mysql://user:pass@host:port/db")
    redis_url: str = flag("redis://127.0.0.1:6379/0", "redis://host:port/db")
    redis_prefix: str = flag("rt:", "prefix of every Redis key and channel")
    redis_cluster: bool = flag(False, "--redis-url names one node of a Redis Cluster")
    token_secret: str = flag("", "HS256 secret of user tokens")
    admin_token: str = flag("", "bearer token of the admin API")
    packet_ttl: int = flag(86400, "seconds a paid packet stays grabbable")
    payment_timeout: int = flag(1800, "seconds a packet may wait in pay_status 2")
    job_interval: float = flag(10.0, "seconds between job sweeps")
    jobs: str = flag("inline", "inline (run the jobs in this process) or off")
    dev: bool = flag(False, "development mode: /dev/token, demo data, development secrets")
    dev_token_ttl: int = flag(7 * 86400, "seconds a --dev token from /dev/token lasts")
    rate_limit: int = flag(50, "requests per second per connection (0: off)")
    allowed_origins: str = flag("", "comma-separated origins allowed to open the socket")
    max_frame: int = flag(64 * 1024, "largest frame answered, in bytes (bigger: bad_frame)")
    max_connections_per_user: int = flag(20, "sockets one user may have open on this node")
    max_connections: int = flag(50000, "sockets this node keeps open at most")
    header_timeout: float = flag(10.0, "seconds an HTTP request's headers may take to arrive")
    accept_rate: float = flag(300.0, "new connections this process serves a second at most, "
                              "in bursts of as many, once their first request has arrived; the "
                              "rest wait their turn (0: off)")
    pin_lock: int = flag(10800, "seconds a payment password stays locked after five wrong tries")
    require_pin: bool = flag(False, "every balance payment needs a payment password: users "
                             "without one get pin_required")
    max_shares: int = flag(100, "shares a group packet may have at most")
    min_share: str = flag("0.01", "the smallest share of any packet")
    max_share: str = flag("200.00", "the largest share of a group packet")
    max_personal: str = flag("200.00", "the largest personal or exclusive packet")
    max_payment: str = flag("20000.00", "the largest total of one packet")
    uvloop: bool = flag(True, "run on uvloop's event loop (--uvloop=false: asyncio's own)")
    alipay_app_id: str = flag("", "our Alipay app id")
    alipay_public_key_file: str = flag("", "Alipay's public key (PEM)")
    alipay_private_key_file: str = flag("", "our Alipay merchant private key (PEM)")
    wechat_mchid: str = flag("", "our WeChat Pay merchant id")
    wechat_apiv3_key: str = flag("", "WeChat Pay API v3 key (32 bytes)")
    wechat_platform_public_key_file: str = flag("", "WeChat Pay platform public key (PEM)")
    unionpay_public_key_file: str = flag("", "UnionPay's public key (PEM)")
    unionpay_mer_id: str = flag("", "our UnionPay merchant id (merId)")
    public_url: str = flag("", "this service's public base URL: notify_url and backUrl start so")
    order_query_after: int = flag(30, "seconds after which an order with no notification is queried")
    refund_to: str = flag("original", "refunds of provider payments: original (back to the "
                          "payment method) or balance")
    provider_timeout: float = flag(5.0, "seconds a call to a payment provider may take")
    wechat_appid: str = flag("", "our WeChat open-platform app id (appid)")
    wechat_merchant_private_key_file: str = flag("", "our WeChat Pay merchant private key (PEM)")
    wechat_merchant_serial: str = flag("", "serial number of our WeChat Pay merchant certificate")
    wechat_api_base: str = flag("https://api.mch.weixin.qq.com", "WeChat Pay API v3 base URL")
    alipay_gateway: str = flag("https://openapi.alipay.com/gateway.do", "Alipay's gateway URL")
    unionpay_private_key_file: str = flag("", "our UnionPay signing private key (PEM)")
    unionpay_cert_id: str = flag("", "certId of our UnionPay signing certificate")
    unionpay_gateway: str = flag("https://gateway.95516.com", "UnionPay gateway base URL")
    daily_send_limit: str = flag("0.00", "most money one user may send in packets a Beijing "
                                 "day (0.00: no limit)")
    daily_send_count: int = flag(0, "most packets one user may send a Beijing day (0: no limit)")
    events_url: str = flag("", "where the chat app's back end hears of packets (outbound events "
                           "POSTed as JSON; none without it)")
    events_secret: str = flag("", "HMAC key of the outbound events' X-Rtserver-Signature")
    events_retry_for: int = flag(86400, "seconds an outbound event is retried before it fails")
    events_timeout: float = flag(10.0, "seconds one POST of an outbound event may take")
    sandbox_secret: str = flag("", "HMAC key of the sandbox provider")
    sandbox_delay: float = flag(3.0, "seconds the --dev sandbox gateway waits before notifying")

    def checked(self) -> "Settings":
        """Fill the development secrets under --dev."""
        if self.jobs not in ("inline", "off"):
            raise SystemExit(f"rtserver: --jobs must be inline or off, not {self.jobs!r}")
        if self.refund_to not in ("original", "balance"):
            raise SystemExit(f"rtserver: --refund-to must be original or balance, not "
                             f"{self.refund_to!r}")
        if self.pin_lock < 1:
            raise SystemExit(f"rtserver: --pin-lock must be 1 second or more, not {self.pin_lock}")
        try:
            self.daily_limit
        except InvalidAmount:
            raise SystemExit(f"rtserver: --daily-send-limit must be an amount such as 500.00, "
                             f"not {self.daily_send_limit!r}") from None
        if self.daily_send_count < 0:
            raise SystemExit("rtserver: --daily-send-count must be 0 (no limit) or more")
        if self.processes < 1:
            raise SystemExit(f"rtserver: --processes must be 1 or more, not {self.processes}")
        limits_of(self)  # refuses limits that make no sense
        if self.events_retry_for < 1 or self.events_timeout <= 0:
            raise SystemExit("rtserver: --events-retry-for must be 1 second or more, and "
                             "--events-timeout more than 0")
        if self.dev:
            return dataclasses.replace(
                self,
                token_secret=self.token_secret or DEV_SECRET,
                admin_token=self.admin_token or DEV_SECRET,
                sandbox_secret=self.sandbox_secret or DEV_SECRET,
                events_secret=self.events_secret or DEV_SECRET,
            )
        if self.events_url and not self.events_secret:
            raise SystemExit("rtserver: --events-url needs --events-secret (or "
                             "RTSERVER_EVENTS_SECRET): the back end checks every event's signature")
        return self

    @property
    def daily_limit(self) -> DailyLimit:
        return DailyLimit(packets=self.daily_send_count, fen=parse_amount(self.daily_send_limit))

    def require_secrets(self) -> "Settings":
        """Refuse to serve without the secrets that guard users and the admin API."""
        for name in ("token_secret", "admin_token"):
            if not getattr(self, name):
                raise SystemExit(f"rtserver: --{name.replace('_', '-')} (or RTSERVER_{name.upper()}) "
                                 "is required; --dev supplies development secrets")
        return self


def joined(argv: list[str]) -> list[str]:
    """Accept `--flag value` as well as tornado's own `--flag=value`."""
    takes_value = {f.name for f in dataclasses.fields(Settings) if type(f.default) is not bool}
    out, args = [], list(argv)
    while args:
        arg = args.pop(0)
        if arg.startswith("--") and "=" not in arg and args \
                and arg[2:].replace("-", "_") in takes_value:
            arg = f"{arg}={args.pop(0)}"
        out.append(arg)
    return out


def load(argv: list[str], environ=os.environ) -> Settings:
    """Read the flags from the environment, then from the command line, which wins."""
    parser = OptionParser()
    for field in dataclasses.fields(Settings):
        parser.define(field.name, default=field.default, type=type(field.default),
                      help=field.metadata["help"])
    from_env = [f"--{name}={environ[env]}" for name in parser.as_dict()
                if (env := "RTSERVER_" + name.upper()) in environ]
    rest = parser.parse_command_line(["rtserver"] + from_env + joined(argv), final=False)
    if rest:
        raise SystemExit(f"rtserver: unexpected arguments {rest}")
    values = parser.as_dict()
    return Settings(**{f.name: values[f.name] for f in dataclasses.fields(Settings)}).checked()
