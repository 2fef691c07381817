"""Make sure rtserver has a MariaDB and a Redis to talk to.

Usage (from the repo root):

    .venv/bin/python tools/services.py [up|down]

``up`` (the default) checks the servers named by RTSERVER_MYSQL_URL and
RTSERVER_REDIS_URL (or the local defaults).  A server that answers is used as
is; for one that does not, a private instance is started (or reused) under
./var on a free port.  The resulting URLs are printed to stdout as shell
``export`` lines, so the Makefile can do::

    eval "$(.venv/bin/python tools/services.py up)"

Everything else goes to stderr, because stdout is eval'd.

``down`` stops the private instances recorded under ./var.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pymysql
import redis

from storage.db import MysqlUrl

DEFAULT_MYSQL_URL = "mysql://root@127.0.0.1:3306/rtserver"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

VAR = Path(__file__).resolve().parent.parent / "var"
MARIADB_DIR = VAR / "mariadb"
REDIS_DIR = VAR / "redis"

# Daemons often live in sbin, which a non-login PATH may lack.
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin"])
START_TIMEOUT = 30.0


def log(message):
    print(f"services: {message}", file=sys.stderr, flush=True)


def die(message):
    log(message)
    sys.exit(1)


# --- probing -------------------------------------------------------------


def mysql_answers(host, port, user="root", password=""):
    # No database selected: the server may be fine even if the db is not created yet.
    try:
        conn = pymysql.connect(host=host, port=port, user=user, password=password,
                               connect_timeout=2, read_timeout=2, write_timeout=2)
    except pymysql.MySQLError:
        return False
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        return True
    except pymysql.MySQLError:
        return False
    finally:
        conn.close()


def redis_answers(url):
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def wait_until(check, process=None):
    """Poll check() until it is true; give up early if process has died."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if check():
            return True
        if process is not None and process.poll() is not None:
            return check()
        time.sleep(0.2)
    return False


# --- bookkeeping under ./var ---------------------------------------------


def read_int(path):
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def pid_alive(pid):
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still accepts signals but is gone for our purposes (PID 1 in a
    # container does not always reap the detached daemons).
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def is_our_daemon(pid, program):
    """Guard against a stale pid file pointing at a recycled, unrelated pid."""
    try:
        return program.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: trust the pid file


def pick_port(previous):
    """Reuse the previous port when it is free (stable URLs), else ask the OS."""
    for candidate in (previous, 0):
        if candidate is None:
            continue
        with socket.socket() as sock:
            # Like the daemons themselves: a port left in TIME_WAIT is still usable.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError("no free port")


def stop(directory, program):
    pid = read_int(directory / "pid")
    if not pid_alive(pid) or not is_our_daemon(pid, program):
        return
    log(f"stopping {program} (pid {pid})")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + START_TIMEOUT
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        log(f"{program} (pid {pid}) did not exit within {START_TIMEOUT:.0f} s")


# --- installing the daemons ----------------------------------------------


def find_program(name):
    return shutil.which(name, path=SEARCH_PATH)


def ensure_programs(*names):
    if all(find_program(name) for name in names):
        return
    if os.geteuid() != 0:
        die("MariaDB/Redis not installed: run `sudo apt-get install mariadb-server redis-server`, "
            "or set RTSERVER_MYSQL_URL / RTSERVER_REDIS_URL to running servers")
    log("installing mariadb-server and redis-server with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "-qq", "update"],
                    ["apt-get", "-qq", "install", "-y", "mariadb-server", "redis-server"]):
        # stdout goes to stderr: our own stdout is eval'd by the shell.
        if subprocess.run(command, env=env, stdout=sys.stderr).returncode != 0:
            die(f"`{' '.join(command)}` failed")
    missing = [name for name in names if not find_program(name)]
    if missing:
        die(f"still missing after install: {', '.join(missing)}")


# --- private MariaDB -----------------------------------------------------


def reuse_running(directory, program, answers):
    """Port of an instance already running under directory, or None."""
    port = read_int(directory / "port")
    if port is None or not pid_alive(read_int(directory / "pid")):
        return None
    # It may still be starting up (e.g. a parallel `up`), so give it a moment.
    if wait_until(lambda: answers(port)):
        log(f"reusing private {program} on port {port}")
        return port
    stop(directory, program)
    return None


def as_root(command):
    """mariadbd refuses to run as root unless told to."""
    return command + ["--user=root"] if os.geteuid() == 0 else command


def install_db_command(data):
    """The command that creates a MariaDB datadir `data` whose root logs in with no password."""
    return as_root([find_program("mariadb-install-db"), "--no-defaults", f"--datadir={data}",
                    "--auth-root-authentication-method=normal", "--skip-test-db"])


def mariadbd_command(directory, port):
    """mariadbd on `directory`/data, listening on 127.0.0.1:`port`, logging to `directory`/err.log.

    `--no-defaults` keeps the system's config (and its port) out of it.
    """
    return as_root([find_program("mariadbd"), "--no-defaults", f"--datadir={directory / 'data'}",
                    f"--socket={directory / 'sock'}", f"--port={port}",
                    "--bind-address=127.0.0.1", f"--pid-file={directory / 'pid'}",
                    f"--log-error={directory / 'err.log'}"])


def init_mariadb_datadir():
    data = MARIADB_DIR / "data"
    if (data / "mysql").is_dir():
        return
    log(f"initialising MariaDB datadir {data}")
    shutil.rmtree(data, ignore_errors=True)  # leftovers of a failed attempt
    result = subprocess.run(install_db_command(data), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)
        die(f"mariadb-install-db failed:\n{result.stdout}")


def start_mariadb():
    MARIADB_DIR.mkdir(parents=True, exist_ok=True)
    init_mariadb_datadir()
    port = pick_port(read_int(MARIADB_DIR / "port"))
    err_log = MARIADB_DIR / "err.log"
    command = mariadbd_command(MARIADB_DIR, port)
    log(f"starting private MariaDB on port {port}")
    with open(err_log, "ab") as out:
        # New session: the server must outlive this script and the make run.
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                   start_new_session=True)
    (MARIADB_DIR / "port").write_text(f"{port}\n")
    if not wait_until(lambda: mysql_answers("127.0.0.1", port), process):
        tail = "".join(err_log.read_text(errors="replace").splitlines(True)[-20:])
        die(f"private MariaDB did not come up; tail of {err_log}:\n{tail}")
    return port


def create_database(port, database):
    # A fresh datadir has no application database; the URL names one.
    conn = pymysql.connect(host="127.0.0.1", port=port, user="root", connect_timeout=2)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{database.replace('`', '``')}`")
    finally:
        conn.close()


def ensure_mysql(url):
    wanted = MysqlUrl.parse(url)
    if mysql_answers(wanted.host, wanted.port, wanted.user, wanted.password):
        log(f"MariaDB at {wanted.host}:{wanted.port} answers; using it")
        return url
    log(f"no MariaDB answering at {wanted.host}:{wanted.port}")
    port = reuse_running(MARIADB_DIR, "mariadbd", lambda p: mysql_answers("127.0.0.1", p))
    if port is None:
        ensure_programs("mariadbd", "mariadb-install-db")
        port = start_mariadb()
    create_database(port, wanted.database)
    return f"mysql://root@127.0.0.1:{port}/{wanted.database}"


# --- private Redis -------------------------------------------------------


def redis_db(url):
    return urlsplit(url).path.lstrip("/") or "0"


def redis_command(directory, port):
    """redis-server on 127.0.0.1:`port` without persistence, logging to `directory`/log."""
    return [find_program("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(directory),
            "--logfile", str(directory / "log")]


def start_redis():
    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    port = pick_port(read_int(REDIS_DIR / "port"))
    command = redis_command(REDIS_DIR, port) + ["--daemonize", "yes",
                                                "--pidfile", str(REDIS_DIR / "pid")]
    log(f"starting private Redis on port {port}")
    # redis-server daemonizes itself; the foreground part returns at once.
    if subprocess.run(command, stdin=subprocess.DEVNULL, stdout=sys.stderr).returncode != 0:
        die("redis-server failed to start")
    (REDIS_DIR / "port").write_text(f"{port}\n")
    if not wait_until(lambda: redis_answers(f"redis://127.0.0.1:{port}/0")):
        log_file = REDIS_DIR / "log"
        tail = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
        die(f"private Redis did not come up; tail of {log_file}:\n{tail}")
    return port


def ensure_redis(url):
    if redis_answers(url):
        log(f"Redis at {urlsplit(url).netloc} answers; using it")
        return url
    log(f"no Redis answering at {urlsplit(url).netloc}")
    port = reuse_running(REDIS_DIR, "redis-server",
                         lambda p: redis_answers(f"redis://127.0.0.1:{p}/0"))
    if port is None:
        ensure_programs("redis-server")
        port = start_redis()
    return f"redis://127.0.0.1:{port}/{redis_db(url)}"


# --- commands ------------------------------------------------------------


def shell_quote(value):
    return "'" + value.replace("'", "'\"'\"'") + "'"


def up():
    mysql_url = ensure_mysql(os.environ.get("RTSERVER_MYSQL_URL") or DEFAULT_MYSQL_URL)
    redis_url = ensure_redis(os.environ.get("RTSERVER_REDIS_URL") or DEFAULT_REDIS_URL)
    print(f"export RTSERVER_MYSQL_URL={shell_quote(mysql_url)}")
    print(f"export RTSERVER_REDIS_URL={shell_quote(redis_url)}")


def down():
    stop(MARIADB_DIR, "mariadbd")
    stop(REDIS_DIR, "redis-server")


def main(argv):
    command = argv[1] if len(argv) > 1 else "up"
    if command == "up":
        up()
    elif command == "down":
        down()
    else:
        die(f"usage: {argv[0]} [up|down]")


if __name__ == "__main__":
    main(sys.argv)
