"""Write docs/cli.md, the command-line reference, from the click commands themselves.

Usage: .venv/bin/python scripts/cli_docs.py   (or `make docs`)

Every command and group of `journal`, depth first in the order `journal --help` lists them: its
`--help` text exactly as the command prints it (usage, help with its example, options), then a
table of its options with their defaults and environment variables. The output depends only on
the code (a fixed width of 100 columns), so tests/test_cli_docs.py regenerates it in memory and
fails when the committed file differs.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "cli.md"
WIDTH = 100
#: click 8.2+ marks "no default" with a sentinel of its own.
_UNSET = getattr(click.core, "UNSET", None)

HEADER = """\
# Command-line reference

Generated from the commands by `scripts/cli_docs.py`: do not edit by hand, run `make docs`.
Every command also prints this with `--help`. `--home DIR` goes before the command (or set
`JOURNAL_HOME`); the settings read from the environment are listed in the README.
"""


def walk(command: click.Command, parent: click.Context | None = None) -> Iterator[click.Context]:
    """A context for the command and for each of its sub-commands, depth first."""
    name = command.name if parent is not None else "journal"
    ctx = click.Context(command, info_name=name, parent=parent, terminal_width=WIDTH, max_content_width=WIDTH)
    yield ctx
    if isinstance(command, click.Group):
        for sub_name in command.list_commands(ctx):
            sub = command.get_command(ctx, sub_name)
            if sub is not None and not sub.hidden:
                yield from walk(sub, ctx)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default(option: click.Option, ctx: click.Context) -> str:
    if option.is_flag and not option.count:
        return "off"
    value = option.get_default(ctx, call=False)
    if value is None or value == () or callable(value) or value is _UNSET:
        return ""
    return f"`{value}`"


def option_rows(ctx: click.Context) -> list[str]:
    """Markdown table rows: option, value, default, environment variable."""
    rows = []
    help_option = ctx.command.get_help_option(ctx)
    for param in ctx.command.get_params(ctx):
        if not isinstance(param, click.Option) or param.hidden or param is help_option:
            continue
        names = ", ".join(f"`{opt}`" for opt in param.opts + param.secondary_opts)
        value = "" if param.is_flag or param.count else _cell(param.make_metavar(ctx))
        envvar = param.envvar if isinstance(param.envvar, str) else ", ".join(param.envvar or ())
        env = f"`{envvar}`" if envvar else ""
        rows.append(f"| {names} | {value} | {_cell(_default(param, ctx))} | {env} |")
    return rows


def section(ctx: click.Context) -> str:
    """One command's part of the reference."""
    path = ctx.command_path
    lines = [f"## {path}", "", "```text", ctx.command.get_help(ctx).rstrip(), "```", ""]
    rows = option_rows(ctx)
    if rows:
        lines += ["| option | value | default | environment |", "| --- | --- | --- | --- |", *rows, ""]
    return "\n".join(lines)


def render() -> str:
    """The whole of docs/cli.md."""
    from journal.cli import cli

    contexts = list(walk(cli))
    index = [f"- [`{c.command_path}`](#{c.command_path.replace(' ', '-')})" for c in contexts]
    return "\n".join([HEADER, *index, "", *(section(c) for c in contexts)]).rstrip() + "\n"


def main() -> int:
    """Write docs/cli.md (atomically) and say whether it changed."""
    text = render()
    old = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else None
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=OUTPUT.parent, delete=False) as handle:
        handle.write(text)
    os.replace(handle.name, OUTPUT)
    print(f"{OUTPUT.relative_to(ROOT)}: {'unchanged' if old == text else 'written'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
