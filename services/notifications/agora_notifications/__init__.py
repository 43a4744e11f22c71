"""Agora's notifications service: email and signed webhooks from every context."""
