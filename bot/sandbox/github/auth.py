"""GitHub App authentication: RS256 app JWTs and installation tokens scoped to their repos."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

import jwt

from bot.sandbox.github.models import AccessToken, AppInfo, Repo
from bot.sandbox.github.state import SandboxError, SandboxState

# GitHub refuses JWTs that live longer than ten minutes; allow its documented clock drift.
MAX_JWT_LIFETIME = timedelta(minutes=10)
CLOCK_DRIFT = timedelta(seconds=60)


def credential(authorization: str | None) -> tuple[str, str] | None:
    """``(scheme, secret)`` of an Authorization header; Basic yields its password part."""
    if not authorization or " " not in authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        return scheme, decoded.partition(":")[2]
    return scheme, value.strip()


def verify_app_jwt(token: str, *, app: AppInfo, now: datetime) -> None:
    """Accept only a JWT signed RS256 by the App's key, issued by it, and current."""
    try:
        claims = jwt.decode(
            token,
            app.public_key_pem,
            algorithms=["RS256"],
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
    except jwt.PyJWTError as exc:
        raise SandboxError(401, "A JSON web token could not be decoded") from exc
    if str(claims.get("iss")) != str(app.app_id):
        raise SandboxError(401, "'Issuer' claim ('iss') must be an Integer")
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int | float) or not isinstance(exp, int | float):
        raise SandboxError(401, "'Issued at' and 'Expiration time' claims are required")
    issued, expires = (
        datetime.fromtimestamp(iat, now.tzinfo),
        datetime.fromtimestamp(exp, now.tzinfo),
    )
    if issued > now + CLOCK_DRIFT:
        raise SandboxError(
            401, "'Issued at' claim ('iat') must be an Integer representing a time in the past"
        )
    if expires <= now - CLOCK_DRIFT:
        raise SandboxError(401, "'Expiration time' claim ('exp') is too far in the past")
    if expires - issued > MAX_JWT_LIFETIME + CLOCK_DRIFT:
        raise SandboxError(401, "'Expiration time' claim ('exp') is too far in the future")


def require_app_jwt(state: SandboxState, authorization: str | None) -> None:
    """The request must authenticate as the App (``Authorization: Bearer <JWT>``)."""
    cred = credential(authorization)
    if cred is None or cred[0] != "bearer" or cred[1].startswith("ghs_"):
        raise SandboxError(401, "A JSON web token could not be decoded")
    verify_app_jwt(cred[1], app=state.app, now=state.now())


def require_token(state: SandboxState, authorization: str | None) -> AccessToken:
    """The request must carry a current installation token (``token``/``Bearer``/Basic)."""
    cred = credential(authorization)
    if cred is None:
        # Without credentials a private repository does not exist, as on GitHub.
        raise SandboxError(404, "Not Found")
    with state.lock:
        token = state.tokens.get(cred[1])
    if token is None or token.expires_at <= state.now():
        raise SandboxError(401, "Bad credentials")
    return token


def require_repo(state: SandboxState, authorization: str | None, owner: str, name: str) -> Repo:
    """The repository, if the installation token may see it; 404 otherwise, as on GitHub."""
    token = require_token(state, authorization)
    with state.lock:
        repo = state.repos.get(f"{owner}/{name}".lower())
    if repo is None or repo.installation_id != token.installation_id:
        raise SandboxError(404, "Not Found")
    return repo


def require_org(state: SandboxState, authorization: str | None, org: str) -> None:
    """The installation token must belong to the installation on ``org``."""
    token = require_token(state, authorization)
    with state.lock:
        installation = state.installations.get(token.installation_id)
    if installation is None or installation.account_login.lower() != org.lower():
        raise SandboxError(404, "Not Found")
