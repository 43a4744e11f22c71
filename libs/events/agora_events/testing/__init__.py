"""Test helpers the services share: given/when/then on deciders, and a real-NATS harness."""

from .scenario import ForeignEvent, Scenario, given, given_commands, history_of

__all__ = ["ForeignEvent", "Scenario", "given", "given_commands", "history_of"]
