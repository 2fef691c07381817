"""rtserver: red packets (红包) for chat apps, served in real time over WebSockets."""
