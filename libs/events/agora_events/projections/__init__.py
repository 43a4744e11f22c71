"""Checkpointed read models: a projection declares its tables, its subjects and its handlers.

``database.ReadModelDatabase`` holds them (SQLite or PostgreSQL), ``runner.ProjectionRunner``
keeps them in step with the log; see docs/projections.md."""

from .definition import EventContext, Projection

__all__ = ["EventContext", "Projection"]
