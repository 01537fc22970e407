"""Async client for the EngageLab AppPush v4 API: auth, retries, rate limit. The only httpx user.

Not pure: network I/O. API facts and every [ours] assumption come from reconciler.engagelab.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import json
import logging
import math
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from reconciler import engagelab as api
from reconciler.api.ratelimit import RateLimiter
from reconciler.api.retry import BackoffPolicy, server_hint
from reconciler.errors import ApiError, ConfigError
from reconciler.remote.shape import UNREADABLE, is_summary, normalise

__all__ = ["ApiError", "ClientConfig", "EngageLabClient", "Guard", "RemotePlan"]

SUMMARY_READS: Final = 8  # GETs in flight when list items are summaries [ours]
log = logging.getLogger(__name__)
USER_AGENT: Final = "reconcile/0.1 (+httpx)"
_SNIPPET: Final = 200  # characters of a non-JSON error body kept in the message
# guard(worst) -> None to send the attempt, or a reason not to. `worst`: seconds from now until
# that attempt's request could still reach the server (EngageLabClient.worst_landing_seconds).
Guard = Callable[[float], str | None]


class ClientConfig(BaseModel):
    """Where and how to call EngageLab. The master secret never shows in repr, str or dumps.

    `app_key_fingerprint` names the AppKey without showing it: "sha256:" and the first 16 hex
    digits of sha256(app_key), stable across runs and machines, for logs, state and reports.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    base_url: str
    app_key: str = Field(min_length=1)
    master_secret: SecretStr
    timeout_seconds: float = Field(default=10.0, gt=0)
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    max_attempts: int = Field(default=6, ge=1)
    max_retry_seconds: float = Field(default=60.0, ge=0)
    backoff_base: float = Field(default=0.5, ge=0)
    backoff_cap: float = Field(default=10.0, ge=0)
    # [doc] 500/s is the AppKey's whole budget, shared with every other tool: going above can
    # only earn 429s, so the user may lower it but not raise it.
    rate_limit: float = Field(default=api.RATE_LIMIT_PER_SECOND, gt=0, le=api.RATE_LIMIT_PER_SECOND)
    max_connections: int = Field(default=64, ge=1)

    @field_validator("master_secret")
    @classmethod
    def _secret_not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("must not be empty")
        return value

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        return check_base_url(value)

    @property
    def app_key_fingerprint(self) -> str:
        """ "sha256:" and 16 hex digits of sha256(app_key): names the key, never shows it."""
        return api.app_key_fingerprint(self.app_key)

    @classmethod
    def from_env(
        cls,
        *,
        data_center: str | None = None,
        base_url: str | None = None,
        rate_limit: float | None = None,
        timeout: float | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> ClientConfig:
        """From the arguments, else ENGAGELAB_* variables; credentials only from the environment.

        `timeout` (else $ENGAGELAB_TIMEOUT) is the request timeout, `timeout_seconds`.
        """
        if data_center and base_url:
            raise ConfigError("give either a data center or a base URL, not both")
        if not data_center and not base_url:
            base_url = environ.get(api.ENV_BASE_URL) or None
            data_center = None if base_url else environ.get(api.ENV_DATA_CENTER) or None
        if not base_url:
            base_url = data_center_url(data_center or api.DEFAULT_DATA_CENTER)
        if rate_limit is None and environ.get(api.ENV_RATE_LIMIT):
            rate_limit = _parse_number(
                api.ENV_RATE_LIMIT, environ[api.ENV_RATE_LIMIT], "requests per second"
            )
        if timeout is None and environ.get(api.ENV_TIMEOUT):
            timeout = _parse_number(api.ENV_TIMEOUT, environ[api.ENV_TIMEOUT], "seconds")
        app_key = _required(environ, api.ENV_APP_KEY)
        secret = _required(environ, api.ENV_MASTER_SECRET)
        extra: dict[str, Any] = {} if rate_limit is None else {"rate_limit": rate_limit}
        if timeout is not None:
            extra["timeout_seconds"] = timeout
        try:
            return cls(base_url=base_url, app_key=app_key, master_secret=SecretStr(secret), **extra)
        except ValidationError as exc:
            # hide_input_in_errors keeps values out; only field names and rules are shown.
            why = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"invalid client configuration: {why}") from None


def data_center_url(name: str) -> str:
    url = api.DATA_CENTERS.get(name.strip().lower())
    if url is None:
        valid = ", ".join(api.DATA_CENTERS)
        # A long or odd value may be a pasted secret: only a short plain token is repeated.
        shown = api.echo_token(name) or "(not shown: it is not a short name)"
        raise ConfigError(f"unknown data center {shown}; choose one of: {valid}")
    return url


def check_base_url(value: str) -> str:
    """The base URL without a trailing slash, or ConfigError. An error shows at most
    scheme://host[:port] (api.shown_url): never userinfo, path, query or fragment."""
    try:
        parts = urlsplit(value.strip())
        hostname = parts.hostname
        has_credentials = parts.username is not None or parts.password is not None
    except ValueError:  # e.g. an unbalanced [ in the host
        raise ConfigError(
            "the base URL is not a valid URL (not shown, in case it holds a secret)"
        ) from None
    if has_credentials:
        # Never echo the URL: it carries credentials.
        raise ConfigError(
            "the base URL must not carry credentials (user:password@); "
            f"set {api.ENV_APP_KEY} and {api.ENV_MASTER_SECRET} instead"
        )
    shown = api.shown_url(value)
    named = f"base URL {shown}" if shown else "the base URL (not shown, in case it holds a secret)"
    if parts.scheme not in ("http", "https") or not hostname:
        raise ConfigError(f"{named} is not an http(s) URL with a host")
    if parts.scheme == "http" and hostname not in api.PLAIN_HTTP_HOSTS:
        raise ConfigError(
            f"{named} uses plain http to a remote host, which would expose the "
            "master secret; use https (plain http is allowed for 127.0.0.1/localhost only)"
        )
    if parts.query or parts.fragment:
        raise ConfigError(
            f"{named} must not have a query or fragment (not shown: it may hold a token)"
        )
    return value.strip().rstrip("/")


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "")
    if not value.strip():
        raise ConfigError(f"{name} is not set; export it in the environment (never in a file)")
    return value.strip()


def _parse_number(variable: str, text: str, unit: str) -> float:
    """A finite float from an environment variable; the value is repeated in an error
    only when it is a short plain token (api.echo_token), since it may be a pasted secret."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        shown = api.echo_token(text)
        what = f"={shown}" if shown else " (its value is not shown)"
        raise ConfigError(f"{variable}{what} is not a number of {unit}") from None
    return value


@dataclass(frozen=True, slots=True)
class RemotePlan:
    """A push plan as EngageLab lists it."""

    plan_id: str
    description: str
    count: int | None = None
    create_time: str | None = None
    last_used_time: str | None = None


class _Kind(enum.Enum):
    READ = "read"  # GET: safe to repeat
    WRITE = "write"  # PUT, DELETE, plan upsert: repeating gives the same end state
    CREATE = "create"  # schedule POST: no idempotency key, a repeat is a second push


@dataclass(frozen=True, slots=True)
class _Failure:
    message: str
    status: int | None = None
    code: int | None = None
    transport: bool = False
    sent: bool = True  # the request may have reached the server
    usable: bool = True  # False: a local bug (bad URL, protocol), repeating cannot help
    hint: float | None = None

    @property
    def not_found(self) -> bool:
        return self.status == 404 or self.code in api.NOT_FOUND_CODES

    @property
    def server_retryable(self) -> bool:
        return self.status in api.RETRYABLE_HTTP_STATUS or self.code in api.RETRYABLE_CODES

    @property
    def may_have_applied(self) -> bool:
        """Did the server perhaps do the work? Lost answers, 5xx, internal-error codes, and the
        answers of api.WRITE_OUTCOME_UNKNOWN_HTTP_STATUS (408, 409, 425, 499)."""
        if self.transport:
            return self.sent and self.usable
        if self.status in api.CREATE_RETRYABLE_HTTP_STATUS or self.code in (
            api.CREATE_RETRYABLE_CODES
        ):
            return False  # throttled: refused before any work
        return (
            (self.status or 0) >= api.WRITE_OUTCOME_UNKNOWN_FROM_STATUS
            or self.status in api.WRITE_OUTCOME_UNKNOWN_HTTP_STATUS
            or self.code in api.RETRYABLE_CODES
        )

    def summary(self) -> str:
        codes = [f"HTTP {self.status}"] if self.status is not None else []
        codes += [f"code {self.code}"] if self.code is not None else []
        return f"{', '.join(codes)}: {self.message}" if codes else self.message


@dataclass(frozen=True, slots=True)
class _Answer:
    data: Any  # decoded JSON, SUCCESS_TEXT, or None for an empty body
    attempts: int


_NOT_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_LOCAL_BUGS: Final = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)


class EngageLabClient:
    """Typed EngageLab calls. Share one instance (and so one rate limiter) among tasks."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._policy = BackoffPolicy(
            max_attempts=config.max_attempts,
            max_total_seconds=config.max_retry_seconds,
            base=config.backoff_base,
            cap=config.backoff_cap,
        )
        self._limiter = limiter if limiter is not None else RateLimiter(config.rate_limit)
        self._sleep = sleep
        self._rng = rng
        self._clock = clock
        secret = config.master_secret.get_secret_value()
        token = base64.b64encode(f"{config.app_key}:{secret}".encode()).decode("ascii")
        self._redactions = tuple(s for s in (secret, token) if len(s) >= 4)
        self._http = httpx.AsyncClient(
            base_url=config.base_url,
            auth=httpx.BasicAuth(config.app_key, secret),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            # No pool timeout: waiting for a free connection is our own queue, not the server.
            timeout=httpx.Timeout(
                config.timeout_seconds, connect=config.connect_timeout_seconds, pool=None
            ),
            limits=httpx.Limits(
                max_connections=config.max_connections,
                max_keepalive_connections=config.max_connections,
            ),
            transport=transport,
            follow_redirects=False,  # a redirect could carry the Basic auth to another host
        )
        self.calls_made = 0
        self._server_date: tuple[datetime, float] | None = None

    def __repr__(self) -> str:
        return f"EngageLabClient(base_url={self._config.base_url!r}, limiter={self._limiter!r})"

    @property
    def limiter(self) -> RateLimiter:
        return self._limiter

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> EngageLabClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- push plans ---------------------------------------------------------------------------
    async def upsert_plan(self, plan_id: str, description: str) -> None:
        body = {"plan_id": plan_id, "plan_description": description}
        await self._call("POST", api.PATH_PUSH_PLAN, _Kind.WRITE, body=body)

    async def list_plans(self) -> list[RemotePlan]:
        """Every plan of the AppKey, all pages."""
        path = api.PATH_PUSH_PLAN_LIST
        plans: dict[str, RemotePlan] = {}
        for page in range(1, api.LIST_MAX_PAGES + 1):
            params = {"page_index": page, "page_size": api.PLAN_LIST_PAGE_SIZE}
            data = self._object((await self._call("GET", path, _Kind.READ, params=params)), path)
            items = data.get("push_plan_info") or []
            if not isinstance(items, list):
                raise self._unexpected("GET", path, "push_plan_info is not a list")
            known = len(plans)
            for item in items:
                plan = _remote_plan(item)
                if plan is None:
                    raise self._unexpected("GET", path, "a plan without plan_id")
                plans[plan.plan_id] = plan
            total = data.get("total")
            # A page with nothing new ends the listing too: a server that ignores page_index
            # must not make us walk LIST_MAX_PAGES pages.
            if len(plans) == known or (isinstance(total, int) and len(plans) >= total):
                break
        return list(plans.values())

    # --- schedules ----------------------------------------------------------------------------
    async def create_schedule(self, body: Mapping[str, Any], *, guard: Guard | None = None) -> str:
        """Create; return the schedule_id. Never repeated once the request may have been sent:
        an ApiError with outcome_unknown=True then means "look it up by name first".

        `guard(worst)` is asked before every attempt (see `_call`): a reason string stops the
        create unsent with ApiError(gated=True).
        """
        path = api.PATH_SCHEDULES
        answer = await self._call("POST", path, _Kind.CREATE, body=dict(body), guard=guard)
        data = _first(answer.data)
        schedule_id = data.get("schedule_id") if isinstance(data, dict) else None
        if not isinstance(schedule_id, str) or not schedule_id:
            # HTTP 200 means it was created, but we cannot tell which one it is.
            raise ApiError(
                "POST",
                path,
                "HTTP 200 without a schedule_id",
                status=200,
                outcome_unknown=True,
                attempts=answer.attempts,
            )
        return schedule_id

    async def get_schedule(self, schedule_id: str) -> dict[str, Any] | None:
        """The schedule, normalised (remote_shape), or None when EngageLab does not know it.
        [sdk] array, [v3] object. A 400 with code 8100 raises (maybe_not_found): only the
        caller knows whether the listing agrees the id is gone."""
        path = _schedule_path(schedule_id)
        try:
            answer = await self._call("GET", path, _Kind.READ)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        data = _first(answer.data)
        if data is None:
            return None
        if not isinstance(data, dict):
            raise self._unexpected("GET", path, "the schedule is not an object")
        data.setdefault("schedule_id", schedule_id)
        return normalise(data)

    async def update_schedule(
        self, schedule_id: str, patch: Mapping[str, Any], *, guard: Guard | None = None
    ) -> dict[str, Any]:
        """PUT the changed fields; return the updated schedule, or {} if the answer has none.

        `guard` as for create_schedule: asked before every attempt, a reason stops it unsent.
        """
        path = _schedule_path(schedule_id)
        answer = await self._call("PUT", path, _Kind.WRITE, body=dict(patch), guard=guard)
        data = _first(answer.data)
        return data if isinstance(data, dict) else {}

    async def delete_schedule(self, schedule_id: str) -> None:
        """Delete. A 404 on the first attempt raises (not_found=True); after a lost answer, done."""
        await self._call("DELETE", _schedule_path(schedule_id), _Kind.WRITE)

    async def list_schedules(self) -> list[dict[str, Any]]:
        """Every schedule of the AppKey, all pages, each once, normalised (remote_shape). A list
        item that is only a summary is read again by id (a task gone meanwhile is left out)."""
        items = await self._list_schedule_pages()
        summaries = [i for i, item in enumerate(items) if is_summary(item)]
        if not summaries:
            return items
        semaphore = asyncio.Semaphore(SUMMARY_READS)

        async def full(index: int) -> dict[str, Any]:
            item = items[index]
            async with semaphore:
                try:
                    found = await self.get_schedule(str(item["schedule_id"]))
                except ApiError as error:
                    if not error.maybe_not_found:
                        raise
                    # Listed, yet "not exist" by id: neither gone nor readable.
                    return {**item, UNREADABLE: f"listed, but its GET answered {error}"}
            if found is None:  # listed, yet unknown by id: never taken for gone
                return {**item, UNREADABLE: "listed, but its GET answers that it does not exist"}
            if is_summary(found):
                return {**item, UNREADABLE: "its GET by id is only a summary too"}
            return found

        read = await asyncio.gather(*(full(i) for i in summaries))
        fulls = dict(zip(summaries, read, strict=True))
        return [fulls.get(index, item) for index, item in enumerate(items)]

    async def _list_schedule_pages(self) -> list[dict[str, Any]]:
        """Every page of GET /v4/schedules, each id once."""
        path = api.PATH_SCHEDULES
        found: dict[str, dict[str, Any]] = {}
        for page in range(1, api.LIST_MAX_PAGES + 1):
            answer = await self._call("GET", path, _Kind.READ, params={"page": page})
            data = self._object(answer, path)
            items = data.get("schedules") or []
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise self._unexpected("GET", path, "schedules is not a list of objects")
            known = len(found)
            for item in items:
                sid = item.get("schedule_id")
                if not isinstance(sid, str) or not sid:
                    raise self._unexpected("GET", path, "a schedule without schedule_id")
                # Pages shift when schedules come and go mid-listing: keep each id once.
                found[sid] = normalise(item)
            pages = data.get("total_pages")
            if len(found) == known or (isinstance(pages, int) and page >= pages):
                break
        return list(found.values())

    # --- statistics ---------------------------------------------------------------------------
    async def plan_detail(self, plan_ids: Sequence[str], start: date, end: date) -> dict[str, Any]:
        """One raw plan-statistics call, keyed by plan id."""
        path = api.PATH_PLAN_DETAIL
        params = {
            "plan_ids": ",".join(plan_ids),
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
        }
        return self._object(await self._call("GET", path, _Kind.READ, params=params), path)

    # --- the server's clock --------------------------------------------------------------------
    def server_date(self) -> tuple[datetime, float] | None:
        """(the latest response's Date header as an aware UTC datetime, seconds since that
        response arrived by this client's monotonic clock), or None before any parsable Date.

        Date has a one-second resolution (RFC 9110 5.6.7): the server's clock now is about
        `date + elapsed`, up to a second later.
        """
        seen = self._server_date
        if seen is None:
            return None
        when, stamp = seen
        return when, max(0.0, self._clock() - stamp)

    def _note_date(self, headers: httpx.Headers) -> None:
        when = _parse_http_date(headers.get("date"))
        if when is not None:
            self._server_date = (when, self._clock())

    # --- the one request loop -----------------------------------------------------------------
    @property
    def worst_landing_seconds(self) -> float:
        """How long after its guard an attempt's request may still reach the server: connect,
        then one request timeout to send it and hear the answer. A guarded attempt is held to
        this as a hard deadline (no answer by then: a lost answer, so outcome unknown)."""
        return self._config.connect_timeout_seconds + self._config.timeout_seconds

    async def _call(
        self,
        method: str,
        path: str,
        kind: _Kind,
        *,
        body: Any = None,
        params: Mapping[str, str | int] | None = None,
        guard: Guard | None = None,
    ) -> _Answer:
        started = self._clock()
        attempts = 0
        maybe_applied = False  # an earlier attempt may have done the work
        last: _Failure | None = None
        worst = self.worst_landing_seconds
        while True:
            await self._limiter.acquire()
            if guard is not None and (reason := guard(worst)) is not None:
                # Asked after the limiter, just before sending: nothing of this attempt is sent.
                raise self._gated(method, path, reason, attempts, maybe_applied, last)
            attempts += 1
            self.calls_made += 1
            failure = await self._attempt(
                method, path, body, params, deadline=worst if guard is not None else None
            )
            if isinstance(failure, _Answer):
                return _Answer(failure.data, attempts)  # the one success exit
            log.debug("%s %s failed: %s (attempt %d)", method, path, failure.status, attempts)
            if failure.not_found:
                if maybe_applied and method == "DELETE":
                    return _Answer(None, attempts)  # our lost earlier attempt deleted it
                raise self._error(method, path, failure, attempts, not_found=True)
            if kind is _Kind.CREATE or method == "PUT":
                # A PUT is repeated only when it certainly did not land, like a create: a first
                # attempt committed late would overwrite whatever a later update sends.
                retry = _create_may_retry(failure)
                if not retry and failure.may_have_applied:
                    raise self._error(
                        method, path, failure, attempts, outcome_unknown=True, retryable=False
                    )
            else:
                retry = failure.usable and (failure.transport or failure.server_retryable)
            maybe_applied = maybe_applied or (kind is not _Kind.READ and failure.may_have_applied)
            last = failure
            if not retry:
                raise self._error(method, path, failure, attempts, outcome_unknown=maybe_applied)
            delay = self._policy.next_delay(
                attempts=attempts,
                elapsed=self._clock() - started,
                draw=self._rng(),
                hint=failure.hint,
            )
            if delay is None:
                raise self._error(
                    method, path, failure, attempts, exhausted=True, outcome_unknown=maybe_applied
                )
            if guard is not None and (reason := guard(delay + worst)) is not None:
                # The retry would be refused after the sleep anyway: stop now, unsent.
                raise self._gated(method, path, reason, attempts, maybe_applied, last)
            if failure.hint:
                self._limiter.hold_off(failure.hint)  # the AppKey is throttled for everyone
            await self._sleep(delay)

    def _gated(
        self,
        method: str,
        path: str,
        reason: str,
        attempts: int,
        maybe_applied: bool,
        last: _Failure | None,
    ) -> ApiError:
        message = f"not sent: {reason}"
        if last is not None:
            message += f" (the attempt before failed: {last.summary()})"
        return ApiError(
            method,
            path,
            self._redact(message),
            retryable=False,
            outcome_unknown=maybe_applied,
            attempts=attempts,
            gated=True,
        )

    async def _attempt(
        self,
        method: str,
        path: str,
        body: Any,
        params: Mapping[str, str | int] | None,
        *,
        deadline: float | None = None,
    ) -> _Answer | _Failure:
        try:
            async with asyncio.timeout(deadline):
                response = await self._http.request(method, path, json=body, params=params)
        except TimeoutError:
            if deadline is None:
                raise
            # Only a guarded attempt has a deadline; the request may be on the wire by now.
            return _Failure(
                message=f"no answer within {deadline:g} s (the guarded attempt's deadline)",
                transport=True,
            )
        except httpx.RequestError as exc:
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if isinstance(exc, _NOT_SENT):
                # The base URL carries no credentials (check_base_url), so it may be named.
                detail = (
                    f"cannot reach {self._config.base_url} ({detail}); check the base URL or "
                    "data center, and for the local emulator that `reconcile emulator` is running"
                )
            return _Failure(
                message=detail,
                transport=True,
                sent=not isinstance(exc, _NOT_SENT + _LOCAL_BUGS),
                usable=not isinstance(exc, _LOCAL_BUGS),
            )
        self._note_date(response.headers)
        log.debug("%s %s -> %d", method, path, response.status_code)
        data = _decode(response.content)
        ok = response.status_code == 200
        envelope = _error_envelope(data, strict=ok)
        if ok and envelope is None:
            return _Answer(data, 0)
        code, message = envelope or (None, None)
        if message is None:
            message = _describe_body(data)
        return _Failure(
            message=message,
            status=response.status_code,
            code=code,
            hint=server_hint(response.headers),
        )

    def _error(
        self,
        method: str,
        path: str,
        failure: _Failure,
        attempts: int,
        *,
        exhausted: bool = False,
        outcome_unknown: bool = False,
        not_found: bool = False,
        retryable: bool | None = None,
    ) -> ApiError:
        if retryable is None:
            retryable = failure.usable and (failure.transport or failure.server_retryable)
        return ApiError(
            method,
            path,
            self._redact(failure.message),
            status=failure.status,
            code=failure.code,
            retryable=retryable,
            outcome_unknown=outcome_unknown,
            not_found=not_found,
            attempts=attempts,
            exhausted=exhausted,
        )

    def _unexpected(self, method: str, path: str, why: str) -> ApiError:
        return ApiError(method, path, f"unexpected answer: {why}", status=200)

    def _object(self, answer: _Answer, path: str) -> dict[str, Any]:
        if not isinstance(answer.data, dict):
            raise self._unexpected("GET", path, "not a JSON object")
        return answer.data

    def _redact(self, text: str) -> str:
        # Servers and proxies sometimes echo the request; never let the secret through.
        for secret in self._redactions:
            text = text.replace(secret, "***")
        return text


def _create_may_retry(failure: _Failure) -> bool:
    """A create is repeated only when it certainly did not take effect: throttled or not sent."""
    if failure.transport:
        return failure.usable and not failure.sent
    return (
        failure.status in api.CREATE_RETRYABLE_HTTP_STATUS
        or failure.code in api.CREATE_RETRYABLE_CODES
    )


def _schedule_path(schedule_id: str) -> str:
    if not schedule_id:
        raise ValueError("schedule_id must not be empty")
    return f"{api.PATH_SCHEDULES}/{quote(schedule_id, safe='')}"


def _decode(content: bytes) -> Any:
    text = content.decode("utf-8", errors="replace").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return api.SUCCESS_TEXT if text == api.SUCCESS_TEXT else _NotJson(text)


@dataclass(frozen=True, slots=True)
class _NotJson:
    text: str


def _error_envelope(data: Any, *, strict: bool) -> tuple[int | None, str | None] | None:
    """(code, message) from {"error": {...}} [doc] or a bare {"code", "message"} [sdk].

    `strict` for HTTP 200 bodies: a plan may be named "error" or "code" in a statistics answer,
    so there only a well-formed envelope with a non-zero code counts as an error.
    """
    if not isinstance(data, dict):
        return None
    inner = data.get("error")
    if isinstance(inner, dict) and (not strict or _as_int(inner.get("code")) is not None):
        source = inner
    elif "code" in data:
        source = data
    else:
        return None
    code = _as_int(source.get("code"))
    message = source.get("message", source.get("msg"))
    if strict and (not code or not isinstance(message, str)):
        return None  # e.g. a bare {"code": 0, "message": "success"}
    return code, str(message) if message is not None else None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _describe_body(data: Any) -> str:
    if isinstance(data, _NotJson):
        return f"non-JSON answer: {data.text[:_SNIPPET]!r}"
    if data is None:
        return "empty answer"
    return "answer without an error message"


def _first(data: Any) -> Any:
    """[sdk] decode GET /v4/schedules/{id} as an array, [v3] as an object: accept both."""
    if isinstance(data, list):
        return data[0] if data else None
    return data


def _remote_plan(item: Any) -> RemotePlan | None:
    if not isinstance(item, dict):
        return None
    plan_id = item.get("plan_id", item.get("push_id"))  # [sdk] older SDKs say push_id
    if not isinstance(plan_id, str) or not plan_id:
        return None
    count = item.get("count")
    return RemotePlan(
        plan_id=plan_id,
        description=str(item.get("plan_description") or ""),
        count=count if isinstance(count, int) and not isinstance(count, bool) else None,
        create_time=_opt_str(item.get("create_time")),
        last_used_time=_opt_str(item.get("last_used_time")),
    )


def _parse_http_date(text: str | None) -> datetime | None:
    """An HTTP date (RFC 9110) as an aware UTC datetime; None when missing or unparsable."""
    if not text:
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # HTTP dates are GMT
    return when.astimezone(UTC)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
