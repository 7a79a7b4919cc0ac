"""`python -m journal` runs the command-line interface."""

from journal.cli import cli

if __name__ == "__main__":
    cli()
