"""The stack file (Pulumi.<stack>.yaml) validated into a config: its models, limits and allowed transitions.

Imports nothing else of infra: every other room reads the config from here."""
