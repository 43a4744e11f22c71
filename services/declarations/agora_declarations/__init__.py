"""Agora's declarations service: declarations opened for signature by States."""
