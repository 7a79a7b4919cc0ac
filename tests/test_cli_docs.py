"""docs/cli.md is the click commands' own reference: regenerated here, it must equal the committed file."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import click
import pytest

from journal.cli import cli

ROOT = Path(__file__).resolve().parents[1]


def cli_docs() -> ModuleType:
    """scripts/cli_docs.py as a module."""
    spec = importlib.util.spec_from_file_location("cli_docs", ROOT / "scripts" / "cli_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("cli_docs", module)
    spec.loader.exec_module(module)
    return module


def test_committed_reference_matches_the_commands() -> None:
    committed = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert cli_docs().render() == committed, "docs/cli.md differs from the commands: run `make docs`"


def test_every_command_option_and_example_is_in_it() -> None:
    text = cli_docs().render()
    for ctx in cli_docs().walk(cli):
        assert f"\n## {ctx.command_path}\n" in text
        for param in ctx.command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert all(f"`{opt}`" in text for opt in param.opts)
        if not isinstance(ctx.command, click.Group):
            assert "Example" in (ctx.command.help or ""), f"{ctx.command_path} has no example"


def test_a_changed_help_text_shows_in_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    module = cli_docs()
    before = module.render()
    serve = cli.commands["serve"]
    monkeypatch.setattr(serve, "help", (serve.help or "") + "\n\nA new sentence.")
    after = module.render()
    assert after != before and "A new sentence." in after


def test_defaults_and_environment_variables_are_listed() -> None:
    text = cli_docs().render()
    assert "| `--platform` | TEXT | `original` |" in text
    assert "`JOURNAL_HOME`" in text and "`JOURNAL_SMTP_URL`" in text
