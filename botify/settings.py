"""Botify's one configuration: `Settings`, typed, built once per process and handed on.

    settings = Settings.load()            # defaults < BOTIFY_CONFIG file < BOTIFY_* variables
    settings = Settings.load({"KEY_PREFIX": "lab"})   # < a mapping (tests, a CLI's own options)

Every process takes what it needs from it: the service (`botify.app.create_app`) builds its Redis
link, state, lists and limits from it; the deploy path (`python -m trainer deploy|rollback|run`),
the keeper (`python -m ops.keeper`) and the replica's worker read the same settings, so a key
prefix or a password set once reaches every side. A default lives here and nowhere else.

A setting's environment variable is `BOTIFY_` + its name in capitals (`key_prefix` ->
`BOTIFY_KEY_PREFIX`); a file (`BOTIFY_CONFIG`, JSON or YAML) and a mapping spell keys either way
(`KEY_PREFIX`, `BOTIFY_KEY_PREFIX`). Values are checked against the field's type when loaded: a
number that does not parse, or a key no setting has in a file or mapping, is a ValueError that
names it. `BOTIFY_*` variables that are not settings belong to other tools (`BOTIFY_URL` for the
simulator, `BOTIFY_LOG_ROOT` for a container's replica name) and are left alone.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from botify.step import MAX_BATCH_STEPS

ENV_PREFIX = "BOTIFY_"
CONFIG_ENV = "BOTIFY_CONFIG"  # names the settings file


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every Botify setting with its default (the only one)."""

    # -- Redis: every process that talks to it (service, trainer deploy, keeper) ----------------
    redis_url: str = "redis://127.0.0.1:6379/0"  # redis+cluster://host:port for a Redis Cluster
    redis_password: str | None = field(
        default=None, repr=False
    )  # when the URL has none; never printed
    key_prefix: str = "botify"  # every key Botify writes or reads starts with `<key_prefix>:`
    redis_socket_timeout: float = 0.25  # seconds; a slow Redis must not stall a worker
    redis_connect_timeout: float = 0.1
    redis_retry_after: float = (
        0.5  # after a Redis error, serve the fallback this long before retrying
    )
    journal: str | None = (
        None  # the deploy journal folder (trainer deploy writes it, the keeper reads it)
    )

    # -- the service --------------------------------------------------------------------------
    catalog: str = "data/world/tracks.json"  # tracks.json of the world
    experiments: str = "config/experiments.yml"
    log_dir: str = "log"  # this replica's event log folder
    replica: str = field(default_factory=socket.gethostname)  # written into every event
    log_max_bytes: int = 64 * 2**20  # rotate an events file past this size
    max_body_bytes: int = 4096  # a /next body is ~30 bytes; anything bigger is abuse
    max_batch_steps: int = MAX_BATCH_STEPS  # steps in one POST /batch/<shard>
    max_batch_bytes: int = 128 * 1024  # a batch step is ~70 bytes: 1,024 of them fit with room
    max_user: int = 2**32 - 1  # user ids are 0..max_user (murmur3 hashes str(user))
    cursor_ttl: int = 24 * 3600  # a session never closed by /last forgets its cursor after this
    session_length: int = 50  # tracks of the live session kept per user (newest)
    session_ttl: int = 3600  # a live session never closed by /last is forgotten after this
    history_length: int = 10  # plays of the listening history across sessions (the course's 2026)
    history_ttl: int = 30 * 24 * 3600  # a history nobody adds to is forgotten after this
    pointer_cache_seconds: float = 1.0  # how long a replica may use a cached active-list version
    fallback: str = "sticky_artist"  # catalog-only recommender used while Redis fails
    request_read_timeout: float = 10.0  # seconds a replica's worker waits for a whole request

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = _normal(getattr(self, f.name), _HINTS[f.name])
            _check_type(f.name, value, _HINTS[f.name])
            object.__setattr__(self, f.name, value)
        if not self.key_prefix or any(c in self.key_prefix for c in "{}"):
            raise ValueError(
                f"key_prefix {self.key_prefix!r}: must be non-empty, without hash-tag braces"
            )
        for name in ("log_max_bytes", "max_body_bytes", "max_batch_steps", "max_batch_bytes",
                     "session_length", "cursor_ttl", "session_ttl", "history_length",
                     "history_ttl"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, not {getattr(self, name)}")

    # -- building -----------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        overrides: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Defaults, then the file named by $BOTIFY_CONFIG, then `BOTIFY_*` variables, then
        `overrides`; later wins. `environ` defaults to the process environment."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if environ.get(CONFIG_ENV):
            values.update(_checked(read_file(environ[CONFIG_ENV]), environ[CONFIG_ENV]))
        values.update(from_environ(environ))
        if overrides:
            values.update(_checked(unprefixed(overrides), "settings"))
        return cls(**values)


_HINTS = get_type_hints(Settings)
_KINDS = {int: "an integer", float: "a number", str: "text"}
NAMES = frozenset(f.name for f in dataclasses.fields(Settings))


def unprefixed(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """`BOTIFY_KEY_PREFIX` or `KEY_PREFIX` -> `key_prefix`."""
    out = {}
    for key, value in mapping.items():
        name = str(key).removeprefix(ENV_PREFIX).lower()
        out[name] = value
    return out


def read_file(path: str | os.PathLike) -> dict[str, Any]:
    """A JSON or YAML mapping of settings (keys as in `unprefixed`)."""
    text = Path(path).read_text(encoding="utf-8")
    data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of settings")
    return unprefixed(data)


def from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings among `BOTIFY_*` variables, parsed by their field's type."""
    values = {}
    for name in NAMES:
        text = environ.get(ENV_PREFIX + name.upper())
        if text is not None:
            values[name] = _parse(name, text, _HINTS[name])
    return values


def _checked(values: dict[str, Any], source: str) -> dict[str, Any]:
    unknown = sorted(set(values) - NAMES)
    if unknown:
        raise ValueError(f"{source}: unknown setting(s) {', '.join(k.upper() for k in unknown)}")
    return {name: _coerce(name, value, _HINTS[name]) for name, value in values.items()}


def _base(hint: Any) -> tuple[type, bool]:
    """(the type, whether None is allowed) of a field's hint."""
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        return args[0], True
    return hint, False


def _parse(name: str, text: str, hint: Any) -> Any:
    """A variable's text as the field's type ("" is None where None is allowed)."""
    kind, optional = _base(hint)
    if optional and text == "":
        return None
    if kind is str:
        return text
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{ENV_PREFIX}{name.upper()}={text!r}: not {_KINDS[kind]}") from None


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """A file's or mapping's value as the field's type: text is parsed as a variable's would be,
    a number where text is wanted becomes text (YAML reads `REPLICA: 1` as a number)."""
    kind, optional = _base(hint)
    if value is None and optional:
        return None
    if isinstance(value, str):
        return _parse(name, value, hint)
    if kind is str and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value  # normalised and checked by Settings.__post_init__


def _normal(value: Any, hint: Any) -> Any:
    """A path where text is wanted becomes text, an int where a float is wanted a float."""
    kind, _ = _base(hint)
    if kind is str and isinstance(value, os.PathLike):
        return os.fspath(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _check_type(name: str, value: Any, hint: Any) -> None:
    kind, optional = _base(hint)
    if value is None and optional:
        return
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"setting {name.upper()}: {value!r} is not {_KINDS[kind]}")


# -- the command lines' face of the settings ---------------------------------------------------
def option(name: str, help: str, **kwargs: Any):  # noqa: A002 (click's own keyword)
    """A click option for setting `name` (`--key-prefix` for `key_prefix`), also read from its
    variable (`BOTIFY_KEY_PREFIX`); unset, it leaves the setting to the file or the default."""
    import click

    return click.option(
        "--" + name.replace("_", "-"),
        name,
        envvar=ENV_PREFIX + name.upper(),
        show_envvar=True,
        default=None,
        help=help,
        **kwargs,
    )


def from_options(**given: Any) -> Settings:
    """The settings, with the options a command line (or their variables) gave on top."""
    return Settings.load({name: value for name, value in given.items() if value is not None})
