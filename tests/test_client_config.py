"""Client configuration from arguments and the environment; secrets never leak from errors."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from reconciler import engagelab as api
from reconciler.api.client import ClientConfig, EngageLabClient
from reconciler.api.ratelimit import RateLimiter
from reconciler.errors import ApiError, ConfigError
from tests.support.fake_http import (
    APP_KEY,
    NOT_RETRYABLE,
    RETRYABLE,
    SECRET,
    TOKEN,
    Script,
    answer,
    config,
    create,
    list_all,
    run,
)

ENV = {api.ENV_APP_KEY: APP_KEY, api.ENV_MASTER_SECRET: SECRET}


@pytest.mark.parametrize(("name", "url"), sorted(api.DATA_CENTERS.items()))
def test_every_data_center(name: str, url: str) -> None:
    cfg = ClientConfig.from_env(data_center=name.upper(), environ=ENV)
    assert cfg.base_url == url
    assert cfg.app_key == APP_KEY
    assert cfg.master_secret.get_secret_value() == SECRET


def test_defaults() -> None:
    cfg = ClientConfig.from_env(environ=ENV)
    assert cfg.base_url == api.DATA_CENTERS[api.DEFAULT_DATA_CENTER]
    assert cfg.rate_limit == api.RATE_LIMIT_PER_SECOND
    assert (cfg.timeout_seconds, cfg.connect_timeout_seconds) == (10.0, 5.0)
    assert (cfg.max_attempts, cfg.max_retry_seconds) == (6, 60.0)


def test_environment_fallbacks_and_explicit_arguments_win() -> None:
    env = {**ENV, api.ENV_DATA_CENTER: "hk", api.ENV_RATE_LIMIT: "120"}
    assert ClientConfig.from_env(environ=env).base_url == api.DATA_CENTERS["hk"]
    assert ClientConfig.from_env(environ=env).rate_limit == 120
    assert ClientConfig.from_env(data_center="bra", environ=env).base_url.endswith(
        "-bra.engagelab.com"
    )
    assert ClientConfig.from_env(rate_limit=7, environ=env).rate_limit == 7
    env[api.ENV_BASE_URL] = "http://127.0.0.1:8080/"
    assert ClientConfig.from_env(environ=env).base_url == "http://127.0.0.1:8080"


@pytest.mark.parametrize("missing", [api.ENV_APP_KEY, api.ENV_MASTER_SECRET])
def test_missing_credentials_name_the_variable(missing: str) -> None:
    env = {k: v for k, v in ENV.items() if k != missing}
    with pytest.raises(ConfigError) as caught:
        ClientConfig.from_env(environ=env)
    assert missing in str(caught.value)
    assert SECRET not in str(caught.value) and APP_KEY not in str(caught.value)


def test_blank_credentials_count_as_missing() -> None:
    with pytest.raises(ConfigError, match=api.ENV_MASTER_SECRET):
        ClientConfig.from_env(environ={**ENV, api.ENV_MASTER_SECRET: "  "})


def test_unknown_data_center_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        ClientConfig.from_env(data_center="mars", environ=ENV)
    assert "sgp, usva, defra, hk, jpn, bra" in str(caught.value)


def test_data_center_and_base_url_together_are_refused() -> None:
    with pytest.raises(ConfigError, match="not both"):
        ClientConfig.from_env(data_center="sgp", base_url="https://x.example", environ=ENV)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://pushapi-sgp.engagelab.com", "not an http"),
        ("https://", "not an http"),
        ("http://pushapi-sgp.engagelab.com", "plain http"),
        ("https://x.example/?a=1", "query"),
    ],
)
def test_bad_base_urls(url: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        ClientConfig.from_env(base_url=url, environ=ENV)


def test_base_url_credentials_are_refused_without_echo() -> None:
    with pytest.raises(ConfigError) as caught:
        ClientConfig.from_env(base_url=f"https://{APP_KEY}:{SECRET}@x.example", environ=ENV)
    assert "must not carry credentials" in str(caught.value)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("rate", ["0", "501", "-3", "fast"])
def test_bad_rates(rate: str) -> None:
    with pytest.raises(ConfigError, match=r"(?i)rate"):
        ClientConfig.from_env(environ={**ENV, api.ENV_RATE_LIMIT: rate})


def test_direct_construction_validates_and_hides_input() -> None:
    with pytest.raises(ValidationError) as caught:
        ClientConfig(base_url="https://x.example", app_key="k", master_secret=SecretStr(""))
    assert "must not be empty" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        config(timeout_seconds=-1, master_secret=SecretStr(SECRET))
    assert SECRET not in str(caught.value)


def test_config_is_frozen() -> None:
    cfg = config()
    with pytest.raises(ValidationError):
        cfg.rate_limit = 1  # type: ignore[misc]


# --- secrets ------------------------------------------------------------------------------------
def _assert_clean(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text
        assert TOKEN not in text


def test_config_and_client_never_show_the_secret() -> None:
    cfg = config()

    async def main() -> str:
        async with EngageLabClient(cfg, transport=httpx.MockTransport(answer())) as client:
            return repr(client) + str(client)

    _assert_clean(
        repr(cfg), str(cfg), cfg.model_dump_json(), str(cfg.model_dump()), asyncio.run(main())
    )


def _chain(error: BaseException) -> list[str]:
    texts: list[str] = []
    seen: BaseException | None = error
    while seen is not None:
        texts += [str(seen), repr(seen), *map(str, seen.args)]
        seen = seen.__cause__ or seen.__context__
    return texts


@pytest.mark.parametrize("name", sorted(RETRYABLE) + sorted(NOT_RETRYABLE))
def test_no_error_text_holds_a_secret(name: str, caplog: pytest.LogCaptureFixture) -> None:
    steps = {**RETRYABLE, **NOT_RETRYABLE}
    caplog.set_level(logging.DEBUG)
    for action in (create, list_all):
        result = run(Script(steps[name]), action, max_attempts=2)
        assert result.error is not None
        _assert_clean(*_chain(result.error), result.error.message)
    _assert_clean(caplog.text, *(str(r.args) for r in caplog.records))


def test_a_server_echoing_the_secret_is_redacted() -> None:
    echo = answer(400, {"error": {"code": 21004, "message": f"bad auth Basic {TOKEN} / {SECRET}"}})
    result = run(Script(echo), create)
    assert result.error is not None
    assert "bad auth Basic *** / ***" in str(result.error)
    _assert_clean(*_chain(result.error), result.error.message)


def test_a_transport_error_echoing_the_secret_is_redacted() -> None:
    def leak(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"proxy said {request.headers['authorization']}", request=request)

    result = run(Script(leak), list_all, max_attempts=1)
    assert isinstance(result.error, ApiError)
    assert "proxy said Basic ***" in str(result.error)
    _assert_clean(*_chain(result.error))


def test_the_limiter_can_be_shared_between_clients() -> None:
    shared = RateLimiter(1e6)

    async def main() -> int:
        clients: list[Any] = [
            EngageLabClient(
                config(), transport=httpx.MockTransport(answer(200, {})), limiter=shared
            )
            for _ in range(2)
        ]
        for client in clients:
            await client.upsert_plan("p1", "d")
            await client.aclose()
        return shared.acquired

    assert asyncio.run(main()) == 2
