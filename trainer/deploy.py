"""Deploy and rollback live in `botify.deploy` (the keeper, which runs without the trainer's
dependencies, restores from the same journal); this module keeps the trainer's import path."""

from botify.deploy import DeployError, Switch, deploy, read_lists, read_model, rollback

read_recs = read_lists

__all__ = ["DeployError", "Switch", "deploy", "read_lists", "read_model", "read_recs", "rollback"]
