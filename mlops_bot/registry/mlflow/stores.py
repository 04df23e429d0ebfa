"""Run artifacts kept in a store the tracking server does not proxy (`mlflow server --no-serve-artifacts
--default-artifact-root s3://...`): read and written with MLflow's own artifact repositories, the code the
server's clients use, with the store's SDK from the matching extra (`pip install 'mlops-bot[s3]'`).

Both are imported on first use, never on the start-up path. The SDK's exceptions become BotErrors here, by the
names of their classes, so this module imports no SDK to recognise them: a missing extra, missing or refused
credentials and a missing bucket are UsageErrors (exit 2) that say what to install or set; a missing file is
NotFound; anything else, after the SDK's own bounded retries, a RemoteError (exit 3) naming the store and the
URI with credentials redacted.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ...errors import NotFound, RemoteError, UsageError
from ...support.files import WriteFailed, download_into
from ...support.urls import redact, redact_text

# scheme -> (the extra that brings its SDK, the store's name in messages, the variables its SDK reads)
STORES: dict[str, tuple[str, str, str]] = {
    "s3": ("s3", "S3", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE; with MLFLOW_S3_ENDPOINT_URL "
                       "for MinIO and other S3-compatible stores)"),
    "wasbs": ("azure", "Azure Blob Storage", "AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCESS_KEY (or "
                                             "AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET)"),
    "wasb": ("azure", "Azure Blob Storage", "AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCESS_KEY"),
    "abfss": ("azure", "Azure Data Lake Storage", "AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET "
                                                  "(read by azure-identity's DefaultAzureCredential)"),
    "gs": ("gcs", "Google Cloud Storage", "GOOGLE_APPLICATION_CREDENTIALS (a service account key file), or "
                                          "`gcloud auth application-default login`"),
    "dbfs": ("databricks", "Databricks DBFS", "DATABRICKS_HOST and DATABRICKS_TOKEN"),
    "azureml": ("azureml", "Azure ML", "AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET"),
    "file": ("file", "shared disk", ""),
}
PROXY_SCHEME = "mlflow-artifacts"


def scheme_of(uri: str) -> str:
    try:
        return urlsplit(uri).scheme.lower()
    except ValueError:  # e.g. an unclosed '[' where a host would be
        return ""


class RepositoryStore:
    """One artifact root (a run's artifact URI, or an experiment's location) through MLflow's artifact
    repository for its scheme. Paths are '/'-joined parts below the root, already checked by the caller."""

    def __init__(self, root_uri: str) -> None:
        self.root_uri = root_uri.rstrip("/")
        self.scheme = scheme_of(root_uri)
        self.display = shown_uri(self.root_uri)
        self.store_name = STORES.get(self.scheme, ("", self.scheme or "artifact", ""))[1]
        self._repository: Any = None

    def where(self, parts: tuple[str, ...]) -> str:
        return "/".join((self.display, *parts))

    def prefixes(self, parts: tuple[str, ...]) -> tuple[str, ...]:
        return ("/".join(parts),)  # a repository lists paths relative to its root

    @property
    def repository(self) -> Any:
        if self._repository is None:
            with self.translated(()):
                from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

                # azure-identity logs each credential it tried; the one error that matters is ours to say.
                logging.getLogger("azure.identity").setLevel(logging.CRITICAL)

                self._repository = get_artifact_repository(self.root_uri)
        return self._repository

    def listing(self, parts: tuple[str, ...]) -> list[dict[str, Any]]:
        """The entries of the directory `parts` as the proxy lists them ({path, is_dir, file_size}); [] when it
        is no directory."""
        with self.translated(parts):
            infos = self.repository.list_artifacts("/".join(parts) or None)
        return [{"path": info.path, "is_dir": info.is_dir, "file_size": info.file_size} for info in infos]

    def fetch(self, parts: tuple[str, ...], target: Path, max_bytes: int) -> int:
        """Downloads one file (support.files.download_into: complete or not at all) within `max_bytes`."""
        with download_into(target) as temp:
            with self.translated(parts):
                self.repository._download_file("/".join(parts), str(temp))  # the one method every repository has
            size = temp.stat().st_size
            if size > max_bytes:
                raise RemoteError(self.store_name, None, self.where(parts),
                                  f"the file has {size:,} bytes, more than the {max_bytes:,} this download takes; "
                                  "it was removed")
            return size

    def put(self, local: Path, parts: tuple[str, ...]) -> None:
        """Uploads a file or a directory's tree to the directory `parts` (overwriting: safe to repeat)."""
        with self.translated(parts):
            if local.is_dir():
                self.repository.log_artifacts(str(local), "/".join(parts) or None)
            else:
                self.repository.log_artifact(str(local), "/".join(parts) or None)

    @contextlib.contextmanager
    def translated(self, parts: tuple[str, ...]) -> Iterator[None]:
        """The SDK's and MLflow's exceptions as BotErrors that name the store, the URI and what to do."""
        try:
            yield
        except (UsageError, RemoteError, WriteFailed):
            raise
        except ImportError as exc:
            raise UsageError(self._missing_extra(exc)) from None
        except Exception as exc:
            raise self._error(exc, parts) from None

    def _missing_extra(self, exc: ImportError) -> str:
        extra = STORES.get(self.scheme, ("",))[0]
        install = f"pip install 'mlops-bot[{extra}]'" if extra else "install the MLflow plugin for this scheme"
        return (f"artifacts at {self.display} need {exc.name or 'a package'}, which is not installed "
                f"({_first_line(exc)}); {install}, then run again.")

    def _error(self, exc: Exception, parts: tuple[str, ...]) -> Exception:
        names = {cls.__name__ for cls in type(exc).__mro__}
        where, message = self.where(parts), _first_line(exc)
        status, code = _status_and_code(exc)
        variables = STORES.get(self.scheme, ("", "", ""))[2]
        if "MlflowException" in names and "registered artifact repository" in message:
            return UsageError(f"no artifact repository handles {self.display} (scheme '{self.scheme}:'); use "
                              f"one of {', '.join(s + ':' for s in (PROXY_SCHEME, *STORES))}, or install the "
                              "MLflow plugin that registers this scheme.")
        if names & _NO_CREDENTIALS or (code in _REFUSED or status in (401, 403)):
            given = "were refused" if (code in _REFUSED or status in (401, 403)) else "were not found"
            return UsageError(f"{self.store_name}: credentials for {where} {given} ({message}); set "
                              f"{variables or 'the credentials its SDK reads'} for mlops-bot (and list them in "
                              "the pass_env of steps whose own code logs artifacts), then run again.")
        if code in _NO_CONTAINER:
            return UsageError(f"{self.store_name}: {self.display} names a bucket or container that does not "
                              f"exist ({message}); create it, or point the server's --default-artifact-root (or "
                              "the experiment's artifact location) at one that exists.")
        if names & _MISSING_FILE or code in _MISSING_OBJECT or status == 404:
            return NotFound(self.store_name, status if status is not None else 404, where, "no such artifact")
        if "PermissionError" in names:
            return UsageError(f"{self.store_name}: cannot write {where} ({message}); make the directory writable "
                              "for the user that runs mlops-bot.")
        if "EndpointConnectionError" in names or "ServiceRequestError" in names or "ConnectionError" in names:
            return RemoteError(self.store_name, None, where, f"{message}; check the store's endpoint (e.g. "
                                                             "MLFLOW_S3_ENDPOINT_URL) and that it is reachable")
        return RemoteError(self.store_name, status, where, f"{type(exc).__name__}: {message}")


# What the SDKs raise, by class name (botocore, azure-core/azure-identity, google-auth/google-api-core, OS).
_NO_CREDENTIALS = {"NoCredentialsError", "PartialCredentialsError", "CredentialUnavailableError",
                   "ClientAuthenticationError", "DefaultCredentialsError", "RefreshError"}
_REFUSED = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "AuthenticationFailed",
            "AuthorizationFailure", "AuthorizationPermissionMismatch", "ExpiredToken"}
_NO_CONTAINER = {"NoSuchBucket", "ContainerNotFound", "FilesystemNotFound", "BucketNotFound"}
# RESOURCE_DOES_NOT_EXIST: MLflow's own error code, raised by its local and Azure repositories
_MISSING_OBJECT = {"NoSuchKey", "404", "BlobNotFound", "PathNotFound", "RESOURCE_DOES_NOT_EXIST"}
_MISSING_FILE = {"FileNotFoundError"}


def shown_uri(uri: str) -> str:
    """The URI fit for messages: credentials and query gone; Azure's `container@account` kept (no secret)."""
    scheme, separator, rest = uri.partition("://")
    container, at, account = rest.partition("@")
    if separator and at and scheme.lower() in AZURE_SCHEMES and ":" not in container and "/" not in container:
        return f"{scheme}://{container}@{redact(f'{scheme}://{account}').partition('://')[2]}"
    return redact(uri)


AZURE_SCHEMES = ("wasbs", "wasb", "abfss", "abfs")


def _status_and_code(exc: Exception) -> tuple[int | None, str]:
    """The HTTP status and the store's error code, wherever the SDK keeps them."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore's ClientError
        error, meta = response.get("Error") or {}, response.get("ResponseMetadata") or {}
        status = meta.get("HTTPStatusCode")
        return (status if isinstance(status, int) else None), str(error.get("Code") or "")
    status = getattr(exc, "status_code", None) or getattr(exc, "code", None)  # azure-core / google-api-core
    code = getattr(exc, "error_code", None) or ""
    if not code and "bucket does not exist" in str(exc).lower():  # google-api-core's NotFound for a bucket
        code = "BucketNotFound"
    return (status if isinstance(status, int) else None), str(code)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return redact_text(text[0] if text else type(exc).__name__)[:300]
