"""The serving directory in a bucket: pushes, versions and rollbacks through
modules/storage.py on a real S3 server, each version complete or absent."""

import json
import uuid

import pytest

from components.atomic_pusher.executor import push_atomically
from modules import storage
from serving import layout, versions


@pytest.fixture
def base(s3_env):
    bucket = s3_env.make_bucket(f"serving-{uuid.uuid4().hex[:8]}")
    return f"s3://{bucket}/serving/alexnet"


@pytest.fixture
def model(tmp_path):
    """A SavedModel's files (their content does not matter to a push)."""
    folder = tmp_path / "model"
    (folder / "variables").mkdir(parents=True)
    (folder / "variables" / "variables.data-00000-of-00001").write_bytes(b"weights" * 100)
    (folder / "variables" / "variables.index").write_bytes(b"index")
    (folder / "fingerprint.pb").write_bytes(uuid.uuid4().bytes)
    (folder / "saved_model.pb").write_bytes(b"graph")
    return str(folder)


def _objects(s3_env, uri):
    prefix = uri.split("://", 1)[1]
    found = (name[len(prefix) + 1 :] for name in s3_env.filesystem().find(prefix))
    return sorted(name for name in found if name)  # SeaweedFS may list an emptied prefix


def test_pushes_rollbacks_and_numbers_in_a_bucket(s3_env, base, model):
    record = {"assets.extra/push.json": json.dumps({"run_id": "r1"}).encode()}
    assert push_atomically(model, base, record) == (1, f"{base}/1")
    assert push_atomically(model, base, {})[0] == 2
    assert layout.complete_versions(base) == [1, 2]
    assert _objects(s3_env, f"{base}/1") == [
        "assets.extra/push.json",
        "fingerprint.pb",
        "saved_model.pb",
        "variables/variables.data-00000-of-00001",
        "variables/variables.index",
    ]
    serving_dir = base.rsplit("/", 1)[0]
    assert [v.run_id for v in versions.list_versions(serving_dir, "alexnet")] == ["r1", None]
    assert versions.rollback(serving_dir, "alexnet") == [2]
    assert layout.complete_versions(base) == [1] and layout.retired_versions(base) == [2]
    assert len(_objects(s3_env, f"{base}/{layout.RETIRED_DIR}/2")) == 4
    assert _objects(s3_env, f"{base}/2") == []
    assert push_atomically(model, base, {})[0] == 3  # 2 is never reused
    staged = [n for n in storage.listdir(base) if n.startswith(layout.STAGING_PREFIX)]
    assert not [name for name in staged if _objects(s3_env, f"{base}/{name}")]


def test_what_a_killed_push_left_is_never_a_version(s3_env, base, model):
    push_atomically(model, base, {})
    filesystem = s3_env.filesystem()
    key = base.split("://", 1)[1]
    # Killed while copying version 2 into place: no saved_model.pb, one stray file.
    filesystem.pipe(f"{key}/2/variables/variables.index", b"half")
    filesystem.pipe(f"{key}/2/stray-from-the-killed-push", b"x")
    assert layout.complete_versions(base) == [1]
    assert push_atomically(model, base, {})[0] == 2
    assert "stray-from-the-killed-push" not in _objects(s3_env, f"{base}/2")
    assert storage.read_bytes(f"{base}/2/variables/variables.index") == b"index"


def test_a_push_with_wrong_credentials_writes_nothing(s3_env, base, model, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with pytest.raises(storage.StorageError) as raised:
        push_atomically(model, base, {})
    message = str(raised.value)
    assert "Cannot push" in message and "AWS_SECRET_ACCESS_KEY" in message
    assert "\n" not in message
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_env.secret_key)
    assert not _objects(s3_env, base)
