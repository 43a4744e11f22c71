"""Test helpers the services share: given/when/then on deciders, and a real-NATS harness."""

from .scenario import Scenario, given

__all__ = ["Scenario", "given"]
