"""`python -m vault.cli`: the `vault` command, as the console script runs it."""

from vault.cli import main

main()
