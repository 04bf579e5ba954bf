"""The `shipyard` command line: `serve`, `evaluate`, `check`, `init-model`, `config-schema`,
`demo` (with the local registry world it drives).

The top of the house: may import anything in `bot/`, `evaluators/` and `gateway/`.
"""
