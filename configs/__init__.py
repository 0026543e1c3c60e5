"""Strict YAML configuration: one commented defaults file, tiny override files.

``configs/default.yaml`` declares every key once, with a comment. Other configs
(``paper.yaml``, ``demo.yaml``, a user's own) name a ``_base_`` file and override
only what differs. Merging is strict, as in py-faster-rcnn's ``_merge_a_into_b``:
an unknown key or a change of type is an error naming the key and the file.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Iterable

import yaml

from configs.errors import UserError

CONFIG_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG = CONFIG_DIR / "default.yaml"


class ConfigError(UserError, ValueError):
    """A config file or override is invalid; the message names key and file."""


def _load_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    with open(path) as f:
        try:
            data = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def _type_ok(default: Any, value: Any) -> bool:
    if default is None or value is None:
        return True  # null in the defaults means "any type, optional"
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float) and isinstance(value, int):
        return True  # 1 is a fine float
    return isinstance(value, type(default))


def merge_into(base: dict, override: dict, source: str, prefix: str = "") -> dict:
    """Merge ``override`` into a deep copy of ``base``; reject unknown keys and type changes."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        full = f"{prefix}{key}"
        if key not in out:
            raise ConfigError(f"{source}: '{full}' is not a valid config key "
                              f"(see configs/default.yaml for the keys that exist)")
        default = out[key]
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: '{full}' must be a mapping, got {value!r}")
            out[key] = merge_into(default, value, source, full + ".")
        else:
            if not _type_ok(default, value):
                raise ConfigError(f"{source}: '{full}' must be of type {type(default).__name__} "
                                  f"(default {default!r}), got {type(value).__name__} {value!r}")
            if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            out[key] = value
    return out


def _resolve_chain(path: Path, seen: tuple = ()) -> list[tuple[Path, dict]]:
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: _base_ chain loops back to itself")
    data = _load_yaml(path)
    base = data.pop("_base_", None)
    chain: list[tuple[Path, dict]] = []
    if base is not None:
        chain = _resolve_chain((path.parent / base), seen + (path,))
    return chain + [(path, data)]


def parse_override(text: str) -> dict:
    """``a.b.c=VALUE`` (VALUE parsed as YAML) -> nested dict."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set samples.scales=[1.8]")
    key, raw = text.split("=", 1)
    value = yaml.safe_load(raw) if raw != "" else ""
    if isinstance(value, str):
        try:  # YAML 1.1 reads 1e-4 (no dot) as a string; a number is meant
            value = float(value)
        except ValueError:
            pass
    node: dict = {}
    cur = node
    parts = key.strip().split(".")
    for p in parts[:-1]:
        cur[p] = {}
        cur = cur[p]
    cur[parts[-1]] = value
    return node


def load_config(path: str | os.PathLike | None = None, overrides: Iterable[str] = ()) -> dict:
    """Defaults, then the ``_base_`` chain of ``path``, then ``--set`` overrides."""
    cfg = _load_yaml(DEFAULT_CONFIG)
    if path is not None and Path(path).resolve() != DEFAULT_CONFIG:
        for p, data in _resolve_chain(Path(path)):
            if p == DEFAULT_CONFIG:
                continue
            cfg = merge_into(cfg, data, str(p))
    for ov in overrides:
        cfg = merge_into(cfg, parse_override(ov), f"--set {ov}")
    return cfg


def config_files(path: str | os.PathLike | None = None) -> list[Path]:
    """Every file :func:`load_config` reads for ``path``: default.yaml, then its
    ``_base_`` chain (what a plan generated from the config depends on)."""
    files = [DEFAULT_CONFIG]
    if path is not None:
        files += [p for p, _ in _resolve_chain(Path(path)) if p != DEFAULT_CONFIG]
    return files


def load_experiment_config(path: str | os.PathLike | None = None,
                           overrides: Iterable[str] = ()) -> dict:
    """:func:`load_config`, then the experiment checks of ``configs.grammar.check_config``
    (every experiment's (scale, T) is prepared; net.input_size == samples.size), so that a
    command that trains or lists experiments refuses a bad config before any work."""
    from configs import grammar
    cfg = load_config(path, overrides)
    grammar.check_config(cfg, str(path or DEFAULT_CONFIG))
    return cfg


def dump_config(cfg: dict, path: str | os.PathLike) -> None:
    """Write the resolved config atomically (temp file + rename)."""
    from configs.files import write_text_atomic
    write_text_atomic(path, yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None))
