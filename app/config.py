"""Settings: read once from the environment and `.env`, validated, then passed around explicitly."""

from __future__ import annotations

import ipaddress
import os
import secrets
import ssl
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}

# Sessions, CSRF tokens and invite links are only as strong as the key that signs them.
MIN_SECRET_KEY_BYTES = 32
KEY_GENERATOR_COMMAND = 'python3 -c "import secrets; print(secrets.token_urlsafe(48))"'
# Beyond four, web processes mostly wait on the one database (SQLite has one writer); more is a
# choice (WEB_PROCESSES), not a default.
MAX_DEFAULT_WEB_PROCESSES = 4
LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]


class ConfigurationError(Exception):
    """Raised with one human sentence when the configuration cannot work."""


def host_without_port(domain: str) -> str:
    if domain.startswith("["):  # [::1]:8000
        return domain[1 : domain.index("]")]
    return domain.rsplit(":", 1)[0] if domain.count(":") == 1 else domain


def is_loopback_domain(domain: str) -> bool:
    host = host_without_port(domain).lower()
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Handles are @user@LOCAL_DOMAIN, like e-mail addresses; may carry a port in development.
    local_domain: str = ""
    # The host that actually serves Herold; ids and URLs are built on it.
    web_domain: str = ""
    # None means "decide from the domain": plain http only for loopback development domains.
    https: bool | None = None
    data_dir: Path = Path("./data")
    database_url: str = ""
    secret_key: str = ""
    allowed_private_addresses: Annotated[list[IPNetwork], NoDecode] = Field(default_factory=list)
    # Run the background worker inside the web process (the embedded default).
    embedded_worker: bool = True
    # How many web processes `herold serve` runs (app.ops.supervisor); None: one per core, at most
    # MAX_DEFAULT_WEB_PROCESSES. 1 keeps everything, the embedded worker included, in one process.
    web_processes: int | None = Field(default=None, ge=1, le=64)
    # Compress WebSocket messages (permessage-deflate) for clients that offer it, as browsers do.
    # Off, as in Mastodon's streaming server: each compressing connection keeps its zlib state,
    # some 40 KB of memory per idle connection (bench/bench_streaming.py), for events of a few KB.
    websocket_compression: bool = False
    # The event loop of every command: uvloop (libuv, in C) when installed, which it is with
    # uvicorn[standard]; "asyncio" for the standard library's, e.g. to debug or profile.
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"
    # glibc's malloc in `herold serve` and `herold worker`: two arenas, and the free pages inside
    # them handed back every 30 s (app.runtime.tune_memory_allocator); false for glibc's defaults.
    malloc_tuning: bool = True
    instance_name: str = "Herold"
    instance_description: str = "An organisation's corner of the fediverse."
    # Who may sign up: "closed" (staff are invited, the default), "approval" (anyone may ask; an
    # administrator approves in Admin → Team) or "open". OPEN_REGISTRATIONS=true, the older
    # switch, means "open".
    registrations: Literal["closed", "approval", "open"] = "closed"
    open_registrations: bool = False
    max_post_chars: int = Field(default=500, ge=1, le=100_000)
    # An inbound activity addressed (to, cc, bto, bcc, audience) to more is refused with 422: real
    # posts name a collection and a few mentions, a mention-spam wave names thousands.
    max_recipients_per_activity: int = Field(default=1000, ge=1, le=1_000_000)
    # Connections per process (app.db.pool_sizes derives them from the deployment; this replaces
    # the derived size), and how long a request waits for one before it is answered 503.
    database_pool_size: int | None = Field(default=None, ge=1, le=1000)
    database_pool_timeout: float = Field(default=5.0, gt=0, le=60)
    # Backpressure: when the oldest unprocessed inbox activity has waited longer than this, the
    # inbox answers 503 with Retry-After until the worker has caught up (0: never).
    inbox_backlog_limit_seconds: float = Field(default=60.0, ge=0)
    # Memory per web process for ready answers to anonymous readers (actors, WebFinger, public
    # posts, profile and post pages); 0 turns the cache off. See app.public_cache.
    public_cache_mb: int = Field(default=64, ge=0, le=65_536)
    # Copies of other servers' media older than this are dropped by the worker's daily cleanup
    # (the originals are linked again); `herold media remove --days N` does the same by hand.
    media_cache_retention_days: int = Field(default=7, ge=1, le=36_500)
    # An S3-compatible object store for media instead of DATA_DIR/media (app.services.media_store):
    # on when S3_BUCKET is set. S3_ENDPOINT is empty for Amazon S3 itself, or the store's URL (MinIO,
    # Garage, Ceph, R2, …); S3_PUBLIC_URL is where browsers and other servers read the files, a CDN
    # or the bucket's own public address, and it is what every URL handed out starts with.
    s3_bucket: str = ""
    s3_endpoint: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    s3_public_url: str = ""
    # A canned ACL sent with every file ("public-read" for stores that want one); empty sends none,
    # as buckets made public by a bucket policy (and AWS's default "ACLs disabled") require.
    s3_acl: str = ""
    # Limited federation: only domains on the allowlist (admin page, `herold domains allow`) federate.
    limited_federation: bool = False
    # Secure mode, as Mastodon's: actors, posts and collections only for signed GETs.
    authorized_fetch: bool = False
    log_level: LogLevel = "info"
    # "text": one readable line per event; "json": one JSON object per line, for log collectors.
    log_format: Literal["text", "json"] = "text"
    # A PEM bundle of CA certificates that outgoing HTTPS trusts besides the default roots: peers
    # and proxies under a private PKI (and the test CA of the nginx test).
    extra_ca_certificates: Path | None = None
    # GET /metrics is off unless one of these is set: a bearer token, or the networks (CIDRs) of
    # the scrapers, which need no token.
    metrics_token: str = ""
    metrics_allowed_addresses: Annotated[list[IPNetwork], NoDecode] = Field(default_factory=list)

    @field_validator("log_level", "registrations", mode="before")
    @classmethod
    def _log_level_in_any_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("secret_key")
    @classmethod
    def _strong_secret_key(cls, value: str) -> str:
        value = value.strip()
        if value:
            refuse_short_secret_key(value)
        return value

    @field_validator("allowed_private_addresses", "metrics_allowed_addresses", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            items = [part.strip() for part in value.split(",") if part.strip()]
            try:
                return [ipaddress.ip_network(item, strict=False) for item in items]
            except ValueError as error:
                # The key itself is named by describe_validation_error (from the field's location).
                raise ValueError(str(error)) from None
        return value

    @field_validator("extra_ca_certificates")
    @classmethod
    def _loadable_certificates(cls, value: Path | None) -> Path | None:
        if value is None or str(value) == "":
            return None
        try:
            ssl.create_default_context().load_verify_locations(cafile=str(value))
        except ssl.SSLError:  # before OSError, of which it is a kind
            raise ValueError(f"{value} holds no PEM certificates") from None
        except OSError as error:
            raise ValueError(f"{value}: {error.strerror or error}") from None
        return value

    @field_validator("local_domain", "web_domain")
    @classmethod
    def _plain_domain(cls, value: str) -> str:
        value = value.strip().lower()
        if value and ("/" in value or "@" in value or " " in value):
            raise ValueError(f"{value!r} must be a bare domain such as org.example or localhost:8000")
        return value

    @model_validator(mode="after")
    def _derive_defaults(self) -> Settings:
        if not self.local_domain:
            self.local_domain = f"localhost:{self.port}"
        if not self.web_domain:
            self.web_domain = self.local_domain
        if self.https is None:
            self.https = not is_loopback_domain(self.web_domain)
        if self.open_registrations and self.registrations == "closed":
            self.registrations = "open"
        # NodeInfo's openRegistrations: anyone may ask to join (as Mastodon reports approval mode).
        self.open_registrations = self.registrations != "closed"
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{(self.data_dir / 'herold.db').as_posix()}"
        if self.database_url.startswith("postgresql://") or self.database_url.startswith("postgres://"):
            self.database_url = "postgresql+asyncpg://" + self.database_url.split("://", 1)[1]
        if self.database_url.startswith("sqlite:///"):
            self.database_url = "sqlite+aiosqlite:///" + self.database_url.removeprefix("sqlite:///")
        if not (
            self.database_url.startswith("sqlite+aiosqlite://")
            or self.database_url.startswith("postgresql+asyncpg://")
        ):
            raise ValueError("DATABASE_URL must be a sqlite:/// or postgresql:// URL")
        self.s3_endpoint = self.s3_endpoint.strip().rstrip("/")
        self.s3_public_url = self.s3_public_url.strip().rstrip("/")
        if self.s3_bucket and not self.s3_public_url.startswith(("https://", "http://")):
            raise ValueError(
                "S3_PUBLIC_URL must be set to the http(s) address files of the bucket are read from "
                "when S3_BUCKET is set"
            )
        return self

    @property
    def media_in_object_store(self) -> bool:
        return bool(self.s3_bucket)

    @property
    def scheme(self) -> str:
        return "https" if self.https else "http"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.web_domain}"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def web_process_count(self) -> int:
        """WEB_PROCESSES, or one per core this process may run on, at most MAX_DEFAULT_WEB_PROCESSES."""
        if self.web_processes is not None:
            return self.web_processes
        return max(1, min(available_cores(), MAX_DEFAULT_WEB_PROCESSES))


def available_cores() -> int:
    # The cores this process may run on (a container's or a taskset's limit), not the machine's.
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS has no affinity
        return os.cpu_count() or 1


def refuse_short_secret_key(key: str) -> None:
    size = len(key.encode())
    if size < MIN_SECRET_KEY_BYTES:
        raise ValueError(
            f"too short ({size} byte{'' if size == 1 else 's'}, at least {MIN_SECRET_KEY_BYTES} are needed): "
            f"generate one with: {KEY_GENERATOR_COMMAND}"
        )


def describe_validation_error(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]).upper()
        message = item["msg"].removeprefix("Value error, ")
        # A check across fields has no location; its message names the key itself.
        problems.append(f"{field}: {message}" if field else message)
    return "Invalid configuration: " + "; ".join(problems)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with SECRET_KEY generated and kept under DATA_DIR on first run."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigurationError(describe_validation_error(error)) from None
    check_data_dir(settings)
    if not settings.secret_key:
        settings.secret_key = _stored_secret_key(settings.data_dir)
    return settings


def check_data_dir(settings: Settings) -> None:
    """One sentence naming DATA_DIR (or the database file) when Herold could not write there.

    Checked before anything opens the database: SQLite would otherwise fail deep inside a migration
    ("attempt to write a readonly database") or blame the file ("unable to open database file") when
    the directory is the problem (WAL mode creates its -wal and -shm files beside the database).
    """
    data_dir = settings.data_dir
    database = sqlite_database_path(settings)
    existing = next((path for path in (data_dir, *data_dir.parents) if path.exists()), None)
    if existing is not None and not existing.is_dir():
        where = "is a file" if existing == data_dir else f"cannot be created: {existing} is a file"
        raise ConfigurationError(f"DATA_DIR {data_dir} {where}, not a directory")
    # Written to when the SQLite database lives there or the secret key is still to be made; a
    # PostgreSQL instance with its SECRET_KEY set may run its CLI where DATA_DIR is read-only.
    must_write = (database is not None and data_dir.resolve() in database.resolve().parents) or (
        not settings.secret_key and not (data_dir / "secret_key").exists()
    )
    if existing is not None and must_write and not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == data_dir else f"cannot be created: {existing} "
        raise ConfigurationError(f"DATA_DIR {data_dir} {where}is not writable for this user")
    if database is not None and database.exists():
        if database.is_dir():
            raise ConfigurationError(f"the database {database} is a directory, not a file")
        if not os.access(database, os.R_OK | os.W_OK):
            raise ConfigurationError(f"the database {database} is read-only for this user")
        if not os.access(database.parent, os.W_OK | os.X_OK):
            raise ConfigurationError(
                f"the directory of the database {database} is not writable for this user "
                "(SQLite keeps its -wal and -shm files there)"
            )


def sqlite_database_path(settings: Settings) -> Path | None:
    if not settings.is_sqlite:
        return None
    location = settings.database_url.split(":///", 1)[1].split("?", 1)[0]
    if not location or location == ":memory:":
        return None
    return Path(location)


def _stored_secret_key(data_dir: Path) -> str:
    path = data_dir / "secret_key"
    try:
        if path.exists():
            return _checked_stored_key(path, path.read_text().strip())
        data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        # Written private from the start, then linked into place only if no key is there yet: a second
        # process starting at the same moment (the worker beside the web process) reads the winner's
        # key instead of replacing it, and nobody ever reads a half-written file.
        draft = data_dir / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as file:
                file.write(key + "\n")
            os.link(draft, path)
        except FileExistsError:
            return _checked_stored_key(path, path.read_text().strip())
        finally:
            draft.unlink(missing_ok=True)
        return key
    except OSError as error:
        raise ConfigurationError(f"DATA_DIR {data_dir} is not usable: {error.strerror}") from None


def _checked_stored_key(path: Path, key: str) -> str:
    try:
        refuse_short_secret_key(key)
    except ValueError as error:
        raise ConfigurationError(f"{path}: {error} (or delete the file to have one generated)") from None
    return key
