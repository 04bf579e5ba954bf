"""ChatOps commands: the typed comment event, the one parser and the one command table."""
