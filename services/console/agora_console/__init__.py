"""Agora's web console: pages built from the event streams, commands sent through the
services' HTTP APIs."""
