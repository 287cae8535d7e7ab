"""Run one task template the way the runwarden worker does, without MLflow, and check its output.

For template authors: it copies the template and its shared folders into a fresh workspace,
materialises the default inputs under inputs/, writes config.yml, fills the command placeholders,
runs it in its own process group with the worker's environment variables, and then checks every
`@@runwarden ` line against the protocol, the declared metrics and primary metric, the model folder
and every reported artifact (PNG signatures included). Exit 0 only if everything holds.

    python3 tasks/simulate_worker.py gru-forecast --python /path/to/venv/bin/python -p epochs=3
"""

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import yaml

TASKS = os.path.dirname(os.path.abspath(__file__))
PREFIX = "@@runwarden "
KINDS = {
    "metric": {"metric", "value", "step"},
    "param": {"param", "value"},
    "tag": {"tag", "value"},
    "progress": {"progress", "message"},
    "artifact": {"artifact", "dest"},
}
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules", ".venv")


def coerce(name: str, spec: dict, raw):
    kind = spec["type"]
    if kind == "int":
        value = int(raw)
    elif kind == "float":
        value = float(raw)
    elif kind == "bool":
        value = raw if isinstance(raw, bool) else str(raw).lower() == "true"
    else:
        value = str(raw)
    if kind == "enum" and value not in spec["values"]:
        raise SystemExit(f"params.{name}: {value!r} not in {spec['values']}")
    if kind in ("int", "float") and not (spec.get("min", value) <= value <= spec.get("max", value)):
        raise SystemExit(f"params.{name}: {value} out of [{spec.get('min')}, {spec.get('max')}]")
    return value


def check_line(body: str) -> str | None:
    """None if `body` is a valid protocol message, else why not."""
    try:
        msg = json.loads(body)
    except json.JSONDecodeError:
        return "not JSON"
    kind = next((k for k in KINDS if k in msg), None) if isinstance(msg, dict) else None
    if not kind:
        return "no known kind"
    if set(msg) - KINDS[kind]:
        return f"extra keys {sorted(set(msg) - KINDS[kind])}"
    if kind == "metric":
        ok = isinstance(msg["value"], (int, float)) or msg["value"] in ("NaN", "Infinity", "-Infinity")
        if not ok or not isinstance(msg.get("step", 0), int):
            return "metric value must be a number, step an integer"
    if kind == "tag" and not isinstance(msg["value"], str):
        return "tag value must be a string"
    if kind == "progress" and not (isinstance(msg["progress"], (int, float)) and 0 <= msg["progress"] <= 1):
        return "progress must be within 0..1"
    return None


def png_size(path: str) -> tuple[int, int] | None:
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("template")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--node", default=shutil.which("node") or "node")
    ap.add_argument("-p", "--param", action="append", default=[], help="name=value")
    ap.add_argument("--keep", action="store_true", help="keep the workspace")
    a = ap.parse_args()
    tdir = os.path.join(TASKS, a.template)
    with open(os.path.join(tdir, "task.yaml")) as f:
        t = yaml.safe_load(f)
    given = dict(kv.split("=", 1) for kv in a.param)
    params = {k: coerce(k, s, given.get(k, s.get("default"))) for k, s in t.get("params", {}).items()}

    ws = tempfile.mkdtemp(prefix=f"{a.template}-")
    shutil.copytree(tdir, ws, dirs_exist_ok=True, ignore=IGNORE)
    for shared in t.get("shared", []):
        src = os.path.normpath(os.path.join(tdir, shared))
        shutil.copytree(src, os.path.join(ws, os.path.basename(src)), ignore=IGNORE)
    out_dir = os.path.join(ws, t.get("outputs_dir", "output"))
    for d in (out_dir, os.path.join(ws, "inputs"), os.path.join(ws, "logs")):
        os.makedirs(d, exist_ok=True)
    inputs = {}
    for name, spec in t.get("inputs", {}).items():
        src = os.path.join(TASKS, spec["default"])
        inputs[name] = os.path.join(ws, "inputs", os.path.basename(src))
        shutil.copy(src, inputs[name])
    with open(os.path.join(ws, "config.yml"), "w") as f:
        yaml.safe_dump({"params": params, "inputs": inputs, "output_dir": out_dir}, f)
    subst = {"{python}": a.python, "{node}": a.node, "{workspace}": ws, "{output_dir}": out_dir}
    subst |= {f"{{inputs.{k}}}": v for k, v in inputs.items()} | {
        f"{{params.{k}}}": str(v) for k, v in params.items()
    }
    argv = []
    for part in t["command"]:
        for key, value in subst.items():
            part = part.replace(key, value)
        argv.append(part)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:9",
        "MLFLOW_RUN_ID": "simulated",
        "MLFLOW_EXPERIMENT_ID": "0",
        "RUNWARDEN_OUTPUT_DIR": out_dir,
    }

    print(f"workspace {ws}\n$ {' '.join(argv)}", flush=True)
    started = time.time()
    proc = subprocess.run(
        argv,
        cwd=ws,
        env=env,
        capture_output=True,
        text=True,
        start_new_session=True,
        timeout=t.get("timeout_seconds", 3600),
    )
    runtime = time.time() - started
    problems, metrics, artifacts, n = [], {}, [], 0
    for line in proc.stdout.splitlines():
        if not line.startswith(PREFIX):
            continue
        n += 1
        why = check_line(line[len(PREFIX) :])
        if why:
            problems.append(f"bad protocol line ({why}): {line}")
            continue
        msg = json.loads(line[len(PREFIX) :])
        if "metric" in msg:
            metrics[msg["metric"]] = (msg["value"], msg.get("step", 0))
        if "artifact" in msg:
            artifacts.append(msg["artifact"])
    if proc.returncode != 0:
        problems.append(f"exit code {proc.returncode}; stderr tail:\n{proc.stderr[-2000:]}")
    problems += [f"declared metric {m} never logged" for m in t.get("metrics", []) if m not in metrics]
    model_dir = os.path.join(out_dir, t["model"]["path"]) if t.get("model") else None
    if model_dir and not (os.path.isdir(model_dir) and os.listdir(model_dir)):
        problems.append(f"model folder {model_dir} missing or empty")
    for rel in artifacts:
        path = os.path.join(ws, rel)
        if not os.path.exists(path):
            problems.append(f"artifact {rel} does not exist")
        elif path.endswith(".png") and not png_size(path):
            problems.append(f"artifact {rel} is not a PNG")

    print(f"exit {proc.returncode} in {runtime:.1f}s; {n} protocol lines")
    for key, (value, step) in metrics.items():
        print(f"  {key} = {value} (step {step})")
    if model_dir and os.path.isdir(model_dir):
        files = sorted(os.listdir(model_dir))
        sizes = [f"{f} ({os.path.getsize(os.path.join(model_dir, f))} B)" for f in files]
        print(f"  model: {', '.join(sizes)}")
    for rel in artifacts:
        size = (
            png_size(os.path.join(ws, rel))
            if rel.endswith(".png") and os.path.exists(os.path.join(ws, rel))
            else None
        )
        print(f"  artifact {rel}" + (f" (PNG {size[0]}x{size[1]})" if size else ""))
    for p in problems:
        print(f"PROBLEM: {p}")
    if not a.keep and not problems:
        shutil.rmtree(ws)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
