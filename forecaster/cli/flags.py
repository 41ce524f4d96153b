"""Command-line flags generated from forecaster.config's settings dataclasses.

Each field of a settings dataclass becomes a flag (--name-with-dashes) with
its default and its trailing comment as help. The library names arguments in
its errors ("days must be at least 1"); `as_flags` names the flag instead.
Shared by forecaster.cli.main and forecaster.cli.distributed.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import io
import logging
import re
import tokenize

from forecaster.config import (
    DECIMALS,
    REPRESENTATIONS,
    DataSettings,
    ModelSettings,
    PrepSettings,
    Settings,
    TrainSettings,
)
from forecaster.data.calendars import validate_calendar

DEFAULT = " (default: %(default)s)"  # appended to help texts
FLAG_NAMES = {"cell": "model"}  # fields whose flag is not their own name
NOT_FLAGS = {"verbose"}  # fields set by other flags (--quiet)
CHOICES = {
    "representation": REPRESENTATIONS,
    "method": ("recursive", "direct"),
    "engine": ("auto", "numpy", "keras"),
    "decimal": DECIMALS,
}
_flags: dict[str, str] = {}  # argument name -> flag, for the parsers built so far


# How the library's whole runs advise arguments, and what the command line says
# instead (forecaster.workflows, io, lock, distributed): pattern -> replacement.
ADVICE_FLAGS = (
    (re.compile(r"\bpass (force|resume)=True\b"), r"add --\1"),
    (re.compile(r"\b(force|resume)=True\b"), r"--\1"),
    (re.compile(r"\banother out path\b"), "another --out"),
    (
        re.compile(
            re.escape(
                "pass data=DataSettings(csv=...) or data=DataSettings(ticker=...)"
            )
        ),
        "pass --csv or --ticker",
    ),
)


def as_flags(message: str) -> str:
    """A library message as the command line says it: flags, not arguments.

    A message that starts with an argument name starts with its flag, and
    the runs' advice ("pass force=True") names the flag ("add --force").
    """
    match = re.match(r"([a-z_]+)\b", message)
    if match and match.group(1) in _flags:
        message = _flags[match.group(1)] + message[match.end() :]
    for pattern, flag in ADVICE_FLAGS:
        message = pattern.sub(flag, message)
    return message


class FlagsInLog(logging.Filter):
    """Log records of the library's runs, their advice naming flags (`as_flags`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        shown = as_flags(text)
        if shown != text:
            record.msg, record.args = shown, None
        return True


def field_comments(cls) -> dict[str, str]:
    """Each field's trailing comment (with its `#   ` continuation lines), by name."""
    comments: dict[str, list[str]] = {}
    current = None
    source = inspect.getsource(cls)
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    previous = None
    for token in tokens:
        if token.type == tokenize.OP and token.string == ":" and previous:
            if previous.type == tokenize.NAME and previous.start[1] == 4:
                current = previous.string
                comments[current] = []
        elif token.type == tokenize.COMMENT and current is not None:
            text = token.string.lstrip("#").strip()
            if text:
                comments[current].append(text)
        elif token.type == tokenize.NAME and token.string == "def":
            current = None
        if token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT):
            previous = token
    return {name: " ".join(lines) for name, lines in comments.items()}


def add_settings_flags(group, cls, defaults=None, skip=()) -> None:
    """One flag per field of the dataclass `cls`: --name-with-dashes, typed, helped."""
    defaults = defaults if defaults is not None else cls()
    helps = field_comments(cls)
    for field in dataclasses.fields(cls):
        if field.name in NOT_FLAGS or field.name in skip:
            continue
        flag = "--" + FLAG_NAMES.get(field.name, field.name).replace("_", "-")
        _flags[field.name] = flag
        default = getattr(defaults, field.name)
        text = helps.get(field.name, "").replace("%", "%%")  # argparse formats help
        kind = _field_type(field)
        several = "list[" in str(field.type)
        if kind is bool:
            group.add_argument(flag, dest=field.name, action="store_true", help=text)
            continue
        group.add_argument(
            flag,
            dest=field.name,
            type=kind,
            nargs="+" if several else None,
            default=default,
            choices=CHOICES.get(field.name),
            metavar=None if field.name in CHOICES else field.name.upper(),
            help=text + (DEFAULT if default is not None else ""),
        )


def _field_type(field) -> type:
    """The Python type of a field annotated like `int`, `float | None` or `str`."""
    names = {name.strip() for name in str(field.type).split("|")} - {"None"}
    names = {name.removeprefix("list[").removesuffix("]") for name in names}
    by_name = {"int": int, "float": float, "str": str, "bool": bool}
    kinds = [by_name[n] for n in names if n in by_name]
    if len(kinds) != 1:
        raise TypeError(f"field {field.name} has no single simple type: {field.type}")
    return kinds[0]


def settings_from_args(args: argparse.Namespace, base: Settings) -> Settings:
    """Copy parsed flags onto the dataclasses of `base` (fields of the same name)."""
    for part in dataclasses.fields(base):
        settings = getattr(base, part.name)
        for field in dataclasses.fields(settings):
            if hasattr(args, field.name) and field.name not in NOT_FLAGS:
                setattr(settings, field.name, getattr(args, field.name))
    return base


def add_train_flags(p: argparse.ArgumentParser) -> None:
    """The flags of training: data, windows, model, training, output."""
    add_settings_flags(p.add_argument_group("data"), DataSettings)
    add_settings_flags(p.add_argument_group("windows"), PrepSettings)
    add_settings_flags(p.add_argument_group("model"), ModelSettings)
    fit = p.add_argument_group("training")
    add_settings_flags(fit, TrainSettings)
    fit.add_argument(
        "--quiet",
        action="store_true",
        help="print only the results: no progress bar or per-epoch lines, no notes",
    )
    out = p.add_argument_group("output")
    out.add_argument("--out", help="bundle directory (default: models/<source>-<cell>)")
    out.add_argument("--force", action="store_true", help="replace an existing bundle")
    out.add_argument(
        "--resume",
        action="store_true",
        help="continue a killed run from its last completed epoch",
    )


def train_settings(args: argparse.Namespace) -> Settings:
    """Settings from train.py's parsed arguments, validated."""
    settings = settings_from_args(args, Settings())
    for name in ("csv", "ticker"):  # one value keeps the single-series path
        value = getattr(settings.data, name)
        if isinstance(value, list) and len(value) == 1:
            setattr(settings.data, name, value[0])
    settings.model.cell = settings.model.cell.lower()
    settings.train.verbose = 0 if args.quiet else 1
    settings.data.calendar = validate_calendar(settings.data.calendar)
    return settings.validate()
