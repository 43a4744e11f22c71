"""Agora's shared kernel: contracts and mechanisms, never a service's rules."""
