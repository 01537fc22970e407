"""No credential in an error: a secret pasted into the wrong variable, a token in the base URL's
query, or any error text that happens to hold the app key, the master secret or the Basic token.

Two layers, each tested alone, then together through the CLI: the configuration errors never
repeat a value that may be a secret (client.py, config.py), and the CLI redacts the credential
values of the environment from everything it prints as an error (cli/main.py).
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from reconciler import engagelab as api
from reconciler.api.client import ClientConfig
from reconciler.cli.main import main
from reconciler.config.toml import read_config
from reconciler.errors import ConfigError, ReconcileError
from tests.support.campaign import write_project

APP_KEY = "AppKey-7d1f0c2b9e4a"
SECRET = "Sekr1t-Zq9xK2-master-0042"
TOKEN = base64.b64encode(f"{APP_KEY}:{SECRET}".encode()).decode()


def placements(value: str) -> list[tuple[str, str]]:
    """Every way the brief's user pastes `value` into a non-secret variable."""
    return [
        (api.ENV_BASE_URL, f"https://x.example.com/?token={value}"),
        (api.ENV_BASE_URL, value),  # a bare junk URL
        (api.ENV_BASE_URL, f"ftp://x.example.com/{value}"),
        (api.ENV_BASE_URL, f"http://x.example.com/{value}"),  # plain http to a remote host
        (api.ENV_BASE_URL, f"https://x.example.com/#{value}"),
        (api.ENV_DATA_CENTER, value),
        (api.ENV_RATE_LIMIT, value),
        (api.ENV_TIMEOUT, value),
    ]


CASES = [
    pytest.param(what, name, text, id=f"{what}-{name}-{i}")
    for what, value in (("secret", SECRET), ("app-key", APP_KEY))
    for i, (name, text) in enumerate(placements(value))
]


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (
        "RECONCILE_ENV",
        "RECONCILE_NOW",
        api.ENV_BASE_URL,
        api.ENV_DATA_CENTER,
        api.ENV_RATE_LIMIT,
        api.ENV_TIMEOUT,
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(api.ENV_APP_KEY, APP_KEY)
    monkeypatch.setenv(api.ENV_MASTER_SECRET, SECRET)
    return monkeypatch


def assert_clean(text: str) -> None:
    for value in (SECRET, APP_KEY, TOKEN, SECRET.lower(), APP_KEY.lower()):
        assert value not in text


# --- through the CLI: both layers ---------------------------------------------------------------
@pytest.mark.parametrize(("what", "name", "text"), CASES)
def test_apply_never_prints_a_pasted_credential(
    what: str,
    name: str,
    text: str,
    tmp_path: Path,
    credentials: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_project(tmp_path, 1)
    credentials.setenv(name, text)
    code = main(["apply", "--auto-approve", "--root", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "error" in err
    assert_clean(out + err)


# --- layer 1: configuration errors never repeat a value that may be a secret -------------------
@pytest.mark.parametrize(("what", "name", "text"), CASES)
def test_config_errors_do_not_repeat_the_value(what: str, name: str, text: str) -> None:
    environ = {api.ENV_APP_KEY: APP_KEY, api.ENV_MASTER_SECRET: SECRET, name: text}
    with pytest.raises(ConfigError) as caught:
        ClientConfig.from_env(environ=environ)
    assert_clean(str(caught.value))


def test_short_plain_values_are_still_shown() -> None:
    environ = {api.ENV_APP_KEY: APP_KEY, api.ENV_MASTER_SECRET: SECRET}
    with pytest.raises(ConfigError, match="unknown data center 'sgx'"):
        ClientConfig.from_env(environ={**environ, api.ENV_DATA_CENTER: "sgx"})
    with pytest.raises(ConfigError, match=f"{api.ENV_RATE_LIMIT}='fast'"):
        ClientConfig.from_env(environ={**environ, api.ENV_RATE_LIMIT: "fast"})
    with pytest.raises(ConfigError, match=re.escape("base URL ftp://x.example.com is not an http")):
        ClientConfig.from_env(environ={**environ, api.ENV_BASE_URL: "ftp://x.example.com/a?b"})


@pytest.mark.parametrize(
    "line",
    [
        f'data_center = "{SECRET}"',
        f'base_url = "ftp://x.example.com/{SECRET}"',
        f'base_url = "{SECRET}"',
        f'base_url = "https://[{SECRET}/"',
    ],
)
def test_reconcile_toml_errors_do_not_repeat_the_value(tmp_path: Path, line: str) -> None:
    (tmp_path / "reconcile.toml").write_text(f"[environments.prod]\n{line}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_config(tmp_path)
    assert "environments.prod" in str(caught.value)
    assert_clean(str(caught.value))


# --- layer 2: the CLI redacts the environment's credentials from every printed error ------------
def _raise_from_config(error: Exception, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(cls: type[ClientConfig], /, **kwargs: object) -> ClientConfig:
        raise error

    monkeypatch.setattr(ClientConfig, "from_env", classmethod(boom))


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize(
    "error",
    [
        ConfigError(f"echoed {SECRET} and {APP_KEY} and Basic {TOKEN}"),
        ReconcileError(f"a server said: auth {TOKEN} for {APP_KEY}"),
    ],
    ids=["config", "reconcile"],
)
def test_cli_redacts_credentials_from_user_errors(
    error: Exception,
    debug: bool,
    tmp_path: Path,
    credentials: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_project(tmp_path, 1)
    _raise_from_config(error, credentials)
    argv = ["apply", "--auto-approve", "--root", str(tmp_path), *(["--debug"] if debug else [])]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert "***" in err and ("Traceback" in err) == debug
    assert_clean(out + err)


def test_cli_redacts_credentials_from_internal_errors(
    tmp_path: Path, credentials: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, 1)
    _raise_from_config(RuntimeError(f"oops {SECRET} {TOKEN}"), credentials)
    assert main(["apply", "--auto-approve", "--root", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert "internal error: RuntimeError: oops *** ***" in err
    assert_clean(out + err)


def test_debug_tracebacks_of_internal_errors_are_redacted_too(
    tmp_path: Path, credentials: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, 1)
    _raise_from_config(RuntimeError(f"oops {SECRET} {TOKEN}"), credentials)
    assert main(["apply", "--auto-approve", "--debug", "--root", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" in err and "RuntimeError: oops *** ***" in err
    assert_clean(out + err)


def test_cli_redacts_the_variables_an_environment_names(
    tmp_path: Path, credentials: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prod_key, prod_secret = "ProdKey-55aa66bb", "ProdSecret-99cc11dd"
    prod_token = base64.b64encode(f"{prod_key}:{prod_secret}".encode()).decode()
    write_project(tmp_path, 1)
    (tmp_path / "reconcile.toml").write_text(
        "[environments.prod]\n"
        'app_key_env = "PROD_ENGAGELAB_APP_KEY"\n'
        'master_secret_env = "PROD_ENGAGELAB_MASTER_SECRET"\n',
        encoding="utf-8",
    )
    credentials.setenv("PROD_ENGAGELAB_APP_KEY", prod_key)
    credentials.setenv("PROD_ENGAGELAB_MASTER_SECRET", prod_secret)
    _raise_from_config(ConfigError(f"{prod_key} {prod_secret} {prod_token} {SECRET}"), credentials)
    assert main(["apply", "--auto-approve", "--root", str(tmp_path), "--env", "prod"]) == 1
    out, err = capsys.readouterr()
    assert "error: *** *** *** ***" in err
    for value in (prod_key, prod_secret, prod_token, SECRET):
        assert value not in out + err
