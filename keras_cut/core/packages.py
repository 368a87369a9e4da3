"""Which package a serialized class or function comes from, read from its config: the one
place that decides what is part of Keras (`keras`, `keras.…`; not `keras_hub…`) and what
loading needs (`keras_hub` of `keras_hub.src.models…` or `keras_hub>BertBackbone`)."""

from __future__ import annotations


def is_keras_module(module: str) -> bool:
    """Keras' own package: `keras` and `keras.…`, not `keras_hub…` or `keras_cv…`."""
    return module == "keras" or module.startswith("keras.")


def needed_package(module: str | None) -> str | None:
    """The package a class's module belongs to (`keras_hub`), None for a script's own."""
    package = module.split(".")[0] if module else None
    if not package or package.startswith("__"):  # defined in a script (`__main__`)
        return None
    return package


def registered_package(registered_name: str | None) -> str | None:
    """`keras_hub` of a registered name `keras_hub>BertBackbone`."""
    if registered_name and ">" in registered_name:
        return needed_package(registered_name.split(">", 1)[0])
    return None


def package_of(module: str | None, registered_name: str | None) -> str | None:
    """The package loading a class needs: from its module, else its registered name."""
    return needed_package(module) or registered_package(registered_name)
