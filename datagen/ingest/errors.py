"""`IngestError`: one bad input item (file or folder), named in the message with its problem."""

from __future__ import annotations

from pathlib import Path


class IngestError(ValueError):
    """An input item cannot be ingested. `str(e)` is "<item>: <problem>".

    item:    the path (or id) of the offending item
    problem: what is wrong with it, in words
    """

    def __init__(self, item: str | Path, problem: str) -> None:
        self.item = str(item)
        self.problem = problem
        super().__init__(f"{self.item}: {problem}")

    def __reduce__(self):  # keep picklable (multiprocessing, Dagster) despite the 2-arg init
        return (type(self), (self.item, self.problem))
