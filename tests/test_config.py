"""Settings: the defaults an operator starts from, what the environment changes, and what is refused."""

from __future__ import annotations

import ipaddress
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from app import config
from app.config import ConfigurationError, Settings, load_settings

# Every variable Settings reads; cleared so the developer's own environment cannot leak in.
SETTINGS_VARIABLES = [name.upper() for name in Settings.model_fields]
HEROLD = Path(sys.executable).parent / "herold"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    # pydantic-settings looks for `.env` in the working directory; the tests also pass _env_file=None.
    monkeypatch.chdir(tmp_path)


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_defaults_serve_a_development_instance_on_localhost() -> None:
    defaults = settings()
    assert (defaults.host, defaults.port) == ("127.0.0.1", 8000)
    assert defaults.local_domain == "localhost:8000"
    assert defaults.web_domain == "localhost:8000"
    assert defaults.https is False
    assert defaults.base_url == "http://localhost:8000"
    assert defaults.database_url == f"sqlite+aiosqlite:///{(Path('data') / 'herold.db').as_posix()}"
    assert defaults.allowed_private_addresses == []


def test_web_processes_default_to_the_cores_this_process_may_use_at_most_four(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for cores, expected in ((1, 1), (2, 2), (16, 4)):
        monkeypatch.setattr(config, "available_cores", lambda cores=cores: cores)
        assert settings().web_process_count == expected
    assert settings(web_processes=1).web_process_count == 1
    assert settings(web_processes=8).web_process_count == 8
    monkeypatch.setenv("WEB_PROCESSES", "0")
    with pytest.raises(ConfigurationError, match="WEB_PROCESSES"):
        load_settings(_env_file=None)


def test_default_local_domain_follows_the_port() -> None:
    assert settings(port=9000).local_domain == "localhost:9000"


def test_sqlite_database_lives_under_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "state"
    assert settings(data_dir=data_dir).database_url == f"sqlite+aiosqlite:///{data_dir.as_posix()}/herold.db"


def test_web_domain_defaults_to_local_domain_and_can_differ() -> None:
    same = settings(local_domain="org.example")
    assert same.web_domain == "org.example"
    assert same.base_url == "https://org.example"
    split = settings(local_domain="org.example", web_domain="social.org.example")
    assert (split.local_domain, split.web_domain) == ("org.example", "social.org.example")
    assert split.base_url == "https://social.org.example"


@pytest.mark.parametrize(
    "domain",
    [
        "localhost",
        "localhost:8000",
        "herold.localhost:8000",
        "127.0.0.1:8000",
        "127.5.6.7",
        "[::1]:8000",
        "[::1]",
    ],
)
def test_plain_http_only_for_loopback_domains(domain: str) -> None:
    assert settings(local_domain=domain).https is False
    assert settings(local_domain=domain).base_url == f"http://{domain}"


@pytest.mark.parametrize(
    "domain", ["org.example", "social.org.example:8443", "10.1.2.3", "localhost.org.example"]
)
def test_https_for_real_domains(domain: str) -> None:
    assert settings(local_domain=domain).https is True
    assert settings(local_domain=domain).base_url == f"https://{domain}"


def test_https_is_decided_by_the_serving_domain() -> None:
    # Handles on a real domain served from localhost in development: the URLs are plain http.
    assert settings(local_domain="org.example", web_domain="localhost:8000").https is False


def test_explicit_https_wins() -> None:
    assert settings(local_domain="org.example", https=False).base_url == "http://org.example"
    assert settings(local_domain="localhost:8000", https=True).base_url == "https://localhost:8000"


def test_domains_are_lower_cased() -> None:
    assert settings(local_domain=" Org.Example ").local_domain == "org.example"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://herold:pw@db:5432/herold", "postgresql+asyncpg://herold:pw@db:5432/herold"),
        ("postgresql://herold@db/herold", "postgresql+asyncpg://herold@db/herold"),
        ("postgresql+asyncpg://herold@db/herold", "postgresql+asyncpg://herold@db/herold"),
        ("sqlite:///var/lib/herold/herold.db", "sqlite+aiosqlite:///var/lib/herold/herold.db"),
    ],
)
def test_database_urls_are_normalised_to_async_drivers(given: str, expected: str) -> None:
    assert settings(database_url=given).database_url == expected


def test_unsupported_database_refused() -> None:
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        load_settings(_env_file=None, database_url="mysql://db/herold", secret_key="x" * 32)


def test_allowed_private_addresses_parsed_from_comma_separated_cidrs() -> None:
    parsed = settings(
        allowed_private_addresses=" 10.0.0.0/8, fd00::/8 ,192.168.1.7,"
    ).allowed_private_addresses
    assert parsed == [
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("fd00::/8"),
        ipaddress.ip_network("192.168.1.7/32"),
    ]


def test_bad_allowed_private_address_refused_naming_the_key() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(_env_file=None, allowed_private_addresses="10.0.0.0/8,bogus", secret_key="x" * 32)
    message = str(raised.value)
    assert message.startswith("Invalid configuration: ALLOWED_PRIVATE_ADDRESSES: ")
    assert "'bogus'" in message
    # Said once: the key is not repeated inside its own message.
    assert message.count("ALLOWED_PRIVATE_ADDRESSES") == 1


@pytest.mark.parametrize(
    "domain", ["org.example/herold", "https://org.example", "alice@org.example", "org example"]
)
def test_local_domain_must_be_a_bare_domain(domain: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^Invalid configuration: LOCAL_DOMAIN: .*bare domain"):
        load_settings(_env_file=None, local_domain=domain, secret_key="x" * 32)


def test_web_domain_must_be_a_bare_domain() -> None:
    with pytest.raises(ConfigurationError, match="WEB_DOMAIN"):
        load_settings(_env_file=None, web_domain="social.org.example/", secret_key="x" * 32)


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("PORT", "9100")
    monkeypatch.setenv("LOCAL_DOMAIN", "org.example")
    monkeypatch.setenv("WEB_DOMAIN", "social.org.example")
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DATABASE_URL", "postgres://herold@db/herold")
    monkeypatch.setenv("SECRET_KEY", "from-the-environment-and-long-enough-to-sign")
    monkeypatch.setenv("ALLOWED_PRIVATE_ADDRESSES", "10.0.0.0/8,192.168.0.0/16")
    monkeypatch.setenv("OPEN_REGISTRATIONS", "true")
    monkeypatch.setenv("INSTANCE_NAME", "Example Org")
    loaded = settings()
    assert (loaded.host, loaded.port) == ("0.0.0.0", 9100)
    assert loaded.base_url == "https://social.org.example"
    assert loaded.local_domain == "org.example"
    assert loaded.data_dir == tmp_path / "state"
    assert loaded.database_url == "postgresql+asyncpg://herold@db/herold"
    assert loaded.secret_key == "from-the-environment-and-long-enough-to-sign"
    assert loaded.allowed_private_addresses == [
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.0.0/16"),
    ]
    assert loaded.open_registrations is True
    assert loaded.instance_name == "Example Org"


def test_https_from_environment_overrides_the_guess(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_DOMAIN", "org.example")
    monkeypatch.setenv("HTTPS", "false")
    assert settings().base_url == "http://org.example"


def test_dotenv_file_in_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("LOCAL_DOMAIN=org.example\nPORT=8123\n")
    loaded = Settings()
    assert (loaded.local_domain, loaded.port) == ("org.example", 8123)


def test_secret_key_generated_on_first_run_and_kept(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "data"
    first = load_settings(_env_file=None, data_dir=data_dir)
    key_file = data_dir / "secret_key"
    assert len(first.secret_key) >= 32
    assert key_file.read_text().strip() == first.secret_key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [path.name for path in data_dir.iterdir()] == ["secret_key"]
    second = load_settings(_env_file=None, data_dir=data_dir)
    assert second.secret_key == first.secret_key
    # Another data directory is another instance, with its own key.
    assert load_settings(_env_file=None, data_dir=tmp_path / "other").secret_key != first.secret_key


def test_secret_key_from_environment_is_not_written(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SECRET_KEY", "given-in-the-environment-32-bytes-long")
    assert (
        load_settings(_env_file=None, data_dir=tmp_path).secret_key
        == "given-in-the-environment-32-bytes-long"
    )
    assert not (tmp_path / "secret_key").exists()


def test_processes_starting_together_agree_on_one_secret_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The web process and the worker may both start on an empty DATA_DIR; they must end up with the same key."""
    key_file = tmp_path / "secret_key"
    real_token = config.secrets.token_urlsafe

    def other_process_wins(length: int) -> str:
        # The other process writes its key between our check and our write.
        key_file.write_text("the-other-process-key-of-at-least-32-bytes\n")
        return real_token(length)

    monkeypatch.setattr(config.secrets, "token_urlsafe", other_process_wins)
    loaded = load_settings(_env_file=None, data_dir=tmp_path)
    assert loaded.secret_key == "the-other-process-key-of-at-least-32-bytes"
    assert key_file.read_text().strip() == "the-other-process-key-of-at-least-32-bytes"


def test_unusable_data_dir_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(
        ConfigurationError, match=r"^DATA_DIR .*a-file/data cannot be created: .*a-file is a file"
    ):
        load_settings(_env_file=None, data_dir=blocker / "data")


def test_cli_reports_bad_configuration_in_one_line(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PORT": "notanumber",
        "DATA_DIR": str(tmp_path / "data"),
    }
    result = subprocess.run(
        [str(HEROLD), "accounts", "list"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("herold: Invalid configuration")
    assert "PORT" in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
