"""`make chaos`: a seeded fault soak of two rtserver nodes, with a Jepsen-style checker.

world.py starts the processes (MariaDB, Redis, their proxies, two nodes, the jobs runner),
workload.py drives users against them and records every request in a history (history.py),
faults.py breaks the world on a schedule drawn from the seed, checker.py reads the history and
the database once every clock has run out, and report.py writes the JSON and the picture.
"""
