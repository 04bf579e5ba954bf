"""`python -m bot.cli …` runs the `shipyard` command."""

from bot.cli.main import main

main()
