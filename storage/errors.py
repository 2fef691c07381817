"""Telling a dependency that is down (MariaDB, Redis) from a bug."""
import asyncio

import pymysql
import redis.exceptions

# MariaDB error numbers that mean "try again later", not "this statement is wrong":
# too many connections, lock wait timeout, deadlock, cannot connect, gone away, lost connection.
MYSQL_TRANSIENT = {1040, 1205, 1213, 2002, 2003, 2006, 2013, 2055}

REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
              redis.exceptions.ClusterDownError, redis.exceptions.TryAgainError)


def is_dependency_down(exc: BaseException) -> bool:
    if isinstance(exc, pymysql.err.OperationalError):
        return bool(exc.args) and exc.args[0] in MYSQL_TRANSIENT
    return isinstance(exc, (pymysql.err.InterfaceError, *REDIS_DOWN, ConnectionError,
                            asyncio.TimeoutError))


def dependency_of(exc: BaseException) -> str:
    """Which dependency a failure that `is_dependency_down` came from."""
    if isinstance(exc, pymysql.err.MySQLError):
        return "MariaDB"
    if isinstance(exc, redis.exceptions.RedisError):
        return "Redis"
    return "MariaDB or Redis"  # a bare socket error or time-out: either may have caused it


def is_deadlock(exc: BaseException) -> bool:
    """Two transactions waited on each other (or too long): retrying is the cure."""
    return isinstance(exc, pymysql.err.OperationalError) and bool(exc.args) and \
        exc.args[0] in (1205, 1213)


def is_refused(exc: BaseException) -> bool:
    """MariaDB refused the statement itself (a value out of range, a constraint): trying the
    same again will not help."""
    return isinstance(exc, pymysql.err.MySQLError) and not is_dependency_down(exc)
