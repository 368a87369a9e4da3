"""OpenVINO IR artifacts (`.xml` with its `.bin`), run by OpenVINO Runtime.

OpenVINO's converter sends usage telemetry (Google Analytics, from a forked process) when it is
imported and when it converts, unless the user opted out; on a machine without network that
process can hold the program's exit for minutes. keras-cut never lets it: OpenVINO falls back to
its own no-op stub when its `openvino_telemetry` package cannot be imported, and every import
of OpenVINO in keras-cut goes through `import_openvino`, which makes it so."""

from __future__ import annotations

import sys
from typing import Any


def import_openvino() -> Any:
    """`openvino`, imported with its telemetry sender turned off (ImportError when OpenVINO is
    not installed)."""
    sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
    sys.modules.setdefault("openvino_telemetry.backend", None)  # type: ignore[arg-type]
    import openvino

    return openvino
