"""Python cases (multi-server, real clients, monitoring, CLI), registered with ``@pycase``."""
