"""The ``agora`` command: local runner and admin tools. An app: it runs, nothing imports it."""
