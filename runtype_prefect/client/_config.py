"""Where the client points and with which key: the argument, else the environment, else the
public API; plain ``http://`` only to loopback hosts (the sandbox), so a key never travels in
clear text."""

from __future__ import annotations

import ipaddress
import os
import ssl
from functools import cache
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from .. import __version__

DEFAULT_BASE_URL = "https://api.runtype.com/v1"
API_KEY_ENV = "RUNTYPE_API_KEY"
BASE_URL_ENV = "RUNTYPE_BASE_URL"
DASHBOARD_URL_TEMPLATE_ENV = "RUNTYPE_DASHBOARD_URL_TEMPLATE"
#: Where a person looks at a job's batch. The spec documents only the flows' dashboard page
#: (a flow's ``dashboardUrl``, https://dashboard.runtype.com/flows/<id>); no batch page.
DEFAULT_DASHBOARD_URL_TEMPLATE = "https://dashboard.runtype.com/flows/{flow_id}"
USER_AGENT = f"runtype-prefect/{__version__}"
#: Reads may take a while on a loaded API; a connection that does not open in 5 s will not.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


def tls_context() -> ssl.SSLContext:
    """Return the TLS context clients verify the API with: httpx's default (certifi's CA
    bundle, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set), built once per setting.

    Building one reads the whole CA bundle, ~17 ms, which every client (one per job) paid
    anew; a context is safe to share between clients and threads.
    """
    return _tls_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@cache
def _tls_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    return httpx.create_ssl_context()  # reads the same two variables


def resolve_dashboard_url_template(template: str | None = None) -> str:
    """Return the batch page template (``{flow_id}``, ``{batch_id}``) from the argument, else
    ``RUNTYPE_DASHBOARD_URL_TEMPLATE``, else the flows' dashboard page."""
    return template or os.environ.get(DASHBOARD_URL_TEMPLATE_ENV) or DEFAULT_DASHBOARD_URL_TEMPLATE


def resolve_api_key(api_key: str | SecretStr | None) -> SecretStr:
    """Return the key from the argument or ``RUNTYPE_API_KEY``; raise ValueError if neither."""
    if isinstance(api_key, SecretStr):
        api_key = api_key.get_secret_value()
    key = api_key or os.environ.get(API_KEY_ENV)
    if not key:
        raise ValueError(
            f"no Runtype API key: set {API_KEY_ENV} (or pass api_key=..., or a credentials block)"
        )
    return SecretStr(key.strip())


def resolve_base_url(base_url: str | None) -> str:
    """Return the normalised API base URL (ending in ``/v1``) from the argument or environment.

    Raises ValueError for a URL that is not http(s), or plain ``http://`` to a host that is not
    loopback: the key would travel in clear text.
    """
    raw = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).strip().rstrip("/")
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"Runtype base URL must be an http(s) URL, got {raw!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(
            f"refusing plain http:// to {parts.hostname!r}: the API key would be sent unencrypted;"
            " use https:// (http:// is allowed only for loopback hosts such as the sandbox)"
        )
    if not parts.path.endswith("/v1"):
        raw += "/v1"
    return raw + "/"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_headers(api_key: SecretStr) -> dict[str, str]:
    """Return the headers every request carries (auth, JSON, User-Agent)."""
    return {
        "Authorization": f"Bearer {api_key.get_secret_value()}",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
    }
