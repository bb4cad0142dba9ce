"""The training loop, losses, prediction, checkpoints and device handling of study A."""

import math
import os
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lib.train as train_module
from lib.device import resolve_device, seed_everything
from lib.models import NeuralODESegmenter, SegmentationUNet
from lib.train import (
    TrainConfig,
    load_checkpoint,
    predict_logits,
    predict_masks,
    prior_logit,
    save_checkpoint,
    segmentation_loss,
    soft_dice_loss,
    train_segmenter,
)

MODALITIES = ("flair", "t1ce")


def separable_toy(n: int = 16, size: int = 16, seed: int = 0):
    """Target = channel 0 > 0: a readout weight on channel 0 alone separates it."""
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((n, len(MODALITIES), size, size)).astype(np.float32)
    return images, images[:, 0] > 0


def tiny_node(**kwargs) -> NeuralODESegmenter:
    torch.manual_seed(0)
    return NeuralODESegmenter(MODALITIES, base_width=4, depth=2, train_steps=2, **kwargs)


def quiet(**kwargs) -> TrainConfig:
    settings = dict(epochs=3, batch_size=8, lr=1e-2, device="cpu", progress=False)
    settings.update(kwargs)
    return TrainConfig(**settings)


# --- losses ------------------------------------------------------------------------------------


def test_soft_dice_known_values():
    target = torch.tensor([1.0, 1.0, 0.0, 0.0]).reshape(1, 1, 2, 2)
    # perfect and perfectly wrong confident predictions
    assert soft_dice_loss(40 * (2 * target - 1), target, smooth=0).item() == pytest.approx(0, abs=1e-6)
    assert soft_dice_loss(-40 * (2 * target - 1), target, smooth=0).item() == pytest.approx(1, abs=1e-6)
    # logits 0 -> p = 1/2 everywhere: 1 - (2 * 1 + s) / (2 + 2 + s)
    assert soft_dice_loss(torch.zeros_like(target), target, smooth=1).item() == pytest.approx(1 - 3 / 5)
    with pytest.raises(ValueError, match="shape"):
        soft_dice_loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 2))


def test_segmentation_loss_kinds():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 1, 4, 4, generator=generator)
    target = (torch.randn(2, 1, 4, 4, generator=generator) > 0).float()
    bce = F.binary_cross_entropy_with_logits(logits, target)
    # BCE on logits = BCE on the sigmoid output (the paper's loss), computed stably
    paper_bce = F.binary_cross_entropy(torch.sigmoid(logits), target)
    torch.testing.assert_close(segmentation_loss(logits, target, "bce"), paper_bce)
    torch.testing.assert_close(segmentation_loss(logits, target, "bce+dice"), bce + soft_dice_loss(logits, target))
    with pytest.raises(ValueError, match="loss"):
        segmentation_loss(logits, target, "focal")
    with pytest.raises(ValueError, match="loss"):
        TrainConfig(epochs=1, loss="dice")


def test_prior_logit_is_the_clipped_log_odds():
    masks = np.zeros((2, 4, 4), dtype=bool)
    masks[0, :2] = True  # 8 of 32 pixels
    assert prior_logit(masks) == pytest.approx(math.log(0.25 / 0.75))
    assert prior_logit(np.zeros((1, 4, 4), dtype=bool)) == pytest.approx(math.log(1e-4 / (1 - 1e-4)))
    assert prior_logit(np.ones((1, 4, 4), dtype=bool)) == pytest.approx(-math.log(1e-4 / (1 - 1e-4)))


# --- training ----------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", ["bce", "bce+dice"])
def test_neural_ode_training_reduces_the_loss_on_a_separable_toy(loss):
    images, masks = separable_toy()
    model = tiny_node(prior_logit=prior_logit(masks))
    before = segmentation_loss(
        torch.from_numpy(predict_logits(model, images)).unsqueeze(1), torch.from_numpy(masks).float().unsqueeze(1), loss
    ).item()
    # the pilot's recipe: prior-log-odds bias and a 10x learning rate on the readout
    history = train_segmenter(model, images, masks, quiet(epochs=4, batch_size=4, loss=loss, readout_lr_multiplier=10))
    assert len(history.epoch_losses) == 4 and len(history.batch_losses) == 4 * 4
    assert history.epoch_losses[-1] < 0.7 * history.epoch_losses[0]
    assert history.epoch_losses[-1] < 0.7 * before
    assert history.seconds > 0 and history.slices_per_second == pytest.approx(4 * 16 / history.seconds)
    accuracy = (predict_masks(model, images) == masks).mean()
    assert accuracy > 0.85
    weight, _ = model.readout_weights()
    assert weight[0] > abs(weight[1])  # it learned to read channel 0


def test_unet_baseline_trains_with_the_same_loop():
    images, masks = separable_toy()
    torch.manual_seed(0)
    model = SegmentationUNet(MODALITIES, base_width=4, depth=2, prior_logit=prior_logit(masks))
    history = train_segmenter(model, images, masks, quiet(epochs=5, batch_size=4))
    assert history.epoch_losses[-1] < 0.8 * history.epoch_losses[0]


def test_training_on_an_image_selection_equals_training_on_its_copy(tmp_path):
    """A fold's images gathered batch by batch (no copy) train exactly as the copied array does,
    and hit the same training-cache entry."""
    from lib.data.slices import ImageSelection
    from lib.training_cache import TrainingCache

    images, masks = separable_toy(n=24)
    m = images.shape[1]
    bigger = np.concatenate([-images, images], axis=1)[::-1].copy()  # rows reversed, 2m channels
    rows, channels = np.arange(23, -1, -1), list(range(m, 2 * m))
    selection = ImageSelection(bigger, rows, channels)
    np.testing.assert_array_equal(np.asarray(selection), images)
    results = []
    for source in (images, selection):
        torch.manual_seed(0)
        model = SegmentationUNet(MODALITIES, base_width=4, depth=2)
        history = train_segmenter(model, source, masks, quiet(epochs=2, batch_size=5),
                                  cache=TrainingCache(tmp_path / "cache"))
        results.append((history, model.state_dict()))
    (copied, copied_weights), (gathered, gathered_weights) = results
    assert not copied.from_cache and gathered.from_cache  # same key: same bytes, same digest
    assert all(torch.equal(copied_weights[k], gathered_weights[k]) for k in copied_weights)
    torch.manual_seed(0)
    model = SegmentationUNet(MODALITIES, base_width=4, depth=2)
    assert train_segmenter(model, selection, masks, quiet(epochs=2, batch_size=5)).batch_losses == copied.batch_losses


def test_training_is_deterministic_for_a_seed_and_the_seed_matters():
    images, masks = separable_toy()
    runs = {}
    for name, seed in [("a", 3), ("b", 3), ("c", 4)]:
        model = tiny_node()
        history = train_segmenter(model, images, masks, quiet(epochs=2, seed=seed))
        runs[name] = (history.batch_losses, model.readout.weight.detach().clone())
    assert runs["a"][0] == runs["b"][0]
    assert torch.equal(runs["a"][1], runs["b"][1])
    assert runs["a"][0] != runs["c"][0]  # another seed, another batch order


def test_readout_learning_rate_multiplier_makes_a_second_param_group():
    model = tiny_node()
    config = quiet(readout_lr_multiplier=10.0)
    groups = train_module._parameter_groups(model, config)
    assert [group["lr"] for group in groups] == [1e-2, 1e-1]
    assert {id(p) for p in groups[1]["params"]} == {id(model.readout.weight), id(model.readout.bias)}
    total = sum(p.numel() for group in groups for p in group["params"])
    assert total == sum(p.numel() for p in model.parameters())
    assert len(train_module._parameter_groups(model, quiet())) == 1


def test_training_rejects_mismatched_arrays():
    images, masks = separable_toy()
    with pytest.raises(ValueError, match="channels"):
        train_segmenter(tiny_node(), images[:, :1], masks, quiet())
    with pytest.raises(ValueError, match="masks"):
        train_segmenter(tiny_node(), images, masks[:-1], quiet())


def test_non_finite_loss_stops_training():
    images, masks = separable_toy(n=4)
    images[0, 0, 0, 0] = np.nan
    with pytest.raises(FloatingPointError, match="epoch 1"):
        train_segmenter(tiny_node(), images, masks, quiet(epochs=1, batch_size=4))


def test_num_threads_is_restored_after_training_with_progress_bars():
    images, masks = separable_toy(n=4)
    threads = torch.get_num_threads()
    train_segmenter(tiny_node(), images, masks, quiet(epochs=1, num_threads=1, progress=True))
    assert torch.get_num_threads() == threads


# --- prediction --------------------------------------------------------------------------------


def test_predict_logits_matches_forward_and_ignores_batch_size():
    images, _ = separable_toy(n=5)
    model = tiny_node(zero_init_field=False)
    logits = predict_logits(model, images, batch_size=2)
    assert logits.shape == (5, 16, 16) and logits.dtype == np.float32
    with torch.no_grad():
        direct = model(torch.from_numpy(images))[:, 0].numpy()
    np.testing.assert_allclose(logits, direct, atol=1e-5)
    np.testing.assert_allclose(predict_logits(model, images, batch_size=32), logits, atol=1e-5)
    assert model.training  # the mode is restored


def test_predict_masks_thresholds_the_sigmoid():
    images, _ = separable_toy(n=3)
    model = tiny_node(zero_init_field=False)
    logits = predict_logits(model, images)
    masks = predict_masks(model, images, threshold=0.3)
    assert masks.dtype == bool
    np.testing.assert_array_equal(masks, logits > math.log(0.3 / 0.7))


class _ConstantLogit(torch.nn.Module):
    def __init__(self, value: float):
        super().__init__()
        self.value = value
        self.unused = torch.nn.Parameter(torch.zeros(()))  # a device and a dtype to infer

    def forward(self, x):
        return torch.full((x.shape[0], 1, *x.shape[2:]), self.value)


@pytest.mark.parametrize("value, expected", [(-1000.0, False), (1000.0, True)])
def test_predict_masks_of_huge_logits_is_silent_and_right(value, expected):
    images = np.zeros((2, 4, 8, 8), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # exp(1000) overflowing must not warn
        masks = predict_masks(_ConstantLogit(value), images)
    assert masks.shape == (2, 8, 8) and (masks == expected).all()


# --- checkpoints -------------------------------------------------------------------------------


@pytest.mark.parametrize("factory", [None, NeuralODESegmenter])
def test_checkpoint_round_trip_rebuilds_the_same_model(tmp_path, factory):
    images, _ = separable_toy(n=2)
    model = tiny_node(zero_init_field=False, prior_logit=-1.5, sensitivity="autograd")
    path = save_checkpoint(model, tmp_path / "deep" / "node.pt", extra={"epochs": 3, "modalities": list(MODALITIES)})
    loaded, extra = load_checkpoint(path, factory)
    assert isinstance(loaded, NeuralODESegmenter)
    assert extra == {"epochs": 3, "modalities": list(MODALITIES)}
    assert loaded.modalities == MODALITIES and loaded.train_steps == 2 and loaded.sensitivity == "autograd"
    np.testing.assert_array_equal(predict_logits(loaded, images), predict_logits(model, images))


def test_checkpoint_of_the_unet_baseline(tmp_path):
    model = SegmentationUNet(MODALITIES, base_width=4, depth=2)
    loaded, _ = load_checkpoint(save_checkpoint(model, tmp_path / "unet.pt"))
    assert isinstance(loaded, SegmentationUNet)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_a_checkpoint_whose_weights_changed_is_refused(tmp_path):
    path = save_checkpoint(SegmentationUNet(MODALITIES, base_width=4, depth=2), tmp_path / "unet.pt")
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["unet.output.bias"] += 1e-3  # what a damaged byte does, without a zip CRC check
    torch.save(payload, path)
    with pytest.raises(ValueError, match=r"unet.pt: the weights do not match the digest stored with them"):
        load_checkpoint(path)
    del payload["state_digest"]  # a file from before the digest: read as it is
    torch.save(payload, path)
    assert isinstance(load_checkpoint(path)[0], SegmentationUNet)


def test_an_unreadable_or_misfitting_checkpoint_is_refused_in_one_line_naming_the_file(tmp_path):
    path = tmp_path / "node.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"node.pt: not a readable checkpoint \(") as refused:
        load_checkpoint(path)
    assert "\n" not in str(refused.value)
    save_checkpoint(SegmentationUNet(MODALITIES, base_width=4, depth=2), path)
    payload = torch.load(path, weights_only=True)
    payload["model_kwargs"]["depth"] = 3  # a file whose weights belong to another architecture
    torch.save(payload, path)
    with pytest.raises(ValueError, match=r"node.pt: its weights do not fit SegmentationUNet: 10 weights missing, "
                                         r"e.g. 'unet.decoder.1.conv.0.bias'") as refused:
        load_checkpoint(path)
    assert "\n" not in str(refused.value)
    payload["model_kwargs"].update(depth=2, base_width=8)  # same keys, other shapes
    torch.save(payload, path)
    with pytest.raises(ValueError, match=r"node.pt: its weights do not fit SegmentationUNet: weights of other shapes"):
        load_checkpoint(path)


def test_interrupted_save_leaves_the_old_file_and_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "node.pt"
    save_checkpoint(tiny_node(), path, extra={"version": 1})
    original = path.read_bytes()

    def broken_save(obj, target, *args, **kwargs):
        with open(target, "wb") as handle:
            handle.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tiny_node(), path, extra={"version": 2})
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == ["node.pt"]
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tiny_node(), tmp_path / "new.pt")
    assert os.listdir(tmp_path) == ["node.pt"]


# --- devices and seeds -------------------------------------------------------------------------


def test_resolve_device(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="one of"):
        resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda:1")


def test_seed_everything_repeats_random_draws():
    seed_everything(7)
    first = (np.random.rand(), torch.rand(3))
    seed_everything(7)
    second = (np.random.rand(), torch.rand(3))
    assert first[0] == second[0] and torch.equal(first[1], second[1])


# --- early stopping -------------------------------------------------------------------------


def _unet(masks):
    torch.manual_seed(0)
    return SegmentationUNet(MODALITIES, base_width=4, depth=2, prior_logit=prior_logit(masks))


def test_early_stopping_keeps_the_best_epoch_and_stops_after_patience():
    """Validation labels are the opposite of the training labels, so learning soon makes the
    validation Dice worse: training stops `patience` epochs after the best one, and the kept
    weights are exactly those of a run trained for the best epoch's number of epochs."""
    images, masks = separable_toy()
    model = _unet(masks)
    history = train_segmenter(model, images, masks, quiet(epochs=30, batch_size=4, patience=3),
                              validation=(images, ~masks))
    assert history.stopped_early and len(history.epoch_losses) == history.best_epoch + 3 < 30
    assert len(history.val_dice) == len(history.epoch_losses)
    assert history.val_dice[history.best_epoch - 1] == max(history.val_dice)
    assert history.val_dice[-1] < history.val_dice[history.best_epoch - 1]
    replay = _unet(masks)
    train_segmenter(replay, images, masks, quiet(epochs=history.best_epoch, batch_size=4))
    for name, value in replay.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name


def test_validation_is_only_recorded_without_patience_and_changes_nothing():
    images, masks = separable_toy()
    plain, watched = _unet(masks), _unet(masks)
    h_plain = train_segmenter(plain, images, masks, quiet(epochs=4, batch_size=4))
    h_watched = train_segmenter(watched, images, masks, quiet(epochs=4, batch_size=4), validation=(images, masks))
    assert h_watched.batch_losses == h_plain.batch_losses and not h_watched.stopped_early
    assert len(h_watched.val_dice) == 4 and h_plain.val_dice == [] and h_plain.best_epoch is None
    assert h_watched.val_dice[-1] > h_watched.val_dice[0]  # the same labels: it learns them
    for name, value in plain.state_dict().items():
        assert torch.equal(watched.state_dict()[name], value), name


def test_a_run_that_never_stops_early_says_so_and_without_patience_no_epoch_is_called_kept(monkeypatch):
    images, masks = separable_toy()
    dice = iter([0.5, 0.4, 0.3])  # scripted validation: the best epoch is the first
    monkeypatch.setattr(train_module, "_pooled_dice", lambda *args: next(dice))
    history = train_segmenter(_unet(masks), images, masks, quiet(epochs=3, batch_size=4, patience=2),
                              validation=(images, masks))
    assert len(history.epoch_losses) == 3 and history.best_epoch == 1
    assert not history.stopped_early  # patience ran out on the last epoch: every epoch was trained anyway
    dice = iter([0.1, 0.5, 0.3, 0.2])
    monkeypatch.setattr(train_module, "_pooled_dice", lambda *args: next(dice))
    history = train_segmenter(_unet(masks), images, masks, quiet(epochs=4, batch_size=4), validation=(images, masks))
    assert history.val_dice == [0.1, 0.5, 0.3, 0.2] and history.best_epoch is None  # the last epoch's weights


def test_throughput_counts_training_time_not_validation_time(monkeypatch):
    """slices_per_second is trained slices over the time spent training; validation's time is
    kept apart (validation_seconds) and is part of seconds, the whole run's wall time."""
    clock = {"now": 0.0}

    def perf_counter():  # a clock that advances 1 s per reading, and 100 s per validation
        clock["now"] += 1.0
        return clock["now"]

    def slow_validation(*args):
        clock["now"] += 100.0
        return 0.5

    monkeypatch.setattr(train_module, "time", type("FakeTime", (), {"perf_counter": staticmethod(perf_counter)}))
    monkeypatch.setattr(train_module, "_pooled_dice", slow_validation)
    images, masks = separable_toy()
    history = train_segmenter(_unet(masks), images, masks, quiet(epochs=3, batch_size=4), validation=(images, masks))
    assert history.validation_seconds >= 3 * 100
    assert history.seconds > history.validation_seconds
    training_seconds = history.seconds - history.validation_seconds
    assert training_seconds < 100  # no validation in it
    assert history.slices_per_second == pytest.approx(3 * 16 / training_seconds)
    plain = train_segmenter(_unet(masks), images, masks, quiet(epochs=3, batch_size=4))
    assert plain.validation_seconds == 0.0
    assert plain.slices_per_second == pytest.approx(3 * 16 / plain.seconds)


def test_early_stopping_on_slices_without_target_is_refused():
    images, masks = separable_toy()
    with pytest.raises(ValueError, match="validation slices with some target; these have none"):
        train_segmenter(_unet(masks), images, masks, quiet(epochs=2, batch_size=4, patience=1),
                        validation=(images, np.zeros_like(masks)))


def test_early_stopping_needs_validation_and_a_positive_patience():
    images, masks = separable_toy()
    with pytest.raises(ValueError, match="validation"):
        train_segmenter(_unet(masks), images, masks, quiet(patience=2))
    with pytest.raises(ValueError, match="patience"):
        quiet(patience=0)


# --- learning-rate schedule --------------------------------------------------------------------


def test_learning_rate_factor_known_values():
    assert [train_module.learning_rate_factor("constant", s, 4) for s in range(4)] == [1.0] * 4
    cosine = [train_module.learning_rate_factor("cosine", s, 4) for s in range(4)]
    assert cosine == pytest.approx([1.0, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2])
    assert all(a > b for a, b in zip(cosine, cosine[1:]))
    with pytest.raises(ValueError, match="outside"):
        train_module.learning_rate_factor("cosine", 4, 4)
    with pytest.raises(ValueError, match="lr_schedule"):
        train_module.learning_rate_factor("linear", 0, 4)
    with pytest.raises(ValueError, match="lr_schedule"):
        quiet(lr_schedule="step")


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_training_uses_the_scheduled_rate_in_every_group_at_every_step(monkeypatch, schedule):
    """The rate Adam applies at each step is the group's initial rate times the schedule's factor
    (the readout's 10x multiplier is kept), over epochs x batches steps."""
    used = []

    class RecordingAdam(torch.optim.Adam):
        def step(self, *args, **kwargs):
            used.append([group["lr"] for group in self.param_groups])
            return super().step(*args, **kwargs)

    monkeypatch.setattr(train_module.torch.optim, "Adam", RecordingAdam)
    images, masks = separable_toy(n=12)
    config = quiet(epochs=2, batch_size=8, readout_lr_multiplier=10.0, lr_schedule=schedule)
    train_segmenter(tiny_node(), images, masks, config)
    total = 2 * 2  # 2 epochs of ceil(12 / 8) batches
    assert len(used) == total
    for step, (body, head) in enumerate(used):
        factor = train_module.learning_rate_factor(schedule, step, total)
        assert body == pytest.approx(1e-2 * factor) and head == pytest.approx(1e-1 * factor)
