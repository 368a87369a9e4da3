"""Every keras.applications family, built small with weights=None: seeded prefix, head,
segment and two-output cuts equal the parent's activations (an eager walk over Keras' own
graph), with every kept array bit-identical. The full sweep is `slow` (`make test-slow`);
the default run takes a few families."""

from __future__ import annotations

import pytest

from tests.cut.test_cut import check_cut

pytestmark = pytest.mark.heavy  # real architectures (make test-fast skips them)

# (constructor, input size): the smallest member of each family, at a size it accepts.
FAMILIES = {
    "ConvNeXtTiny": 32, "DenseNet121": 32, "EfficientNetB0": 32, "EfficientNetV2B0": 32,
    "InceptionResNetV2": 75, "InceptionV3": 75, "MobileNet": 32, "MobileNetV3Small": 32,
    "NASNetMobile": 32, "ResNet50V2": 32, "ResNet101": 32, "VGG16": 32, "Xception": 71,
}
DEFAULT = {"EfficientNetB0", "DenseNet121", "MobileNetV3Small"}


def _cached(keras, cache, name, size):
    path = cache / f"{name}_{size}.keras"
    if not path.exists():
        keras.utils.set_random_seed(11)
        model = getattr(keras.applications, name)(input_shape=(size, size, 3), weights=None,
                                                  classes=5)
        tmp = path.with_suffix(".partial.keras")
        model.save(tmp)
        tmp.rename(path)
    return path


@pytest.fixture(scope="session")
def app_cache(tmp_path_factory):
    import keras

    root = tmp_path_factory.getbasetemp().parent / f"keras_cut_apps_{keras.__version__}"
    root.mkdir(exist_ok=True)
    return root


def _points(keras, path):
    """Cut points spread over the graph: by position in Keras' own layer list."""
    model = keras.saving.load_model(path, compile=False)
    names = [layer.name for layer in model.layers
             if not isinstance(layer, keras.layers.InputLayer)]
    return [names[int(len(names) * f)] for f in (0.25, 0.4, 0.6, 0.75)]


def _params(name):
    marks = [] if name in DEFAULT else [pytest.mark.slow]
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", [_params(n) for n in sorted(FAMILIES)])
def test_application_family(name, app_cache, tmp_path, keras):
    path = _cached(keras, app_cache, name, FAMILIES[name])
    a, b, c, d = _points(keras, path)
    check_cut(keras, path, tmp_path / "prefix.keras", [b], [])
    check_cut(keras, path, tmp_path / "head.keras", [], [c])
    check_cut(keras, path, tmp_path / "segment.keras", [d], [a])
    check_cut(keras, path, tmp_path / "two.keras", [d, a], [])
