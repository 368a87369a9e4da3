"""The benchmark's models, built once into the cache folder with weights=None (no downloads)."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def build(cache: Path, tiny: bool = False) -> dict[str, Path]:
    """{name: path}; existing files are reused. `tiny` builds small stand-ins (smoke test)."""
    cache.mkdir(parents=True, exist_ok=True)
    wanted = {
        "resnet50": cache / ("resnet50_tiny.keras" if tiny else "resnet50.keras"),
        "nested_mobilenet": cache / ("nested_mobilenet_tiny.keras" if tiny
                                     else "nested_mobilenet.keras"),
        "large": cache / ("large_tiny.keras" if tiny else "large.keras"),
        # the same architecture with other random weights: every array differs (diff's worst case)
        "resnet50_retrained": cache / ("resnet50_retrained_tiny.keras" if tiny
                                       else "resnet50_retrained.keras"),
    }
    missing = {name: path for name, path in wanted.items() if not path.exists()}
    if not missing:
        return wanted
    import keras

    for name, path in missing.items():
        keras.utils.set_random_seed(1 if name == "resnet50_retrained" else 0)
        if name.startswith("resnet50"):
            model = (keras.applications.ResNet50(input_shape=(64, 64, 3), weights=None,
                                                 classes=10) if tiny else
                     keras.applications.ResNet50(weights=None))
        elif name == "nested_mobilenet":
            size = 96 if tiny else 224
            backbone = keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=0.35,
                                                      weights=None, include_top=False)
            backbone.name = "backbone"
            inp = keras.Input((size, size, 3), name="image")
            x = keras.layers.GlobalAveragePooling2D(name="pool")(backbone(inp))
            model = keras.Model(inp, keras.layers.Dense(10, name="head")(x))
        else:
            # ~1 GB of float32 weights: 16 Dense layers of 4096x4096 (tiny: 256 wide).
            width = 256 if tiny else 4096
            inp = keras.Input((width,), name="features")
            x = inp
            for i in range(16):
                x = keras.layers.Dense(width, activation="relu", name=f"dense_{i}")(x)
            model = keras.Model(inp, x, name="large")
        tmp = path.with_suffix(".partial.keras")
        model.save(tmp)
        tmp.rename(path)
        keras.backend.clear_session()
    return wanted
