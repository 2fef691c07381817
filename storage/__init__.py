"""Everything that speaks SQL or Redis: schema, migrations, queries, grab slots and queues."""
