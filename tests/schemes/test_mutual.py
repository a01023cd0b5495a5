"""Tests of mutual_learning and MutualLearner: every model learns, and from its peers."""

import numpy as np
import pytest

import keras_kd as kd
from keras_kd import keras, schemes
from keras_kd._compat import tf
from tests.conftest import weights_equal


def _tiny(seed, classes=10):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(classes),
        ]
    )


def test_mutual_learning_trains_every_model_and_reports_each(digits):
    (x, y), (xt, yt) = digits
    cohort = [_tiny(seed) for seed in range(3)]
    before = [m.get_weights() for m in cohort]
    result = schemes.mutual_learning(
        cohort, (x[:256], y[:256]), epochs=1, batch_size=64, validation_data=(xt[:64], yt[:64])
    )
    learner, joint = result.extras["learner"], result.extras["history"]
    assert result.models == cohort and isinstance(learner, schemes.MutualLearner)
    assert all(not weights_equal(m.get_weights(), w) for m, w in zip(cohort, before))
    assert len(result.histories) == 3
    for i, history in enumerate(result.histories):
        # Each model's history is its own part of the joint log, without the model prefix.
        assert set(history) == {
            "loss",
            "hard_loss",
            "mimicry",
            "accuracy",
            "val_hard_loss",
            "val_accuracy",
        }
        for key in ("loss", "hard_loss", "mimicry", "accuracy"):
            assert history[key] == joint[f"model{i}_{key}"] and np.isfinite(history[key][0])
        assert 0.0 <= history["val_accuracy"][0] <= 1.0
    # The reported total is the sum of the per-model losses.
    total = sum(result.history[f"model{i}_loss"][0] for i in range(3))
    assert result.history["loss"][0] == pytest.approx(total, rel=1e-4)


@pytest.mark.parametrize("alpha, peer_matters", [(0.0, True), (1.0, False)])
def test_each_model_update_depends_on_its_peer(digits, alpha, peer_matters):
    """Two copies of a model with different peers step differently, unless only labels count."""
    (x, y), _ = digits
    x, y = x[:64], y[:64]
    updated = []
    for peer_seed in (10, 11):
        model = _tiny(0)
        learner = schemes.MutualLearner([model, _tiny(peer_seed)], alpha=alpha, temperature=2.0)
        learner.compile(optimizer=keras.optimizers.SGD(0.5))
        initial = model.get_weights()
        learner.train_step((tf.constant(x), tf.constant(y)))  # one eager step on the same batch
        assert not weights_equal(model.get_weights(), initial)
        updated.append(model.get_weights())
    assert weights_equal(*updated) is not peer_matters


def _numpy_kl(p_logits, q_logits, t):
    def log_softmax(z):
        z = z / t
        z = z - z.max(-1, keepdims=True)
        return z - np.log(np.exp(z).sum(-1, keepdims=True))

    log_p, log_q = log_softmax(p_logits), log_softmax(q_logits)
    return np.mean(np.sum(np.exp(log_p) * (log_p - log_q), -1)) * t * t


@pytest.mark.parametrize("peer_target", ["each", "mean"])
def test_cohort_losses_match_numpy_reference(peer_target):
    rng = np.random.default_rng(0)
    logits = [rng.normal(size=(8, 5)).astype(np.float32) * 3 for _ in range(3)]
    y = rng.integers(0, 5, size=8)
    learner = schemes.MutualLearner(
        [_tiny(s, classes=5) for s in range(3)], temperature=2.0, peer_target=peer_target
    )
    learner.compile()
    parts = learner.cohort_losses(tf.constant(y), [tf.constant(z) for z in logits])
    for k, (hard, mimicry) in enumerate(parts):
        peers = [z for i, z in enumerate(logits) if i != k]
        if peer_target == "each":
            expected = np.mean([_numpy_kl(p, logits[k], 2.0) for p in peers])
        else:
            mean_probs = np.mean(
                [np.exp(z / 2) / np.exp(z / 2).sum(-1, keepdims=True) for z in peers], axis=0
            )
            expected = _numpy_kl(2.0 * np.log(mean_probs), logits[k], 2.0)
        z = logits[k] - logits[k].max(-1, keepdims=True)
        ce = np.mean(np.log(np.exp(z).sum(-1)) - z[np.arange(8), y])
        assert float(mimicry) == pytest.approx(expected, rel=1e-4)
        assert float(hard) == pytest.approx(ce, rel=1e-4)


def test_mutual_learner_config_and_save_round_trip(tmp_path, digits):
    (x, _), _ = digits
    learner = schemes.MutualLearner(
        [_tiny(0), _tiny(1)], alpha=0.3, temperature=3.0, peer_target="mean"
    )
    config = learner.get_config()
    assert {k: config[k] for k in ("alpha", "temperature", "peer_target")} == {
        "alpha": 0.3,
        "temperature": 3.0,
        "peer_target": "mean",
    }
    learner.save(tmp_path / "learner.keras")
    loaded = keras.models.load_model(tmp_path / "learner.keras")
    assert isinstance(loaded, schemes.MutualLearner) and loaded.peer_target == "mean"
    for a, b in zip(learner(x[:4]), loaded(x[:4])):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)


def test_mutual_learning_rejects_a_bad_cohort_before_training(digits):
    (x, y), _ = digits
    model = _tiny(0)
    cases = [
        ([], "empty cohort"),
        ([model], r"two or more Keras models .* \(1 model\)"),
        ([model, model], "same model object"),
        (
            [model, _tiny(1, classes=7)],
            r"models\[1\] .* outputs shape \(None, 7\) but models\[0\] .* \(None, 10\)",
        ),
    ]
    for models, message in cases:
        with pytest.raises(ValueError, match=message):
            schemes.mutual_learning(models, (x[:8], y[:8]), epochs=1)
    with pytest.raises(ValueError, match="peer_target must be one of"):
        schemes.MutualLearner([model, _tiny(1)], peer_target="best")
    with pytest.raises(ValueError, match="alpha must be"):
        schemes.MutualLearner([model, _tiny(1)], alpha=1.5)
    with pytest.raises(ValueError, match="takes no other metrics"):
        schemes.MutualLearner([model, _tiny(1)]).compile(metrics=["accuracy"])


def test_a_given_logit_loss_is_the_peer_term_and_survives_saving(tmp_path, digits):
    (x, y), _ = digits
    result = schemes.mutual_learning(
        [_tiny(0), _tiny(1)],
        (x[:64], y[:64]),
        epochs=1,
        alpha=0.2,
        losses=[kd.losses.DIST(temperature=2.0, name="peer_dist")],
    )
    learner = result.extras["learner"]
    assert isinstance(learner.mimicry, kd.losses.DIST) and learner.mimicry.name == "peer_dist"
    assert learner.alpha == 0.2 and learner.temperature == 2.0
    logits = [np.asarray(z) for z in learner(x[:8])]
    # The reported mimicry of model 0 is the DIST loss against its peer.
    expected = kd.losses.DIST(temperature=2.0)(logits[1], logits[0])
    _, mimicry = learner.cohort_losses(tf.constant(y[:8]), [tf.constant(z) for z in logits])[0]
    assert float(mimicry) == pytest.approx(float(expected), rel=1e-5)
    learner.save(tmp_path / "learner.keras")
    loaded = keras.models.load_model(tmp_path / "learner.keras")
    assert (
        isinstance(loaded.mimicry, kd.losses.DIST) and loaded.get_config() == learner.get_config()
    )


def test_mutual_learning_uses_its_measured_defaults_and_refuses_other_peer_terms(digits):
    (x, y), _ = digits
    from keras_kd.schemes import mutual

    learner = schemes.MutualLearner([_tiny(0), _tiny(1)])
    assert learner.alpha == mutual.DEFAULT_ALPHA
    assert learner.temperature == mutual.DEFAULT_TEMPERATURE == learner.mimicry.temperature
    model = _tiny(0)
    for losses, message in [
        ([kd.losses.LogitsKD(), kd.losses.DIST()], "losses must hold one logit loss"),
        (
            [kd.losses.AttentionTransfer([("a", "b")])],
            "mimicry must be a keras_kd.losses.LogitLoss",
        ),
        ([kd.losses.DKD()], "mimicry must be a keras_kd.losses.LogitLoss"),
    ]:
        with pytest.raises(ValueError, match=message):
            schemes.mutual_learning([model, _tiny(1)], (x[:8], y[:8]), losses=losses)
    with pytest.raises(ValueError, match="temperature belongs to the mimicry loss"):
        schemes.MutualLearner([model, _tiny(1)], temperature=2.0, mimicry=kd.losses.LogitsKD())
