"""modules/storage.py against a real S3 server and a local folder: the same calls, the same
answers; and each way a bucket can be wrong is one line naming the bucket."""

import uuid

import pytest

from modules import storage


@pytest.fixture
def bucket(s3_env):
    return s3_env.make_bucket(f"storage-{uuid.uuid4().hex[:8]}")


@pytest.fixture(params=["local", "s3", "minio"])
def root(request, tmp_path, bucket):
    if request.param == "local":
        return str(tmp_path)
    return f"{request.param}://{bucket}/data"


def test_files_and_folders_answer_the_same_everywhere(root, tmp_path):
    storage.makedirs(f"{root}/cats")
    storage.write_bytes(f"{root}/cats/a.jpg", b"a")
    storage.write_bytes(f"{root}/cats/deep/b.jpg", b"bb")
    storage.write_bytes(f"{root}/dogs/c.jpg", b"ccc")
    with storage.open_file(f"{root}/labels.txt", "w") as handle:
        handle.write("cats\ndogs\n")
    assert storage.listdir(root) == ["cats", "dogs", "labels.txt"]
    assert storage.isdir(f"{root}/cats") and not storage.isdir(f"{root}/labels.txt")
    assert storage.exists(f"{root}/cats/deep/b.jpg") and not storage.exists(f"{root}/x")
    assert not storage.isdir(f"{root}/nothing")
    walked = {
        folder[len(root) :]: (sorted(folders), sorted(files))
        for folder, folders, files in storage.walk(root)
    }
    assert walked == {
        "": (["cats", "dogs"], ["labels.txt"]),
        "/cats": (["deep"], ["a.jpg"]),
        "/cats/deep": ([], ["b.jpg"]),
        "/dogs": ([], ["c.jpg"]),
    }
    assert storage.read_bytes(f"{root}/dogs/c.jpg") == b"ccc"
    with storage.open_file(f"{root}/labels.txt") as handle:
        assert handle.read().splitlines() == ["cats", "dogs"]
    assert storage.modified_seconds(f"{root}/dogs/c.jpg") > 0
    storage.remove_tree(f"{root}/cats")
    # SeaweedFS may still list the emptied prefix; its objects are gone.
    assert not storage.exists(f"{root}/cats/a.jpg") and not storage.exists(
        f"{root}/cats/deep/b.jpg"
    )
    assert storage.read_bytes(f"{root}/dogs/c.jpg") == b"ccc"
    storage.remove_tree(f"{root}/cats")  # gone already: nothing to do


def test_a_tree_goes_up_and_down_with_its_last_files_last(bucket, tmp_path, monkeypatch):
    calls = []
    real_call = storage._call

    def recording(path, operation, *args, **kwargs):
        calls.append((operation, args))
        return real_call(path, operation, *args, **kwargs)

    monkeypatch.setattr(storage, "_call", recording)
    local = tmp_path / "model"
    (local / "variables").mkdir(parents=True)
    (local / "variables" / "variables.index").write_bytes(b"i")
    (local / "saved_model.pb").write_bytes(b"pb")
    (local / "fingerprint.pb").write_bytes(b"fp")
    remote = f"s3://{bucket}/models/1"
    storage.upload_tree(str(local), remote, last=("saved_model.pb",))
    storage.copy_tree(remote, f"s3://{bucket}/models/2", last=("saved_model.pb",))
    for operation in ("put_file", "copy"):
        written = [args[1].rsplit("/models/", 1)[1] for op, args in calls if op == operation]
        assert len(written) == 3 and written[-1].endswith("/saved_model.pb"), written
    storage.download_tree(f"s3://{bucket}/models/2", str(tmp_path / "back"))
    assert sorted(
        p.relative_to(tmp_path / "back").as_posix()
        for p in (tmp_path / "back").rglob("*")
        if p.is_file()
    ) == [
        "fingerprint.pb",
        "saved_model.pb",
        "variables/variables.index",
    ]
    assert (tmp_path / "back" / "saved_model.pb").read_bytes() == b"pb"


def test_a_missing_bucket_is_one_line_naming_it(s3_env):
    with pytest.raises(storage.StorageError) as raised:
        storage.check_bucket("s3://no-such-bucket-here/images")
    message = str(raised.value)
    assert "bucket no-such-bucket-here" in message and s3_env.endpoint in message
    assert "does not exist" in message and "\n" not in message


def test_wrong_credentials_are_one_line_saying_what_to_set(bucket, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(storage.StorageError) as raised:
        storage.listdir(f"s3://{bucket}/images")
    message = str(raised.value)
    assert f"bucket {bucket}" in message and "AWS_SECRET_ACCESS_KEY" in message
    assert "refused these credentials" in message and "\n" not in message


def test_a_wrong_endpoint_fails_within_seconds(s3_env, monkeypatch):
    import time

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    started = time.monotonic()
    with pytest.raises(storage.StorageError) as raised:
        storage.check_bucket("s3://mlpipeline/v2/artifacts")
    assert time.monotonic() - started < 30
    message = str(raised.value)
    assert "cannot reach bucket mlpipeline at http://127.0.0.1:9" in message
    assert "set AWS_ENDPOINT_URL" in message and "\n" not in message


def test_minio_uris_need_an_endpoint(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    with pytest.raises(storage.StorageError, match="set AWS_ENDPOINT_URL"):
        storage.listdir("minio://mlpipeline/v2")
