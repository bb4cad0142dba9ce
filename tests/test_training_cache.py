"""The training cache: a reused model is the model training would give; anything that changes the
weights changes the key; a damaged or foreign entry is retrained, never trusted."""

import random
import warnings

import numpy as np
import pytest
import torch

import lib.training_cache as cache_module
from lib.fingerprint import array_fingerprint
from lib.models import NeuralODESegmenter, SegmentationUNet
from lib.train import TrainConfig, predict_logits, train_segmenter
from lib.training_cache import TrainingCache, training_cache, training_key

MODALITIES = ("flair", "t1ce")


def toy(n: int = 12, size: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((n, len(MODALITIES), size, size)).astype(np.float32)
    return images, images[:, 0] > 0.3


def node(seed: int = 0) -> NeuralODESegmenter:
    torch.manual_seed(seed)
    return NeuralODESegmenter(MODALITIES, base_width=4, depth=2, train_steps=2, sensitivity="autograd")


def config(**kwargs) -> TrainConfig:
    settings = dict(epochs=2, batch_size=4, lr=1e-2, device="cpu", progress=False, seed=1)
    settings.update(kwargs)
    return TrainConfig(**settings)


def rng_draws():
    return (torch.rand(3).tolist(), np.random.rand(3).tolist(), random.random())


def test_array_fingerprint_depends_on_values_shape_and_dtype_not_layout():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    assert array_fingerprint(a) == array_fingerprint(np.asfortranarray(a))
    assert array_fingerprint(a) == array_fingerprint(a.transpose(2, 1, 0).copy().transpose(2, 1, 0))
    b = a.copy()
    b[1, 2, 3] += 1
    assert array_fingerprint(a) != array_fingerprint(b)
    assert array_fingerprint(a) != array_fingerprint(a.reshape(4, 3, 2))
    assert array_fingerprint(a) != array_fingerprint(a.astype(np.float64))


def test_a_reused_model_is_bit_identical_to_the_trained_one_and_leaves_the_same_rng_state(tmp_path):
    images, masks = toy()
    cache = TrainingCache(tmp_path / "cache")

    trained = node()
    first = train_segmenter(trained, images, masks, config(), cache=cache)
    after_training = rng_draws()
    assert not first.from_cache and len(list((tmp_path / "cache").glob("*.pt"))) == 1

    reused = node()
    second = train_segmenter(reused, images, masks, config(), cache=cache)
    after_reuse = rng_draws()
    assert second.from_cache
    assert second.epoch_losses == first.epoch_losses and second.seconds == first.seconds
    for name, value in trained.state_dict().items():
        assert torch.equal(value, reused.state_dict()[name]), name
    assert np.array_equal(predict_logits(trained, images), predict_logits(reused, images))
    assert reused.training  # left in training mode, as training leaves it
    # later steps of a chapter that draw random numbers see the same state either way
    assert after_training == after_reuse


def test_without_a_cache_nothing_is_kept_and_the_result_is_the_same(tmp_path):
    images, masks = toy()
    plain, cached = node(), node()
    train_segmenter(plain, images, masks, config())
    train_segmenter(cached, images, masks, config(), cache=TrainingCache(tmp_path))
    for name, value in plain.state_dict().items():
        assert torch.equal(value, cached.state_dict()[name])


@pytest.mark.parametrize("change", ["seed", "init", "images", "masks", "mask pixel moved", "epochs", "loss",
                                    "patience", "lr schedule", "threads", "layout", "validation",
                                    "validation masks", "architecture", "library code"])
def test_every_input_of_training_changes_the_key(change, monkeypatch):
    images, masks = toy()
    model, settings, validation = node(), config(), None
    base = training_key(model, images, masks, settings, validation, torch.device("cpu"))
    if change == "seed":
        settings = config(seed=2)
    elif change == "init":
        model = node(seed=5)
    elif change == "images":
        images = images.copy()
        images[0, 0, 0, 0] += 1e-3
    elif change == "masks":
        masks = masks.copy()
        masks[0, 0, 0] = not masks[0, 0, 0]
    elif change == "mask pixel moved":  # same number of True pixels, one of them elsewhere
        masks = masks.copy()
        on, off = np.argwhere(masks[0])[0], np.argwhere(~masks[0])[0]
        masks[0][tuple(on)], masks[0][tuple(off)] = False, True
    elif change == "epochs":
        settings = config(epochs=3)
    elif change == "loss":
        settings = config(loss="bce+dice")
    elif change == "patience":
        settings = config(patience=2)
    elif change == "lr schedule":
        settings = config(lr_schedule="cosine")
    elif change == "threads":
        monkeypatch.setattr(torch, "get_num_threads", lambda: 7)
    elif change == "layout":
        from lib.models import set_channels_last

        set_channels_last(model, False)
    elif change == "validation":
        validation = toy(n=4, seed=3)
    elif change == "validation masks":  # same validation images, one mask pixel flipped
        val_images, val_masks = toy(n=4, seed=3)
        base = training_key(model, images, masks, settings, (val_images, val_masks), torch.device("cpu"))
        val_masks = val_masks.copy()
        val_masks[0, 0, 0] = not val_masks[0, 0, 0]
        validation = (val_images, val_masks)
    elif change == "architecture":
        torch.manual_seed(0)
        model = NeuralODESegmenter(MODALITIES, base_width=4, depth=2, train_steps=3, sensitivity="autograd")
    elif change == "library code":
        monkeypatch.setattr(cache_module, "lib_source_fingerprint", lambda: "edited")
    key = training_key(model, images, masks, settings, validation, torch.device("cpu"))
    assert key != base


def test_the_key_records_the_device_type():
    images, masks = toy()
    model = node()
    on_cpu = training_key(model, images, masks, config(), None, torch.device("cpu"))
    on_gpu = training_key(model, images, masks, config(), None, torch.device("cuda:1"))  # no GPU needed to build a key
    # training_key stores device.type: "cuda:1" is recorded as "cuda", and a CUDA key has no CPU thread count
    assert on_cpu["device"] == "cpu" and on_gpu["device"] == "cuda" and on_gpu["cpu_threads"] is None
    assert on_cpu != on_gpu


def test_progress_bars_do_not_change_the_key():
    images, masks = toy()
    model = node()
    cpu = torch.device("cpu")
    assert training_key(model, images, masks, config(progress=True), None, cpu) == \
        training_key(model, images, masks, config(progress=False), None, cpu) == \
        training_key(model, images, masks, config(progress_label="ODE ET seed 0: epochs"), None, cpu)


def test_a_changed_setting_trains_again_instead_of_reusing(tmp_path):
    images, masks = toy()
    cache = TrainingCache(tmp_path)
    train_segmenter(node(), images, masks, config(), cache=cache)
    history = train_segmenter(node(), images, masks, config(lr=5e-3), cache=cache)
    assert not history.from_cache
    assert len(list(tmp_path.glob("*.pt"))) == 2


def _flip_a_weight_byte(entry):
    """Flip one byte inside the stored data of the first weight tensor (the zip member holding it)."""
    import zipfile

    data = bytearray(entry.read_bytes())
    with zipfile.ZipFile(entry) as archive:
        member = next(info for info in archive.infolist() if "/data/" in info.filename)
    # the data start after the local header, whose extra field (torch pads for alignment) can
    # differ from the central directory's
    offset = member.header_offset
    name_length, extra_length = (int.from_bytes(data[offset + i:offset + i + 2], "little") for i in (26, 28))
    data[offset + 30 + name_length + extra_length + 5] ^= 0xFF
    entry.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["truncated", "foreign key", "flipped weight byte", "extra weight", "no digest"])
def test_a_damaged_or_foreign_entry_is_retrained_and_replaced(tmp_path, damage):
    images, masks = toy()
    cache = TrainingCache(tmp_path)
    reference = node()
    train_segmenter(reference, images, masks, config(), cache=cache)
    (entry,) = tmp_path.glob("*.pt")
    if damage == "truncated":
        entry.write_bytes(entry.read_bytes()[:100])
    elif damage == "flipped weight byte":  # torch.load does not check the zip's CRCs
        _flip_a_weight_byte(entry)
    else:
        payload = torch.load(entry, weights_only=True)
        if damage == "foreign key":  # another run's stored key (a hash collision, or a file copied in by hand)
            payload["extra"]["training_key"] = payload["extra"]["training_key"].replace('"epochs":2', '"epochs":9')
        elif damage == "extra weight":  # matching tensors would be copied in before load_state_dict fails
            payload["state_dict"]["stray.weight"] = torch.zeros(1)
            payload["state_digest"] = cache_module.state_dict_digest(payload["state_dict"])
        else:  # written before entries carried a digest
            del payload["state_digest"]
        torch.save(payload, entry)
    model = node()
    with pytest.warns(UserWarning, match="unusable training-cache entry") as caught:
        history = train_segmenter(model, images, masks, config(), cache=cache)
    assert all("\n" not in str(w.message) for w in caught)
    assert not history.from_cache
    for name, value in reference.state_dict().items():
        assert torch.equal(value, model.state_dict()[name])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert train_segmenter(node(), images, masks, config(), cache=cache).from_cache  # replaced by a good one


def test_early_stopped_unet_is_reused_with_its_history(tmp_path):
    images, masks = toy(n=16)
    validation = toy(n=6, seed=4)
    cache = TrainingCache(tmp_path)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = SegmentationUNet(MODALITIES, base_width=4, depth=2)
        history = train_segmenter(model, images, masks, config(epochs=4, patience=1), validation=validation,
                                  cache=cache)
        runs.append((model, history))
    (first_model, first), (second_model, second) = runs
    assert second.from_cache and not first.from_cache
    assert (second.best_epoch, second.stopped_early, second.val_dice) == (first.best_epoch, first.stopped_early,
                                                                          first.val_dice)
    assert np.array_equal(predict_logits(first_model, images), predict_logits(second_model, images))


def test_the_params_name_the_cache_and_null_turns_it_off(tmp_path):
    assert training_cache({"training_cache_dir": None}) is None
    assert training_cache({}) is None
    assert training_cache({"training_cache_dir": str(tmp_path)}).root == tmp_path
    relative = training_cache({"training_cache_dir": "results/training-cache"})
    assert relative.root.is_absolute() and relative.root.parts[-2:] == ("results", "training-cache")


def test_usage_counts_trained_and_reused_models(tmp_path):
    images, masks = toy()
    cache = TrainingCache(tmp_path / "counted")
    train_segmenter(node(), images, masks, config(), cache=cache)
    train_segmenter(node(), images, masks, config(), cache=cache)
    train_segmenter(node(), images, masks, config(epochs=1), cache=cache)
    assert cache_module.usage()[str(tmp_path / "counted")] == {"reused": 1, "trained": 2}


def test_the_key_records_the_cpu_kernels_and_nothing_else_of_the_cpu(monkeypatch):
    """Another instruction set rounds differently (lib.device.cpu_kernels), so it is another
    training; the CPU's model name alone is not."""
    images, masks = toy()
    model = node()
    cpu = torch.device("cpu")
    kernels = {"capability": "AVX2", "model": "AMD EPYC", "flags": ["avx", "avx2", "fma"]}
    monkeypatch.setattr(cache_module, "cpu_kernels", lambda: kernels)
    base = training_key(model, images, masks, config(), None, cpu)
    assert base["cpu_kernels"] == {"capability": "AVX2", "flags": ["avx", "avx2", "fma"]}
    monkeypatch.setattr(cache_module, "cpu_kernels", lambda: {**kernels, "model": "AMD EPYC 9B14"})
    assert training_key(model, images, masks, config(), None, cpu) == base
    monkeypatch.setattr(cache_module, "cpu_kernels", lambda: {**kernels, "capability": "AVX512",
                                                              "flags": ["avx", "avx2", "fma", "avx512f"]})
    assert training_key(model, images, masks, config(), None, cpu) != base
    assert training_key(model, images, masks, config(), None, torch.device("cuda"))["cpu_kernels"] is None


def test_the_key_records_the_torchdyn_version(monkeypatch):
    """TorchDyn runs the neural ODE's solve and its adjoint on every training step: another
    version is another training, as another torch or NumPy is."""
    import torchdyn

    images, masks = toy()
    model, cpu = node(), torch.device("cpu")
    base = training_key(model, images, masks, config(), None, cpu)
    monkeypatch.setattr(torchdyn, "__version__", "0.0.0-other", raising=False)
    assert training_key(model, images, masks, config(), None, cpu) != base


def test_masks_are_keyed_by_the_values_training_reads(tmp_path):
    """Training reads the masks' values as float targets (soft or 0/2 masks are accepted): masks
    that are equal only once cast to bool are another training, not a reuse."""
    images, masks = toy()
    cache = TrainingCache(tmp_path)
    train_segmenter(node(), images, masks, config(), cache=cache)
    soft = masks.astype(np.float32) * 0.5  # True -> 0.5: the same bool mask, another BCE target
    assert not train_segmenter(node(), images, soft, config(), cache=cache).from_cache


def _flip_a_history_loss(entry, loss: float):
    """Flip the last byte of a stored epoch loss (a pickled big-endian double in data.pkl)."""
    import struct
    import zipfile

    data = bytearray(entry.read_bytes())
    with zipfile.ZipFile(entry) as archive:
        member = next(info for info in archive.infolist() if info.filename.endswith("data.pkl"))
    offset = member.header_offset
    name_length, extra_length = (int.from_bytes(data[offset + i:offset + i + 2], "little") for i in (26, 28))
    start = offset + 30 + name_length + extra_length
    position = bytes(data[start:start + member.compress_size]).find(struct.pack(">d", loss))
    assert position >= 0
    data[start + position + 7] ^= 0x01
    entry.write_bytes(bytes(data))


def test_a_damaged_history_is_retrained_not_reported(tmp_path):
    """The chapter reports a reused model's history (losses, best epoch): a flipped byte there
    must not load silently any more than one in the weights."""
    images, masks = toy()
    cache = TrainingCache(tmp_path)
    first = train_segmenter(node(), images, masks, config(), cache=cache)
    (entry,) = tmp_path.glob("*.pt")
    _flip_a_history_loss(entry, first.epoch_losses[0])
    with pytest.warns(UserWarning, match="unusable training-cache entry"):
        again = train_segmenter(node(), images, masks, config(), cache=cache)
    assert not again.from_cache and again.epoch_losses == first.epoch_losses


def test_a_cache_that_cannot_be_written_warns_and_the_run_goes_on(tmp_path, monkeypatch):
    images, masks = toy()
    cache = TrainingCache(tmp_path / "cache")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache_module, "save_checkpoint", disk_full)
    trained, plain = node(), node()
    with pytest.warns(UserWarning, match=r"training_cache_dir: .*\.pt: the trained model was not cached "
                                         r"\(No space left on device\); the run goes on without it"):
        history = train_segmenter(trained, images, masks, config(), cache=cache)
    assert history.epoch_losses == train_segmenter(plain, images, masks, config()).epoch_losses
    assert not list((tmp_path / "cache").glob("*.pt"))
