"""A loopback GitHub: the REST operations Shipyard uses, Git LFS, and signed webhooks."""

from bot.sandbox.github.keys import generate_app_keypair
from bot.sandbox.github.models import Permission
from bot.sandbox.github.server import SandboxServer
from bot.sandbox.github.state import SandboxError, SandboxState, lfs_pointer
from bot.sandbox.github.webhooks import iter_webhook_examples, sign_webhook

__all__ = [
    "Permission",
    "SandboxError",
    "SandboxServer",
    "SandboxState",
    "generate_app_keypair",
    "iter_webhook_examples",
    "lfs_pointer",
    "sign_webhook",
]
