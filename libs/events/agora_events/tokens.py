"""Participant tokens: the bearer token a participant acts with is an HMAC of their id under
a secret the services that accept it share (``AGORA_<SERVICE>_PARTICIPANT_TOKEN_SECRET``).
Registration hands it out on registration; nothing is stored anywhere."""

from __future__ import annotations

import hashlib
import hmac

LOCAL_PARTICIPANT_SECRET = "local-participant-token-secret"
"""The local default, refused outside local mode."""
MIN_SECRET_LENGTH = 32


def participant_token(secret: str, participant_id: str) -> str:
    message = f"agora-participant:{participant_id}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def acts_for(secret: str, token: str, participant_id: str) -> bool:
    """Whether ``token`` is the participant token of ``participant_id``."""
    return hmac.compare_digest(token.encode(), participant_token(secret, participant_id).encode())


def guessable(secret: str) -> bool:
    return secret == LOCAL_PARTICIPANT_SECRET or len(secret) < MIN_SECRET_LENGTH
