"""Tests of what every scheme shares: one shape, one result, the same checked training options."""

import dataclasses

import numpy as np
import pytest

from keras_kd import keras, schemes
from keras_kd import losses as kd_losses
from keras_kd._compat import tf
from keras_kd.schemes import OPTIONS, _training


def _tiny():
    return keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
    )


_SHARED_ADAM = keras.optimizers.Adam()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"train": "digits"}, "train must be a tf.data.Dataset of .* or an .* tuple of arrays"),
        (
            {"train": (np.zeros((4, 8, 8, 1)), np.zeros(3))},
            r"equal, non-zero length, received: train=<arrays of lengths \[4, 3\]>",
        ),
        ({"train": (np.zeros((0, 8, 8, 1)), np.zeros(0))}, "non-zero length"),
        ({"train": tf.data.Dataset.from_tensor_slices(np.zeros((4, 2)))}, "element_spec"),
        ({"validation_data": (np.zeros((2, 8, 8, 1)),)}, "validation_data must be"),
        ({"epochs": 0}, r"epochs must be an integer >= 1, received: epochs=0"),
        ({"batch_size": 2.5}, "batch_size must be an integer >= 1"),
        ({"optimizer": "adamw_typo"}, "optimizer is not a known optimizer name"),
        ({"optimizer": lambda: "adam"}, "optimizer must return a Keras optimizer"),
        ({"optimizer": lambda: _SHARED_ADAM}, "returned the same instance twice"),
        ({"optimizer": 3}, "optimizer must be a name, a callable"),
        ({"loss": keras.losses.SparseCategoricalCrossentropy()}, "expects probabilities"),
        ({"callbacks": ["early_stopping"]}, "callbacks must be Keras callbacks"),
        ({"verbose": 5}, "verbose must be 0, 1, 2"),
    ],
)
def test_every_scheme_checks_the_common_arguments_before_training(digits, kwargs, message):
    (x, y), _ = digits
    arguments = {"train": (x[:8], y[:8]), **kwargs}
    cohort = [_tiny(), _tiny()]
    before = [m.get_weights() for m in cohort]
    with pytest.raises(ValueError, match=message):
        schemes.mutual_learning(
            cohort,
            epochs=kwargs.get("epochs", 1),
            **{k: v for k, v in arguments.items() if k != "epochs"},
        )
    assert all(
        np.array_equal(a, b) for m, w in zip(cohort, before) for a, b in zip(m.get_weights(), w)
    )


@pytest.mark.parametrize(
    "optimizer", ["adam", lambda: keras.optimizers.Adam(0.01), keras.optimizers.Adam(0.01)]
)
def test_each_model_gets_its_own_optimizer(digits, optimizer):
    (x, y), _ = digits
    run = _training.settings("scheme", (x, y), optimizer=optimizer)
    first, second = run.new_optimizer(), run.new_optimizer()
    assert first is not second and first is not optimizer
    assert type(first) is keras.optimizers.Adam
    if not isinstance(optimizer, str):
        assert float(first.learning_rate) == pytest.approx(0.01)


@pytest.mark.parametrize("labels", ["sparse", "one_hot", "dataset"])
def test_accuracy_matches_keras_evaluate(digits, labels):
    (x, y), (xt, yt) = digits
    model = _tiny()
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    expected = model.evaluate(xt, yt, verbose=0)[1]
    data = (xt, yt)
    if labels == "one_hot":
        data = (xt, keras.utils.to_categorical(yt, 10))
    elif labels == "dataset":
        data = tf.data.Dataset.from_tensor_slices((xt, yt)).batch(50)
    assert _training.accuracy(model, data, batch_size=64) == pytest.approx(expected, abs=1e-6)


def _call_each_scheme(teacher, train, **options):
    """Calls every scheme with its models made here, ``train`` and the same ``options``."""
    from examples.models import make_student

    def small():
        return make_student((8, 8, 1), 10, width=16)

    flows = [(("t_pool1", "t_block2"), ("s_pool1", "s_block2"))]
    return {
        "born_again": lambda: schemes.born_again(teacher, small, train, generations=1, **options),
        "teacher_assistant": lambda: schemes.teacher_assistant(
            teacher, [small()], small(), train, **options
        ),
        "label_refinery": lambda: schemes.label_refinery(
            small, train, train, max_rounds=1, **options
        ),
        "mutual_learning": lambda: schemes.mutual_learning([small(), small()], train, **options),
        "fsp_two_stage": lambda: schemes.fsp_two_stage(
            teacher, small(), train, flows=flows, kd=True, **options
        ),
        "self_compress": lambda: schemes.self_compress(
            teacher, keras.models.clone_model, train, **options
        ),
    }


_SCHEMES = [
    "born_again",
    "teacher_assistant",
    "label_refinery",
    "mutual_learning",
    "fsp_two_stage",
    "self_compress",
]


@pytest.mark.parametrize("name", _SCHEMES)
def test_every_scheme_has_one_shape_models_then_data_then_keyword_options(name):
    import inspect

    parameters = list(inspect.signature(getattr(schemes, name)).parameters.values())
    positional = [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert positional[-2:] == ["train", "validation_data"]
    assert parameters[-1].kind is inspect.Parameter.VAR_KEYWORD  # the shared OPTIONS
    assert not set(OPTIONS) & {p.name for p in parameters}  # defined once, in _training


@pytest.mark.parametrize("name", _SCHEMES)
def test_every_scheme_rejects_an_unknown_option_and_a_bad_shared_one_before_training(
    digits, teacher, name
):
    (x, y), _ = digits
    calls = _call_each_scheme(teacher, (x[:8], y[:8]), temprature=2.0)
    with pytest.raises(TypeError, match=f"{name}\\(\\) got an unexpected keyword argument"):
        calls[name]()
    for option, value, message in [
        ("alpha", 1.5, r"alpha must be a number in \[0, 1\], received: alpha=1.5"),
        ("losses", "kd", "losses must be a list of distillation loss layers"),
        ("epochs", 0, "epochs must be an integer >= 1"),
    ]:
        with pytest.raises(ValueError, match=message):
            _call_each_scheme(teacher, (x[:8], y[:8]), **{option: value})[name]()


@pytest.fixture
def distillers_made(monkeypatch):
    """Records every Distiller the schemes make: (losses, alpha) as the Distiller resolved them."""
    made = []

    class Recording(_training.Distiller):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append((self.distillation_losses, self.alpha))

    monkeypatch.setattr(_training, "Distiller", Recording)
    return made


@pytest.mark.parametrize("name", [n for n in _SCHEMES if n != "mutual_learning"])
def test_schemes_distill_with_the_distillers_measured_defaults(
    digits, teacher, distillers_made, name
):
    (x, y), _ = digits
    result = _call_each_scheme(teacher, (x[:64], y[:64]), epochs=1)[name]()
    assert isinstance(result, schemes.SchemeResult)
    assert len(result.models) == len(result.histories) and result.student in result.models
    default_losses, default_alpha = kd_losses.defaults()
    assert distillers_made
    for losses, alpha in distillers_made:
        assert alpha == default_alpha
        assert [loss.get_config() for loss in losses] == [d.get_config() for d in default_losses]


@pytest.mark.parametrize("name", ["born_again", "teacher_assistant", "self_compress"])
def test_given_losses_and_alpha_reach_every_distiller_as_new_copies(
    digits, teacher, distillers_made, name
):
    (x, y), _ = digits
    given = kd_losses.LogitsKD(temperature=2.0)
    _call_each_scheme(teacher, (x[:64], y[:64]), epochs=1, losses=[given], alpha=0.3)[name]()
    layers = [loss for losses, _ in distillers_made for loss in losses]
    assert [alpha for _, alpha in distillers_made] == [0.3] * len(distillers_made)
    assert all(layer.get_config() == given.get_config() for layer in layers)
    assert given not in layers and len({id(layer) for layer in layers}) == len(layers)


def test_a_losses_factory_must_return_new_layers_and_a_given_layer_must_copy(digits):
    (x, y), _ = digits
    shared = [kd_losses.LogitsKD()]
    run = _training.settings("s", (x, y), losses=lambda: [kd_losses.LogitsKD(), kd_losses.DIST()])
    assert [type(loss) for loss in run.new_losses()] == [kd_losses.LogitsKD, kd_losses.DIST]
    with pytest.raises(ValueError, match="losses must return new objects on each call"):
        _training.settings("s", (x, y), losses=lambda: shared)

    class NoConfig(kd_losses.LogitsKD):
        def __init__(self, scale):
            super().__init__()

    with pytest.raises(ValueError, match=r"losses\[0\] 'logits_kd' cannot be copied"):
        _training.settings("s", (x, y), losses=[NoConfig(2)])


def test_scheme_result_reads_its_student_extras_and_the_earlier_names():
    a, b = _tiny(), _tiny()
    result = schemes.SchemeResult([a, b], [{"loss": [1.0]}, {"loss": [0.5]}], {"ensemble": "e"})
    assert result.student is b and result.extras["ensemble"] == result.ensemble == "e"
    assert result.generations == [a, b] and result.assistants == [a]
    assert result.history == {"loss": [0.5]} and result.compressed is b
    best = schemes.SchemeResult([a, b], [{}, {}], {"best_round": 0}, student_index=0)
    assert best.student is a and best.best_model is a
    with pytest.raises(
        AttributeError, match=r"no attribute 'scratch'; its extras are \['ensemble'\]"
    ):
        assert result.scratch is None  # never reached
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.models = []
