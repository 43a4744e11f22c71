"""The agenda service: forum editions, rooms, sessions and their people, published versions."""
