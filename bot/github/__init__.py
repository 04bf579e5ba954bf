"""The GitHub port: the REST client (App JWT, installation tokens, retries of reads), the typed
payload objects, webhook signatures, the check-run names, and reading a registry (files, LFS
objects, the default branch's policy and production models).

May import: `bot.base`, `bot.store`, `evaluators`. Writes to GitHub go through
`bot.runtime.outbox`, which sits above this folder.
"""
