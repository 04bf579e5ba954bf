"""A loopback GitHub: the REST operations Shipyard uses, Git LFS, and signed webhooks."""

from bot.sandbox.keys import generate_app_keypair
from bot.sandbox.models import Permission
from bot.sandbox.server import SandboxServer
from bot.sandbox.state import SandboxError, SandboxState, lfs_pointer
from bot.sandbox.webhooks import iter_webhook_examples, sign_webhook

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
