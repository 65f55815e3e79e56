"""Files by path or URI: local folders and gs:// through TensorFlow's filesystems, s3:// and
minio:// (Kubeflow Pipelines' artifact store) through s3fs.

TensorFlow 2.21 has no S3 filesystem: tensorflow-io's plugin (0.37.1, the newest) fails to
load into it. Code that reads data or a serving directory calls these functions instead of
tf.io.gfile, so a bucket works wherever a folder does.

The bucket's endpoint and credentials come from the environment, as for any AWS SDK:
AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL (MinIO, SeaweedFS, Ceph; unset for AWS itself),
AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or an IAM role). minio:// means the same as
s3:// and needs an endpoint.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from typing import IO, Any

import tensorflow as tf

BUCKET_SCHEMES = ("s3://", "minio://")
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
CREDENTIAL_VARIABLES = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
# A wrong endpoint fails in seconds, not after botocore's default retries (about a minute).
_CLIENT_CONFIG = {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 3}}


class StorageError(OSError):
    """A bucket cannot be used as asked; the message names it and says what to set."""


def is_bucket(path: str) -> bool:
    """s3:// or minio://: reached through s3fs rather than TensorFlow."""
    return path.startswith(BUCKET_SCHEMES)


def beam_path(path: str) -> str:
    """The path as Beam's filesystems name it: Beam reads s3:// buckets itself (through
    boto3, which takes the same settings), and minio:// names the same bucket."""
    return "s3://" + path[len("minio://") :] if path.startswith("minio://") else path


def endpoint() -> str | None:
    return next((os.environ[name] for name in ENDPOINT_VARIABLES if os.environ.get(name)), None)


def _key(path: str) -> str:
    """bucket/key, as s3fs names an object."""
    return path.split("://", 1)[1].rstrip("/")


def bucket_name(path: str) -> str:
    return _key(path).split("/", 1)[0]


def _where(path: str) -> str:
    return f"bucket {bucket_name(path)} at {endpoint() or 'the AWS default endpoint'}"


@functools.cache
def _filesystem(endpoint_url: str | None, key: str | None, secret: str | None) -> Any:
    import s3fs

    return s3fs.S3FileSystem(
        endpoint_url=endpoint_url,
        key=key,
        secret=secret,
        # Listings are read fresh: a serving directory changes while a server polls it.
        use_listings_cache=False,
        config_kwargs=_CLIENT_CONFIG,
    )


def _s3(path: str) -> Any:
    url = endpoint()
    if path.startswith("minio://") and not url:
        raise StorageError(
            f"{path}: minio:// needs the store's endpoint; set AWS_ENDPOINT_URL (on Kubeflow "
            "Pipelines e.g. http://seaweedfs.kubeflow:9000 or http://minio-service.kubeflow:9000)."
        )
    return _filesystem(
        url, os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    )


def _missing_bucket(error: BaseException) -> bool:
    return isinstance(error, FileNotFoundError) and "bucket" in str(error).lower()


def explain(error: BaseException, path: str) -> StorageError:
    """One line for a failed bucket call: which bucket and endpoint, and what to set."""
    from botocore import exceptions as botocore_errors

    where = _where(path)
    if isinstance(error, StorageError):
        return error
    if isinstance(error, botocore_errors.NoCredentialsError):
        return StorageError(f"{path}: no credentials for {where}; set {CREDENTIAL_VARIABLES}.")
    if isinstance(error, botocore_errors.BotoCoreError):  # connection refused, DNS, timeouts
        return StorageError(
            f"{path}: cannot reach {where} ({error}); set AWS_ENDPOINT_URL to your object "
            "store's URL (e.g. http://minio:9000)."
        )
    if isinstance(error, PermissionError):
        return StorageError(
            f"{path}: {where} refused these credentials ({error}); set {CREDENTIAL_VARIABLES} "
            "to a key that may read and write it."
        )
    if _missing_bucket(error):
        return StorageError(
            f"{path}: {where} does not exist; create it, or point the URI at an existing bucket."
        )
    return StorageError(f"{path}: {where}: {error}")


def _call(path: str, operation: str, *args: Any, **kwargs: Any) -> Any:
    """An s3fs method on the path's filesystem; a missing key stays FileNotFoundError, every
    other failure is a StorageError naming the bucket."""
    from botocore.exceptions import BotoCoreError

    try:
        return getattr(_s3(path), operation)(*args, **kwargs)
    except (BotoCoreError, PermissionError) as error:
        raise explain(error, path) from None
    except FileNotFoundError as error:
        if _missing_bucket(error):
            raise explain(error, path) from None
        raise


def check_bucket(path: str) -> None:
    """Fails with one line unless the bucket exists and these credentials may list it."""
    if is_bucket(path):
        _call(path, "ls", bucket_name(path), refresh=True)


def exists(path: str) -> bool:
    return _call(path, "exists", _key(path)) if is_bucket(path) else tf.io.gfile.exists(path)


def isdir(path: str) -> bool:
    """A folder; in a bucket, a prefix that holds objects."""
    return _call(path, "isdir", _key(path)) if is_bucket(path) else tf.io.gfile.isdir(path)


def listdir(path: str) -> list[str]:
    """The names of the folder's entries (files and folders, without a trailing /)."""
    if not is_bucket(path):
        return [name.rstrip("/") for name in tf.io.gfile.listdir(path)]
    key = _key(path)
    return sorted(
        entry.rsplit("/", 1)[-1]
        for entry in _call(path, "ls", key, detail=False)
        if entry.rstrip("/") != key
    )


def walk(path: str) -> Iterator[tuple[str, list[str], list[str]]]:
    """(folder, sub-folder names, file names) for the folder and each folder below it."""
    if not is_bucket(path):
        yield from tf.io.gfile.walk(path)
        return
    scheme = path.split("://", 1)[0]
    for folder, folders, files in _call(path, "walk", _key(path)):
        # SeaweedFS lists an emptied prefix as holding a file named "".
        yield f"{scheme}://{folder}", sorted(folders), sorted(name for name in files if name)


def open_file(path: str, mode: str = "r") -> IO[Any]:
    """A file object; text modes decode UTF-8. Writing makes the file's folder, as a bucket
    needs none."""
    if not is_bucket(path):
        if "r" not in mode:
            tf.io.gfile.makedirs(os.path.dirname(path))
        return tf.io.gfile.GFile(path, mode)
    if "b" in mode:
        return _call(path, "open", _key(path), mode)
    return _call(path, "open", _key(path), mode, encoding="utf-8")


def read_bytes(path: str) -> bytes:
    with open_file(path, "rb") as handle:
        return handle.read()


def write_bytes(path: str, content: bytes) -> None:
    """Writes the whole file; in a bucket the object appears whole or not at all."""
    if is_bucket(path):
        _call(path, "pipe_file", _key(path), content)
        return
    with open_file(path, "wb") as handle:
        handle.write(content)


def makedirs(path: str) -> None:
    """A folder and its parents; a bucket has no folders, so nothing is made there."""
    if not is_bucket(path):
        tf.io.gfile.makedirs(path)


def remove_tree(path: str) -> None:
    """The folder and everything in it; nothing if it is not there."""
    if is_bucket(path):
        with contextlib.suppress(FileNotFoundError):
            _call(path, "rm", _key(path), recursive=True)
    elif tf.io.gfile.exists(path):
        tf.io.gfile.rmtree(path)


def modified_seconds(path: str) -> float | None:
    """When the file or folder last changed, in seconds since the epoch; for a bucket
    folder, its newest object's time (None when it holds none)."""
    if not is_bucket(path):
        try:
            return tf.io.gfile.stat(path).mtime_nsec / 1e9
        except tf.errors.NotFoundError as error:
            raise FileNotFoundError(path) from error
    found = _call(path, "find", _key(path), detail=True)
    if not found:
        info = _call(path, "info", _key(path))  # FileNotFoundError if absent
        found = {path: info}
    stamps = [info["LastModified"].timestamp() for info in found.values() if "LastModified" in info]
    return max(stamps) if stamps else None


def move_tree(source: str, target: str, marker: str) -> None:
    """Moves a folder whose readers wait for its `marker` file (a relative path): a rename
    where there is one; in a bucket, a copy with the marker last, then the source's marker
    goes first, so readers of either side never see half of it."""
    if not is_bucket(source):
        tf.io.gfile.rename(source, target)
        return
    copy_tree(source, target, last=(marker,))
    _call(source, "rm_file", f"{_key(source)}/{marker}")
    remove_tree(source)


def download_tree(path: str, local_dir: str) -> None:
    """A folder in a bucket (or gs://) copied to a local folder; a file to a local file."""
    if not is_bucket(path):
        for folder, _, names in tf.io.gfile.walk(path):
            target = os.path.join(local_dir, os.path.relpath(folder, path))
            os.makedirs(target, exist_ok=True)
            for name in names:
                tf.io.gfile.copy(os.path.join(folder, name), os.path.join(target, name), True)
        return
    if _call(path, "isdir", _key(path)):
        os.makedirs(local_dir, exist_ok=True)
        _call(path, "get", _key(path) + "/", local_dir.rstrip("/") + "/", recursive=True)
    else:
        os.makedirs(os.path.dirname(local_dir) or ".", exist_ok=True)
        _call(path, "get_file", _key(path), local_dir)


def upload_tree(local_dir: str, path: str, last: tuple[str, ...] = ()) -> None:
    """A local folder copied into a bucket (or gs://) folder, file by file; files named in
    `last` (relative paths) go after every other, so a reader that waits for them sees the
    rest."""
    files = sorted(
        os.path.relpath(os.path.join(folder, name), local_dir)
        for folder, _, names in os.walk(local_dir)
        for name in names
    )
    ordered = [name for name in files if name not in last] + [n for n in last if n in files]
    for relative in ordered:
        source, target = os.path.join(local_dir, relative), f"{path.rstrip('/')}/{relative}"
        if is_bucket(path):
            _call(path, "put_file", source, _key(target))
        else:
            tf.io.gfile.makedirs(os.path.dirname(target))
            tf.io.gfile.copy(source, target, overwrite=True)


def copy_tree(source: str, target: str, last: tuple[str, ...] = ()) -> None:
    """A folder copied within one bucket, object by object on the server, `last` last."""
    prefix = _key(source)
    found = sorted(_call(source, "find", prefix))
    relative = [name[len(prefix) + 1 :] for name in found]
    ordered = [name for name in relative if name not in last] + [n for n in last if n in relative]
    for name in ordered:
        _call(target, "copy", f"{prefix}/{name}", f"{_key(target)}/{name}")


def entries(path: str) -> list[tuple[str, bool]]:
    """(name, is a folder) of each entry of the folder, in name order; one listing request
    in a bucket."""
    if not is_bucket(path):
        return [(name, tf.io.gfile.isdir(os.path.join(path, name))) for name in listdir(path)]
    key = _key(path)
    found = {
        info["name"].rstrip("/").rsplit("/", 1)[-1]: info["type"] == "directory"
        for info in _call(path, "ls", key, detail=True)
        if info["name"].rstrip("/") != key
    }
    return sorted(found.items())


def file_details(root: str) -> Iterator[tuple[str, int, str]]:
    """(path relative to root, size, version stamp) of every file under root, in path order:
    the object's ETag in a bucket, the modification time elsewhere."""
    if is_bucket(root):
        prefix = _key(root) + "/"
        for name, info in sorted(_call(root, "find", _key(root), detail=True).items()):
            yield name[len(prefix) :], int(info.get("size") or 0), str(info.get("ETag", ""))
        return
    listed = []
    walker = tf.io.gfile.walk if "://" in root else os.walk  # gs://; os.walk stats less
    for folder, _, names in walker(root):
        for name in names:
            path = os.path.join(folder, name)
            size, stamp = _size_and_stamp(path)
            listed.append((os.path.relpath(path, root), size, str(stamp)))
    yield from sorted(listed)


def _size_and_stamp(path: str) -> tuple[int, int]:
    if "://" in path:
        stat = tf.io.gfile.stat(path)
        return stat.length, stat.mtime_nsec
    try:
        stat = os.stat(path)
    except OSError:  # a broken link or a link loop: the link itself (ingestion rejects it)
        stat = os.lstat(path)
    return stat.st_size, stat.st_mtime_ns
