"""The emulator: moto's server app over TLS on loopback, with the gap fillers installed and the public API.

One port answers both what boto3/Terraform call (moto's backends, extended by this package) and
the API Gateway stage URLs (`https://{api}.execute-api.{region}.amazonaws.com/{stage}/...`), which
a client reaches through the `netshim` folder put on PYTHONPATH (it resolves those host names to
the emulator, as DNS does for the real service).
"""

from __future__ import annotations

import io
import logging
import re
import socket
import ssl
import threading
import urllib.request
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

from aws_emulator import context
from aws_emulator.request_log import logged
from aws_emulator.tls import make_tls

REGION = "eu-west-1"
API_HOST = re.compile(r"^(?P<api>[a-z0-9]+)\.execute-api\.(?P<region>[a-z0-9-]+)\.amazonaws\.com$")
NETSHIM = Path(__file__).resolve().parent / "netshim"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def keep_alive_handler(base: type) -> type:
    """`base` (werkzeug's request handler) serving many requests per connection, as AWS's endpoints do.

    Werkzeug's development server closes every connection after one response, since it cannot tell where an
    unread request body ends; every call then pays a new TLS handshake and, in botocore, a new load of its CA
    bundle (tens of milliseconds each). Here the body is read in full before the application runs, so the next
    request line is where the stream stands (werkzeug's drain after the response, meant for a closing
    connection, then finds nothing to read); a chunked request, or a client that asks, still closes."""

    class KeepAlive(base):  # type: ignore[misc,valid-type]
        timeout = 300  # an idle connection's thread ends after this
        disable_nagle_algorithm = True  # or a response sent in several writes waits for the client's delayed ACK
        keep_alive = False

        def run_wsgi(self) -> None:
            stream = self.rfile
            try:
                super().run_wsgi()
            finally:
                self.rfile, self.keep_alive = stream, False  # an error answered outside a request still closes

        def make_environ(self) -> dict[str, Any]:
            environ: dict[str, Any] = super().make_environ()
            length = environ.get("CONTENT_LENGTH") or "0"
            self.keep_alive = not environ.get("wsgi.input_terminated") and length.isdigit()
            if self.keep_alive:
                environ["wsgi.input"] = io.BytesIO(self.rfile.read(int(length)))
                self.rfile = io.BytesIO()  # type: ignore[assignment]  # the drain reads the rest of this request
            return environ

        def send_header(self, keyword: str, value: str) -> None:
            if keyword.lower() == "connection" and value == "close" and self.keep_alive and not self.close_connection:
                return
            super().send_header(keyword, value)

    return KeepAlive


class Emulator:
    """Start with `start()`, stop with `stop()`; `env()` is what a client process needs to use it."""

    def __init__(self, workdir: Path, region: str = REGION, tls: bool = True) -> None:
        self.workdir = workdir
        self.region = region
        self.tls = tls
        self.port = 0
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._session: Any = None
        self._session_lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> Emulator:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

        from aws_emulator import patches

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.workdir.mkdir(parents=True, exist_ok=True)
        context.configure(self)
        patches.install()
        from aws_emulator.iam_gate import middleware

        moto_app = middleware(DomainDispatcherApplication(create_backend_app))
        from aws_emulator.api_front import handle_api_request

        def app(environ: dict, start_response: Any) -> Any:
            context.request.secure = environ.get("wsgi.url_scheme") == "https"
            context.request.active = True
            host = (environ.get("HTTP_HOST") or "").split(":")[0]
            match = API_HOST.match(host)
            if match:
                return handle_api_request(match.group("api"), environ, start_response)
            return moto_app(environ, start_response)

        ssl_context = None
        if self.tls:
            names = [f"*.execute-api.{self.region}.amazonaws.com"]
            self.tls_files = make_tls(self.workdir / "tls", names)
            ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ssl_context.load_cert_chain(self.tls_files.cert, self.tls_files.key)
        self.port = self.port or free_port()
        self._server = make_server(
            "127.0.0.1",
            self.port,
            logged(app, self.workdir / "requests.jsonl"),
            threaded=True,
            request_handler=keep_alive_handler(MotoRequestHandler),
            ssl_context=ssl_context,
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="aws-emulator", daemon=True)
        self._thread.start()
        self.reset()
        from aws_emulator import metrics

        metrics.start_ticker([self.region])
        return self

    def reset(self) -> None:
        """Start from empty backends (moto's are process-wide)."""
        req = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=30, context=self._client_ssl()).read()

    def _client_ssl(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=str(self.tls_files.bundle)) if self.tls else None

    def stop(self) -> None:
        from aws_emulator import metrics
        from aws_emulator.processes import PROCESSES

        metrics.stop_ticker()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        PROCESSES.stop_all()

    def env(self) -> dict[str, str]:
        """Variables for a process that talks to the emulator as it would to AWS."""
        env = {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_EMULATOR_PORT": str(self.port),
        }
        if self.tls:
            env.update(AWS_CA_BUNDLE=str(self.tls_files.ca), SSL_CERT_FILE=str(self.tls_files.bundle))
        return env

    def boto3_session(self) -> Any:
        import boto3

        return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=self.region)

    def client(self, service: str) -> Any:
        """A new administrator's client; one session makes them all, so each service's model is loaded once."""
        verify = str(self.tls_files.ca) if self.tls else None
        with self._session_lock:  # a boto3 session may not make clients in two threads at once
            if self._session is None:
                self._session = self.boto3_session()
            return self._session.client(service, endpoint_url=self.url, verify=verify)

    def role_env(self, role_arn: str, service_principal: str, session: str) -> dict[str, str]:
        """What a service's process in `role_arn` gets: env() with that role session's credentials."""
        from aws_emulator.iam_principals import service_session

        return {**self.env(), **service_session(role_arn, service_principal, session[:64])}

    def client_as(self, role_arn: str, service_principal: str, service: str) -> Any:
        """A client signing as the service's session of `role_arn` (e.g. a pipeline's or a job's role)."""
        import boto3

        from aws_emulator.iam_principals import service_session

        creds = service_session(role_arn, service_principal, service_principal.split(".")[0])
        session = boto3.Session(creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"],
                                creds["AWS_SESSION_TOKEN"], region_name=self.region)  # fmt: skip
        verify = str(self.tls_files.ca) if self.tls else None
        return session.client(service, endpoint_url=self.url, verify=verify)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
