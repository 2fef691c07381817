"""The composition root: the one place that knows every layer and wires them together.

`handlers/` and `jobs/` may use `rtserver/`, and `rtserver/` may use `storage/`, never the other
way round (`.importlinter`); only this package imports them all, to build the app, open and
close its context and run the `rtserver` command.
"""
