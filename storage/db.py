"""The MariaDB connection pool, transactions, and money at the SQL edge."""
import asyncio
import contextlib
import operator
import urllib.parse
from dataclasses import dataclass
from decimal import Decimal

import aiomysql
import pymysql

DUPLICATE_KEY = 1062
CONNECTION_LOST = (2006, 2013)  # "server has gone away", "lost connection during query"
STALE_RETRIES = 3
OUT_OF_RANGE = 1264


@dataclass(frozen=True)
class MysqlUrl:
    host: str
    port: int
    user: str
    password: str
    database: str

    @classmethod
    def parse(cls, url: str) -> "MysqlUrl":
        """Read `mysql://user:pass@host:port/db`."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("mysql", "mariadb") or not parts.hostname:
            raise ValueError(f"not a mysql:// URL: {parts.scheme}://{parts.hostname or ''}")
        return cls(
            host=parts.hostname,
            port=parts.port or 3306,
            user=urllib.parse.unquote(parts.username or "root"),
            password=urllib.parse.unquote(parts.password or ""),
            database=parts.path.lstrip("/") or "rtserver",
        )


def marks(values) -> str:
    """The placeholders of an `IN (…)` list of `values`: "%s, %s, %s"."""
    return ", ".join(["%s"] * len(values))


def number(value) -> str:
    """An integer as SQL text. For the statements of the hottest transaction (a batch of grabs
    names hundreds of ids, several times over), where escaping each number as a parameter cost
    more than building the rest of the batch. Anything but an integer (text, a float) raises
    TypeError, so nothing a client sent can become SQL here."""
    return str(operator.index(value))


def string(value: str) -> str:
    """A string as SQL text: its UTF-8 bytes in hex, read as utf8mb4 (`_utf8mb4 X'e4bda0'`).
    For the notices a batch of grabs keeps, two a grab: no byte of the value is ever SQL, and
    there is nothing to escape. Anything but a str raises TypeError."""
    if not isinstance(value, str):
        raise TypeError(f"not text: {type(value).__name__}")
    return f"_utf8mb4 X'{value.encode().hex()}'"


def ints(values) -> str:
    """An `IN (…)` list of integers, written out: "1, 2, 3"."""
    return ", ".join(map(number, values))


def to_fen(value: Decimal) -> int:
    """Turn a DECIMAL(…,2) column into integer fen, exactly."""
    return int(value * 100)


def to_decimal(fen: int) -> Decimal:
    """Turn integer fen into the DECIMAL the database stores."""
    return Decimal(fen).scaleb(-2)


def is_out_of_range(exc: Exception) -> bool:
    """A value too large for its column (a balance past DECIMAL(12,2))."""
    return isinstance(exc, pymysql.err.DataError) and exc.args[0] == OUT_OF_RANGE


def is_duplicate(exc: Exception) -> bool:
    return isinstance(exc, pymysql.err.IntegrityError) and exc.args[0] == DUPLICATE_KEY


class Pool(aiomysql.Pool):
    """aiomysql's pool, except that a dead connection given back makes room for a waiter.

    aiomysql wakes a request waiting for a connection only when a live one comes back. When
    MariaDB goes away, every connection in use dies; with the pool full, the requests queued
    behind them would wait forever, even after MariaDB returns.
    """

    def release(self, conn) -> asyncio.Future:
        released = super().release(conn)
        if conn.closed:
            return asyncio.ensure_future(self._wakeup())
        return released


class Database:
    """A pool of autocommit connections; writes open explicit transactions.

    Autocommit matters: under REPEATABLE READ a pooled connection that only ran SELECTs would
    otherwise keep an old snapshot and read stale rows on its next use.
    """

    def __init__(self, pool: aiomysql.Pool):
        self.pool = pool

    @classmethod
    async def connect(cls, url: str, maxsize: int = 20) -> "Database":
        """Open the pool and check that MariaDB answers."""
        u = MysqlUrl.parse(url)
        db = cls(Pool(
            host=u.host, port=u.port, user=u.user, password=u.password, db=u.database,
            autocommit=True, charset="utf8mb4", minsize=1, maxsize=maxsize, echo=False,
            connect_timeout=3, pool_recycle=3600, loop=asyncio.get_running_loop(),
        ))
        try:
            await db.ping()
        except BaseException:
            await db.close()
            raise
        return db

    @contextlib.asynccontextmanager
    async def cursor(self):
        """Yield a dict cursor on an autocommit connection, for reads and single statements."""
        async with self.pool.acquire() as conn:
            try:
                async with conn.cursor(aiomysql.DictCursor) as cur:
                    yield cur
            except asyncio.CancelledError:
                # A reply cut off half read would be the next user's first answer: the
                # connection goes, and the pool opens another.
                conn.close()
                raise

    def transaction(self) -> "Transaction":
        return Transaction(self.pool)

    def pipeline(self) -> "Pipeline":
        return Pipeline(self)

    async def ping(self) -> None:
        async with self.cursor() as cur:
            await cur.execute("SELECT 1")

    async def close(self) -> None:
        self.pool.close()
        await self.pool.wait_closed()


@dataclass
class Statement:
    """A statement of a Pipeline, and once it has run, what it did."""
    sql: str
    args: list
    rowcount: int = -1
    rows: tuple = ()


class Pipeline:
    """A transaction sent whole: `add` queues statements, and `commit()` sends them between
    START TRANSACTION and COMMIT in one round trip. Leaving without a commit rolls back.

    For the hottest transaction, the booking of a batch of grabs: under a storm of grabs each
    wait for MariaDB is also a turn of a busy event loop. A failing statement stops the ones
    after it, and its error is raised by `commit()`.
    """

    def __init__(self, db: "Database"):
        self.db = db
        self.statements: list[Statement] = []
        self.committed = False

    def add(self, sql: str, args: list) -> Statement:
        statement = Statement(sql, args)
        self.statements.append(statement)
        return statement

    async def __aenter__(self) -> "Pipeline":
        self._cursor = self.db.cursor()  # autocommit: this transaction is the pipeline's own
        self._cur = await self._cursor.__aenter__()
        return self

    async def commit(self) -> None:
        sent = ["START TRANSACTION"] + [self._cur.mogrify(s.sql, s.args) for s in self.statements]
        await self._cur.execute(";\n".join(sent + ["COMMIT"]))
        # Every result is read, even the ones not wanted: a connection with results left
        # unread cannot be used again.
        for statement in self.statements:
            await self._cur.nextset()
            statement.rowcount, statement.rows = self._cur.rowcount, await self._cur.fetchall()
        while await self._cur.nextset():  # the COMMIT's
            pass
        self.committed = True

    async def __aexit__(self, *exc_info) -> None:
        try:
            if not self.committed:
                # After a failing statement the transaction is still open (on a connection
                # that died with it, the server has rolled back already).
                with contextlib.suppress(Exception):
                    await self._cur.execute("ROLLBACK")
        finally:
            await self._cursor.__aexit__(*exc_info)


class Transaction:
    """BEGIN on enter; leaving without `commit()` rolls back. `cur` is a dict cursor."""

    def __init__(self, pool: aiomysql.Pool):
        self.pool = pool
        self.conn = self.cur = None
        self.committed = False

    async def __aenter__(self) -> "Transaction":
        for attempt in range(STALE_RETRIES):
            self.conn = await self.pool.acquire()
            try:
                await self.conn.begin()
                self.cur = await self.conn.cursor(aiomysql.DictCursor)
                return self
            except pymysql.err.OperationalError as exc:
                self.pool.release(self.conn)  # closed by the failure: the pool drops it
                # An idle pooled connection that died with an outage fails at its first word;
                # nothing was done on it, so another connection may try.
                if exc.args[0] not in CONNECTION_LOST or attempt == STALE_RETRIES - 1:
                    raise
            except BaseException:
                self.pool.release(self.conn)
                raise

    async def commit(self) -> None:
        await self.conn.commit()
        self.committed = True

    async def __aexit__(self, *exc_info) -> None:
        try:
            if not self.committed:
                # A connection that died mid-transaction cannot roll back; the server already has.
                with contextlib.suppress(Exception):
                    await self.conn.rollback()
            await self.cur.close()
        finally:
            self.pool.release(self.conn)
