"""World families: each maps a ``WorldSpec`` to a ``World`` (see docs/synthetic-worlds.md)."""
