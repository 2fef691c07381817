"""Apply the numbered SQL files in `migrations/` that the database has not seen yet."""
import pathlib
import re

import pymysql

from storage.db import MysqlUrl

MIGRATIONS = pathlib.Path(__file__).with_name("migrations")


def available() -> list[tuple[int, str, str]]:
    """List (number, name, sql) of every migration file, in order."""
    found = []
    for path in sorted(MIGRATIONS.glob("*.sql")):
        number = int(path.name.split("_", 1)[0])
        found.append((number, path.stem, path.read_text(encoding="utf-8")))
    return found


def statements(sql: str) -> list[str]:
    """Split a migration file into statements (they hold no semicolons inside strings)."""
    without_comments = re.sub(r"^\s*--.*$", "", sql, flags=re.MULTILINE)
    return [s.strip() for s in without_comments.split(";") if s.strip()]


def migrate(url: str) -> list[str]:
    """Create the database when missing and apply what is new; return the names applied.

    Runs on a plain blocking connection: it happens once, before anything serves.
    """
    u = MysqlUrl.parse(url)
    conn = pymysql.connect(host=u.host, port=u.port, user=u.user, password=u.password,
                           charset="utf8mb4", autocommit=True, connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{u.database}` "
                        "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            cur.execute(f"USE `{u.database}`")
            cur.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                        " version INT UNSIGNED NOT NULL PRIMARY KEY,"
                        " name VARCHAR(200) NOT NULL,"
                        " applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP"
                        ") ENGINE=InnoDB")
            # Two migrators starting at once must not both apply a file: hold a named lock.
            cur.execute("SELECT GET_LOCK(%s, 60)", (f"rtserver-migrate-{u.database}",))
            try:
                cur.execute("SELECT version FROM schema_migrations")
                done = {row[0] for row in cur.fetchall()}
                applied = []
                for number, name, sql in available():
                    if number in done:
                        continue
                    for statement in statements(sql):
                        cur.execute(statement)
                    cur.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                                (number, name))
                    applied.append(name)
                return applied
            finally:
                cur.execute("SELECT RELEASE_LOCK(%s)", (f"rtserver-migrate-{u.database}",))
    finally:
        conn.close()
