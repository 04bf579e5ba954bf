"""GitHub REST through githubkit, as a GitHub App: installation tokens, retries, typed results."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx
import jwt
from githubkit import GitHub, TokenAuthStrategy
from githubkit.exception import RequestError, RequestFailed
from pydantic import BaseModel

from bot.base.clock import Clock
from bot.base.observability import record_github_call
from bot.base.private_keys import parsed_private_key
from bot.base.retry_policy import retry_delay

T = TypeVar("T", bound=BaseModel)

TOKEN_REFRESH_MARGIN = timedelta(minutes=5)
# Only these are repeated after a server error or a lost answer: a write may have taken
# effect before the failure, so its caller (bot/runtime/outbox.py) finds out before writing again.
RETRYABLE_BLINDLY = frozenset({"GET", "HEAD"})
JWT_LIFETIME = timedelta(minutes=9)  # GitHub accepts at most 10
JWT_REUSE_MARGIN = timedelta(minutes=1)


class GitHubError(Exception):
    """A GitHub call failed. Carries status and GitHub's message, never a token."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"GitHub {method} {path} -> {status}: {message}")
        self.status = status
        self.github_message = message


class GitHubAuthError(GitHubError):
    """The installation token could not be minted: never read as "the file is absent"."""


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: datetime


class AppCredentials:
    """Signs App JWTs (with the injected clock) and caches installation tokens per installation."""

    def __init__(self, *, app_id: int, private_key: str, api_url: str, clock: Clock) -> None:
        self._app_id = app_id
        # Parsed once: loading the PEM for every JWT was most of a worker's time under load.
        self._private_key = parsed_private_key(private_key)
        self._api_url = api_url
        self._clock = clock
        self._tokens: dict[int, _Token] = {}
        self._lock = threading.Lock()
        self._jwt: _Token | None = None

    def app_jwt(self) -> str:
        """The App's JWT, signed again only when the cached one has under a minute left."""
        now = self._clock.now()
        cached = self._jwt
        if (
            cached is not None
            and now < cached.expires_at - JWT_REUSE_MARGIN
            and now >= (cached.expires_at - JWT_LIFETIME)
        ):
            return cached.value
        at = int(now.timestamp())
        # iat 60 s in the past tolerates clock drift, as GitHub recommends; exp under 10 min.
        claims = {"iat": at - 60, "exp": at + 540, "iss": str(self._app_id)}
        value = jwt.encode(claims, self._private_key, algorithm="RS256")  # type: ignore[arg-type]
        self._jwt = _Token(value=value, expires_at=now + JWT_LIFETIME)
        return value

    def installation_token(self, installation_id: int) -> str:
        """A token for this installation only, refreshed before it expires."""
        with self._lock:
            cached = self._tokens.get(installation_id)
            if cached and cached.expires_at - self._clock.now() > TOKEN_REFRESH_MARGIN:
                return cached.value
            token = self._fetch_token(installation_id)
            self._tokens[installation_id] = token
            return token.value

    def _fetch_token(self, installation_id: int) -> _Token:
        path = f"/app/installations/{installation_id}/access_tokens"
        gh = _github(self._api_url, self.app_jwt(), bearer=True)
        try:
            response = gh.request("POST", path)
            record_github_call("POST", path, response.status_code, dict(response.headers))
        except RequestFailed as exc:
            record_github_call("POST", path, exc.response.status_code)
            raise GitHubAuthError("POST", path, exc.response.status_code, _message(exc)) from None
        except RequestError as exc:
            record_github_call("POST", path, 0)
            raise GitHubAuthError("POST", path, 0, type(exc).__name__) from None
        body = response.json()
        expires = datetime.fromisoformat(str(body["expires_at"]).replace("Z", "+00:00"))
        return _Token(value=str(body["token"]), expires_at=expires)


class _BearerAuth(TokenAuthStrategy):
    def get_auth_flow(self, github: Any) -> Any:
        import httpx

        token = self.token

        class _Flow(httpx.Auth):
            def auth_flow(self, request: httpx.Request) -> Any:
                request.headers["Authorization"] = f"Bearer {token}"
                yield request

        return _Flow()


class _SharedTransport(httpx.HTTPTransport):
    """One connection pool (and one SSL context) per API base URL, shared by every client.

    githubkit closes its client after each request, which would close the pool: ignore it.
    """

    def close(self) -> None:
        pass


_transports: dict[str, _SharedTransport] = {}
_transports_lock = threading.Lock()


def _transport(api_url: str) -> _SharedTransport:
    with _transports_lock:
        transport = _transports.get(api_url)
        if transport is None:
            transport = _transports[api_url] = _SharedTransport()
        return transport


def _github(api_url: str, token: str, *, bearer: bool = False, timeout: float = 30) -> GitHub[Any]:
    auth = _BearerAuth(token) if bearer else TokenAuthStrategy(token)
    # githubkit's own retry sleeps on the wall clock; ours goes through the injected clock.
    return GitHub(
        auth,
        base_url=api_url + "/",
        auto_retry=False,
        http_cache=False,
        timeout=timeout,
        transport=_transport(api_url),
    )


def _message(exc: RequestFailed) -> str:
    try:
        body = exc.response.json()
        return str(body.get("message", "")) if isinstance(body, dict) else ""
    except Exception:
        return ""


class InstallationClient:
    """REST calls on behalf of one installation, with rate-limit-aware retries."""

    def __init__(
        self,
        *,
        credentials: AppCredentials,
        installation_id: int,
        api_url: str,
        clock: Clock,
        max_retries: int = 4,
        max_wait_s: float = 900,
        timeout_s: float = 30,
    ) -> None:
        self._credentials = credentials
        self._timeout_s = timeout_s
        self.installation_id = installation_id
        self.api_url = api_url
        self._clock = clock
        self._max_retries = max_retries
        self._max_wait_s = max_wait_s

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        accept: str | None = None,
    ) -> Any:
        """Call GitHub and return the decoded JSON body (None for 204).

        Rate-limit refusals are waited out for every method (GitHub did nothing). Server
        errors and lost answers are retried for reads only; a write raises at once.
        """
        attempt = 0
        while True:
            token = self._credentials.installation_token(self.installation_id)
            gh = _github(self.api_url, token, timeout=self._timeout_s)
            headers = {"Accept": accept} if accept else None
            try:
                response = gh.request(method, path, json=json, params=params, headers=headers)
                record_github_call(method, path, response.status_code, dict(response.headers))
            except RequestFailed as exc:
                status = exc.response.status_code
                record_github_call(method, path, status, dict(exc.response.headers))
                delay = retry_delay(
                    status=status,
                    headers=dict(exc.response.headers),
                    attempt=attempt,
                    now=self._clock.now(),
                    max_wait=self._max_wait_s,
                )
                in_doubt = status >= 500 and method.upper() not in RETRYABLE_BLINDLY
                if delay is None or in_doubt or attempt >= self._max_retries:
                    raise GitHubError(method, path, status, _message(exc)) from None
                attempt += 1
                self._clock.sleep(delay)
                continue
            except RequestError as exc:
                record_github_call(method, path, 0)
                if method.upper() not in RETRYABLE_BLINDLY or attempt >= self._max_retries:
                    raise GitHubError(method, path, 0, type(exc).__name__) from None
                attempt += 1
                self._clock.sleep(float(2**attempt))
                continue
            if response.status_code == 204 or not response.content:
                return None
            return response.json()

    def get(self, path: str, model: type[T], **params: Any) -> T:
        return model.model_validate(self.request("GET", path, params=params or None))

    def get_optional(self, path: str, model: type[T], **params: Any) -> T | None:
        """GET that answers None on 404 of this request itself (a token failure still raises)."""
        try:
            return self.get(path, model, **params)
        except GitHubAuthError:
            raise
        except GitHubError as exc:
            if exc.status == 404:
                return None
            raise

    def paginate(self, path: str, *, per_page: int = 100, limit: int = 3000) -> list[Any]:
        """All items of a list endpoint, page by page (GitHub caps PR files at 3000)."""
        items: list[Any] = []
        page = 1
        while len(items) < limit:
            batch = self.request("GET", path, params={"per_page": per_page, "page": page})
            if not isinstance(batch, list) or not batch:
                break
            items.extend(batch)
            if len(batch) < per_page:
                break
            page += 1
        return items[:limit]

    @property
    def clock(self) -> Clock:
        return self._clock

    def installation_token(self) -> str:
        """For Git LFS, which authenticates with the same installation token."""
        return self._credentials.installation_token(self.installation_id)


class GitHubApp:
    """Factory for per-installation clients sharing one token cache."""

    def __init__(
        self,
        *,
        app_id: int,
        private_key: str,
        api_url: str,
        clock: Clock,
        max_retries: int = 4,
        max_wait_s: float = 900,
        timeout_s: float = 30,
    ) -> None:
        self.api_url = api_url
        self._timeout_s = timeout_s
        self.credentials = AppCredentials(
            app_id=app_id, private_key=private_key, api_url=api_url, clock=clock
        )
        self._clock = clock
        self._max_retries = max_retries
        self._max_wait_s = max_wait_s
        self._bot_login: str | None = None

    def bot_login(self) -> str:
        """`<app-slug>[bot]`: the login our comments carry, so we ignore our own commands."""
        if self._bot_login is None:
            gh = _github(self.api_url, self.credentials.app_jwt(), bearer=True)
            try:
                slug = gh.request("GET", "/app").json()["slug"]
            except RequestFailed as exc:
                raise GitHubError("GET", "/app", exc.response.status_code, _message(exc)) from None
            self._bot_login = f"{slug}[bot]"
        return self._bot_login

    def installation(self, installation_id: int) -> InstallationClient:
        return InstallationClient(
            credentials=self.credentials,
            installation_id=installation_id,
            api_url=self.api_url,
            clock=self._clock,
            max_retries=self._max_retries,
            max_wait_s=self._max_wait_s,
            timeout_s=self._timeout_s,
        )
