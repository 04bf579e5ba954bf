"""ChatOps in Slack: the same commands, the same rules, and one live message per promotion."""
