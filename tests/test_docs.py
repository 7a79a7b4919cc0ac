"""The documentation stays inside the repository and true to the code: links, pictures, commands."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import click
import pytest
from PIL import Image

from journal.cli import cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
#: Test modules that read the sample files beside the repository (the test setup may name them).
SAMPLE_READERS = {"tests/samples.py", "tests/test_metadata.py", "tests/test_docs.py"}
LINK = re.compile(r"\]\(([^)\s]+)\)")
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```(?:sh|bash)?\n(.*?)^```", re.S | re.M)


def tracked_files() -> list[str]:
    """The files of the project (what git holds plus what is about to be committed)."""
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [name for name in listing.stdout.splitlines() if (ROOT / name).is_file()]


def test_no_file_refers_outside_the_repository() -> None:
    offenders = []
    for name in tracked_files():
        if name in SAMPLE_READERS or name.endswith((".png", ".jpg", ".mbtiles", ".gz")):
            continue
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if "../shared" in text or "shared/CONTRACT" in text:
            offenders.append(name)
    assert offenders == [], "these files point outside the repository (../shared)"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_point_at_files_inside_the_repository(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#", 1)[0]).resolve()
        assert path.is_relative_to(ROOT), f"{page.name}: {target} leaves the repository"
        assert path.exists(), f"{page.name}: {target} does not exist"


def test_the_readme_links_the_guide_and_references() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for target in ("docs/guide.md", "docs/cli.md", "docs/openapi.json", "docs/bundle.md", "docs/contract.md"):
        assert f"({target})" in readme


def test_the_guide_shows_every_screenshot_and_only_real_ones() -> None:
    from tests.test_browser_screenshots import SHOTS, WIDTH

    guide = (DOCS / "guide.md").read_text(encoding="utf-8")
    shown = {Path(target).stem for target in IMAGE.findall(guide)}
    committed = {path.stem for path in (DOCS / "img").glob("*.png")}
    assert shown == committed == set(SHOTS), "run `make screenshots` and show each picture in docs/guide.md"
    for name in committed:
        path = DOCS / "img" / f"{name}.png"
        with Image.open(path) as image:
            assert image.width <= WIDTH
        assert path.stat().st_size < 300_000, f"{name}.png is large: keep the pictures small"


def test_the_guide_covers_the_topics() -> None:
    guide = (DOCS / "guide.md").read_text(encoding="utf-8").lower()
    for topic in (
        "make run", "make test", "journal import", "journal export", "journal published", ".gpx",
        "journal clock", "--location", "approx", "privacy zones", "--format eml", "journal send",
        "journal tiles add", "journal check", "--repair", "backup", "journal user add", "journal token add",
        "journal_trusted_hosts", "journal_quota_mb",
    ):  # fmt: skip
        assert topic in guide, topic


def command_lines(page: Path) -> list[list[str]]:
    """The `journal ...` command lines in the page's shell blocks, split like a shell would."""
    lines = []
    for block in FENCE.findall(page.read_text(encoding="utf-8")):
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip()
            words = shlex.split(line) if line else []
            while words and "=" in words[0]:  # VAR=value journal ...
                words.pop(0)
            if words and words[0] == "journal":
                lines.append(words[1:])
    return lines


@pytest.mark.parametrize("page", [ROOT / "README.md", DOCS / "guide.md"], ids=lambda p: p.name)
def test_every_command_shown_exists_with_those_options(page: Path) -> None:
    lines = command_lines(page)
    assert lines
    for words in lines:
        command: click.Command = cli
        ctx = click.Context(cli)
        while isinstance(command, click.Group) and words and not words[0].startswith("-"):
            sub = command.get_command(ctx, words[0])
            assert sub is not None, f"{page.name}: no command `{words[0]}` in `journal {' '.join(words)}`"
            command, words = sub, words[1:]
        known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
        for word in words:
            if word.startswith("--"):
                assert word.split("=", 1)[0] in known, f"{page.name}: `{command.name}` has no option {word}"
