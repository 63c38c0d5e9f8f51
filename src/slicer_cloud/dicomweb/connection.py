"""Talking to one DICOMweb server through ``dicomweb-client``, safely.

Every request has a timeout, no retries behind the user's back, and every reply is read with a
byte limit before anything parses it (a hook reads the body itself, chunk by chunk, and stops
past ``dicomweb_max_response_bytes``). Failures of the network, the server or its reply become
one :class:`SlicerCloudError` that says which server and what to do; the exception goes to the
log only.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

import requests
from requests.adapters import HTTPAdapter

from slicer_cloud.dicomweb.settings import DicomwebServer, DicomwebSettings
from slicer_cloud.errors import SlicerCloudError

log = logging.getLogger("slicer_cloud.dicomweb")

_CHUNK = 1024 * 1024


class _ReplyTooLarge(Exception):
    pass


class _ReplyCut(Exception):
    pass


def _bounded_body(limit: int):
    """A response hook that reads the whole body with a byte limit (before requests would)."""

    def hook(response: requests.Response, *_args, **_kwargs) -> requests.Response:
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > limit:
            response.close()
            raise _ReplyTooLarge(f"declared {declared} bytes")
        parts: list[bytes] = []
        size = 0
        try:
            for chunk in response.raw.stream(_CHUNK, decode_content=True):
                size += len(chunk)
                if size > limit:
                    response.close()
                    raise _ReplyTooLarge(f"more than {limit} bytes")
                parts.append(chunk)
        except _ReplyTooLarge:
            raise
        except Exception as error:  # urllib3 protocol errors, resets, read timeouts mid-body
            response.close()
            raise _ReplyCut(repr(error)) from None
        response._content = b"".join(parts)  # what requests' own .content would have set
        response._content_consumed = True
        return response

    return hook


class _Adapter(HTTPAdapter):
    """Sends the QIDO wildcards ``*`` and ``?`` unescaped and spaces as ``%20``: RFC 3986 allows
    all three in a query, and some servers (Orthanc 1.10) match ``%2A``, ``%3F`` or a
    form-encoded ``+`` literally, so a search would find nothing. (The client form-encodes, so a
    real ``+`` is already ``%2B``.)"""

    def send(self, request, *args, **kwargs):
        if request.url and "?" in request.url:
            path, _, query = request.url.partition("?")
            for escaped, char in (("%2A", "*"), ("%2a", "*"), ("%3F", "?"), ("%3f", "?"), ("+", "%20")):
                query = query.replace(escaped, char)
            request.url = f"{path}?{query}"
        try:
            return super().send(request, *args, **kwargs)
        except requests.exceptions.ConnectionError as error:
            # A kept-alive connection the server closed while idle fails on reuse ("Connection
            # aborted", "RemoteDisconnected"): a GET is safe to send once more on a new one.
            text = str(error)
            if request.method != "GET" or not ("aborted" in text or "RemoteDisconnected" in text or "reset by peer" in text):
                raise
            log.info("GET %s failed on a reused connection (%s); sending it again", request.path_url.split("?")[0], text[:120])
            return super().send(request, *args, **kwargs)


def make_session(server: DicomwebServer, settings: DicomwebSettings) -> requests.Session:
    """A requests session with this server's credentials and the reply limit."""
    session = requests.Session()
    session.trust_env = False  # no proxies or netrc credentials picked up from the environment
    if server.ca_file is not None:
        session.verify = str(server.ca_file)
    adapter = _Adapter(pool_connections=2, pool_maxsize=settings.dicomweb_workers + 2, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    secret = server.secret()
    if server.auth == "basic":
        session.auth = (server.username or "", secret or "")
    elif server.auth == "bearer":
        session.headers["Authorization"] = f"Bearer {secret}"
    session.hooks["response"].append(_bounded_body(settings.dicomweb_max_response_bytes))
    return session


def make_client(server: DicomwebServer, settings: DicomwebSettings):
    """A ``dicomweb_client.DICOMwebClient`` for ``server``, without automatic retries."""
    from dicomweb_client import DICOMwebClient

    client = DICOMwebClient(
        url=server.url,
        session=make_session(server, settings),
        timeout=(min(10.0, settings.dicomweb_timeout_s), settings.dicomweb_timeout_s),
    )
    client.set_http_retry_params(retry=False)
    return client


class Connection:
    """Clients for one server, one per thread (a requests session is not shared across threads)."""

    def __init__(self, server: DicomwebServer, settings: DicomwebSettings):
        self.server = server
        self.settings = settings
        self._local = threading.local()

    @property
    def client(self):
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = make_client(self.server, self.settings)
        return client

    def errors(self, doing: str):
        """Context manager: failures while ``doing`` something become clear messages."""
        return server_errors(self.server, doing, self.settings)


@contextlib.contextmanager
def server_errors(server: DicomwebServer, doing: str, settings: DicomwebSettings) -> Iterator[None]:
    name = server.name
    try:
        yield
    except SlicerCloudError:
        raise
    except _ReplyTooLarge as error:
        raise SlicerCloudError(
            f"The DICOMweb server {name!r} sent more than {settings.dicomweb_max_response_bytes / 1024**2:.0f} MiB "
            f"while {doing}, the most one reply may hold (setting SLICER_CLOUD_DICOMWEB_MAX_RESPONSE_BYTES).",
            status=413, detail=str(error),
        ) from None
    except _ReplyCut as error:
        raise SlicerCloudError(
            f"The DICOMweb server {name!r} stopped sending halfway while {doing}; try again, or ask its administrator.",
            status=502, detail=str(error),
        ) from None
    except requests.exceptions.HTTPError as error:
        status = error.response.status_code if error.response is not None else 0
        if status in (401, 403):
            raise SlicerCloudError(
                f"The DICOMweb server {name!r} refused the credentials slicer-cloud has for it (HTTP {status}) while "
                f"{doing}: check its username and password or token in the server settings.",
                status=502, detail=str(error),
            ) from None
        if status == 404:
            raise SlicerCloudError(f"The DICOMweb server {name!r} has no such data ({doing}).", status=404, detail=str(error)) from None
        raise SlicerCloudError(
            f"The DICOMweb server {name!r} answered HTTP {status} while {doing}.", status=502, detail=str(error)
        ) from None
    except requests.exceptions.Timeout as error:
        raise SlicerCloudError(
            f"The DICOMweb server {name!r} did not answer within {settings.dicomweb_timeout_s:g} s while {doing} "
            "(setting SLICER_CLOUD_DICOMWEB_TIMEOUT_S).",
            status=504, detail=str(error),
        ) from None
    except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as error:
        if "Connection refused" in str(error) or "Name or service not known" in str(error) or "NewConnectionError" in str(error):
            message = f"The DICOMweb server {name!r} cannot be reached (is it running, and is its URL right?)."
        else:
            message = f"The connection to the DICOMweb server {name!r} broke while {doing}; try again."
        raise SlicerCloudError(message, status=502, detail=str(error)) from None
    except requests.exceptions.RequestException as error:
        if isinstance(error, ValueError):  # requests' JSONDecodeError: the reply is not JSON
            raise SlicerCloudError(
                f"The DICOMweb server {name!r} sent a reply that is not valid DICOMweb while {doing}.", status=502,
                detail=repr(error),
            ) from None
        raise SlicerCloudError(f"Talking to the DICOMweb server {name!r} failed while {doing}.", status=502, detail=repr(error)) from None
    except (ValueError, KeyError, TypeError, EOFError, AttributeError, IndexError) as error:
        # dicomweb-client and pydicom raise these for replies that are not what DICOMweb promises
        log.info("malformed reply from %s while %s: %r", name, doing, error)
        raise SlicerCloudError(
            f"The DICOMweb server {name!r} sent a reply that is not valid DICOMweb while {doing}.", status=502, detail=repr(error)
        ) from None
