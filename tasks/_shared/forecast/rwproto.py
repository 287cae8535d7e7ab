"""The runwarden stdout line protocol, for task scripts written in Python.

Each call prints one JSON object after the exact prefix `@@runwarden ` and flushes, so the worker
sees it at once and forwards it to MLflow. Everything else a script prints is plain log. Non-finite
metric values travel as the strings "NaN", "Infinity" and "-Infinity", which the worker accepts.
`run_main` turns an uncaught exception into a one-line reason on stderr and exit code 1.
"""

import json
import math
import sys
import traceback

PREFIX = "@@runwarden "


def emit(message: dict) -> None:
    sys.stdout.write(PREFIX + json.dumps(message, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _number(value: float) -> float | str:
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def metric(key: str, value: float, step: int = 0) -> None:
    emit({"metric": key, "value": _number(value), "step": int(step)})


def param(key: str, value) -> None:
    if not isinstance(value, (str, int, float, bool)):
        value = str(value)
    emit({"param": key, "value": value})


def params(values: dict) -> None:
    for key, value in values.items():
        param(key, value)


def tag(key: str, value) -> None:
    emit({"tag": key, "value": str(value)})


def progress(fraction: float, message: str | None = None) -> None:
    body = {"progress": min(1.0, max(0.0, float(fraction)))}
    if message:
        body["message"] = message
    emit(body)


def artifact(path: str, dest: str | None = None) -> None:
    """Ask the worker to upload `path` (file or folder, relative to the workspace) under `dest`."""
    body = {"artifact": path}
    if dest:
        body["dest"] = dest
    emit(body)


def run_main(main) -> None:
    """Call `main()`; on an exception print the traceback and a final reason to stderr, exit 1."""
    try:
        main()
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - any failure must become a non-zero exit
        traceback.print_exc()
        print(f"task failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
