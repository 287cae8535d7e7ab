"""GRU or LSTM one-step-ahead forecaster of weekly cases, the script behind gru-forecast and lstm-forecast.

Run from the workspace as `python -m forecast.train_rnn --cell gru --config config.yml --data
<csv> --out <output_dir>`. A window of the last `lookback` weeks of cases, rainfall and
temperature (standardised on the training split) predicts next week's cases, as a learnt
correction to last week's value (so training starts near the naive forecast). Each epoch reports
train_loss and val_loss (MSE, standardised) and progress; the weights with the best val_loss are
kept and scored on the test split. Writes the model folder (model/model.pt state_dict,
model/meta.json, and the MLflow-ready ONNX copy: model/model.onnx, model/features.json,
model/input_example.json; see export_onnx), predictions.csv and plots/loss_curve.png. CPU only,
deterministic for a given seed.
"""

import argparse
import json
import os
import random
import time
import warnings

import numpy as np
import torch
from torch import nn

from . import data, rwproto
from .plots import report_loss_curve

DEFAULTS = {
    "epochs": 60,
    "hidden_size": 16,
    "num_layers": 1,
    "learning_rate": 0.01,
    "lookback": 8,
    "batch_size": 32,
    "seed": 42,
}


class Forecaster(nn.Module):
    """RNN over the window, then a linear head giving the change from the window's last cases value."""

    def __init__(self, cell: str, n_features: int, hidden_size: int, num_layers: int):
        super().__init__()
        rnn = {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
        self.rnn = rnn(n_features, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return x[:, -1, 0] + self.head(out[:, -1]).squeeze(-1)  # residual on last week: starts as naive


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # a model this small is fastest on one thread, and it leaves cores free


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, np.ndarray]:
    model.eval()
    with torch.no_grad():
        pred = model(x)
    return float(nn.functional.mse_loss(pred, y)), pred.numpy()


class RawForecaster(nn.Module):
    """The trained model with the training scaler folded in: RAW window in, next week's cases out.

    Input `window` float32 [N, lookback, len(COLUMNS)] in the series' own units (columns in
    data.COLUMNS order, oldest row first); output [N] cases. This is the graph exported to ONNX
    (runwarden's window-forecaster contract: features.json says how to build the windows).
    """

    def __init__(self, model: nn.Module, scaler: data.Scaler):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor([scaler.mean[c] for c in data.COLUMNS], dtype=torch.float32))
        self.register_buffer("std", torch.tensor([scaler.std[c] for c in data.COLUMNS], dtype=torch.float32))
        self.t_mean = float(scaler.mean[data.TARGET])
        self.t_std = float(scaler.std[data.TARGET])

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        return self.model((window - self.mean) / self.std) * self.t_std + self.t_mean


ONNX_TOLERANCE = 1e-3  # cases (values ~10-200): float32 rounding in the two runtimes, far below any real difference


def export_onnx(model: nn.Module, scaler: data.Scaler, raw_windows: np.ndarray, expected: np.ndarray, model_dir: str) -> str:
    """Writes model.onnx (RawForecaster, legacy TorchScript exporter: needs only `onnx`), then checks
    it: onnx's reference evaluator on `raw_windows` must give `expected` (the torch model's test
    predictions in cases) within ONNX_TOLERANCE. On a mismatch or any export error the file is
    removed and the reason returned (the script still writes model.pt and its outputs; the worker
    then fails the run, as the template declares `format: onnx`); else "ok" and the largest
    difference seen."""
    path = os.path.join(model_dir, "model.onnx")
    lookback, n_features = raw_windows.shape[1], raw_windows.shape[2]
    try:
        wrapped = RawForecaster(model, scaler).eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapped,
                (torch.zeros(1, lookback, n_features),),
                path,
                dynamo=False,
                input_names=["window"],
                output_names=["forecast"],
                dynamic_axes={"window": {0: "batch"}, "forecast": {0: "batch"}},
            )
        from onnx.reference import ReferenceEvaluator

        got = ReferenceEvaluator(path).run(["forecast"], {"window": raw_windows.astype(np.float32)})[0]
        diff = float(np.max(np.abs(np.asarray(got, float).reshape(-1) - np.asarray(expected, float))))
        if not diff <= ONNX_TOLERANCE:
            raise ValueError(f"ONNX output differs from the torch model by {diff:.3g} cases (> {ONNX_TOLERANCE})")
        return f"ok (max difference from torch {diff:.2g} cases)"
    except Exception as exc:  # noqa: BLE001 - reported, not raised: the worker fails the run (format onnx declared)
        if os.path.exists(path):
            os.remove(path)
        return f"skipped: {type(exc).__name__}: {exc}"[:250]


def write_model_card(
    model_dir: str, scaler: data.Scaler, lookback: int, example: np.ndarray, test_rows: int
) -> None:
    """features.json (how to build the ONNX input from a table) and input_example.json (real windows)."""
    features = {
        "kind": "window",
        "time_column": "week",
        "columns": data.COLUMNS,
        "target": data.TARGET,
        "lookback": lookback,
        "input": "window",
        "output": "forecast",
        "target_scale": {"mean": scaler.mean[data.TARGET], "std": scaler.std[data.TARGET]},
        # The test split: the last test_rows rows of the series (the judge's claim check re-scores them).
        "test_rows": test_rows,
    }
    with open(os.path.join(model_dir, "features.json"), "w") as f:
        json.dump(features, f, indent=2)
    with open(os.path.join(model_dir, "input_example.json"), "w") as f:
        json.dump(np.asarray(example, float).round(6).tolist(), f)


def main() -> None:
    ap = argparse.ArgumentParser(description="Train a GRU/LSTM weekly-cases forecaster.")
    ap.add_argument("--cell", choices=["gru", "lstm"], required=True)
    ap.add_argument("--config", default="config.yml")
    ap.add_argument("--data", help="weekly series CSV (default: inputs.series in the config)")
    ap.add_argument("--out", help="output folder (default: output_dir in the config)")
    args = ap.parse_args()
    p, data_path, out_dir = data.resolve_run(args, DEFAULTS)
    started = time.time()
    seed_everything(int(p["seed"]))

    df = data.load_series(data_path)
    split = data.Split.of(len(df))
    scaler = data.Scaler.fit(df, split)
    features = scaler.transform(df)
    lookback = int(p["lookback"])
    x_tr, y_tr = map(torch.from_numpy, data.windows(features, lookback, 0, split.val_start))
    x_va, y_va = map(torch.from_numpy, data.windows(features, lookback, split.val_start, split.test_start))
    x_te, y_te = map(torch.from_numpy, data.windows(features, lookback, split.test_start, split.n))

    rwproto.tag("model_family", "rnn")
    rwproto.tag("cell", args.cell)
    rwproto.params({"cell": args.cell, **p, **split.sizes(), "features": ",".join(data.COLUMNS)})

    model = Forecaster(args.cell, len(data.COLUMNS), int(p["hidden_size"]), int(p["num_layers"]))
    opt = torch.optim.Adam(model.parameters(), lr=float(p["learning_rate"]))
    gen = torch.Generator().manual_seed(int(p["seed"]))
    epochs, batch = int(p["epochs"]), int(p["batch_size"])
    train_hist, val_hist = [], []
    best = (float("inf"), 0, None)
    for epoch in range(1, epochs + 1):
        model.train()
        total = 0.0
        for idx in torch.randperm(len(x_tr), generator=gen).split(batch):
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(x_tr[idx]), y_tr[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        train_loss = total / len(x_tr)
        val_loss, _ = evaluate(model, x_va, y_va)
        train_hist.append(train_loss)
        val_hist.append(val_loss)
        rwproto.metric("train_loss", train_loss, epoch)
        rwproto.metric("val_loss", val_loss, epoch)
        rwproto.progress(epoch / epochs, f"epoch {epoch}/{epochs}")
        print(f"epoch {epoch}/{epochs} train_loss={train_loss:.4f} val_loss={val_loss:.4f}", flush=True)
        if val_loss < best[0]:
            best = (val_loss, epoch, {k: v.clone() for k, v in model.state_dict().items()})

    if best[2] is not None:  # None only when every val_loss was NaN
        model.load_state_dict(best[2])
    _, pred = evaluate(model, x_te, y_te)
    scores = data.error_metrics(y_te.numpy(), pred, scaler.std[data.TARGET])
    rwproto.metric("best_epoch", best[1])
    rwproto.metric("best_val_loss", best[0])
    for key, value in scores.items():
        rwproto.metric(key, value)

    model_dir = os.path.join(out_dir, "model")
    os.makedirs(model_dir, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(model_dir, "model.pt"))
    raw = df[data.COLUMNS].to_numpy(float)
    raw_test = np.stack([raw[t - lookback : t] for t in range(max(split.test_start, lookback), split.n)])
    onnx = export_onnx(model, scaler, raw_test, scaler.unscale_target(pred), model_dir)
    onnx_ok = onnx.startswith("ok")
    rwproto.tag("onnx_export", "ok" if onnx_ok else onnx.split(":")[0])
    if onnx_ok:
        rwproto.tag("onnx_check", onnx[len("ok (") : -1])
    print(f"ONNX export {onnx}", flush=True)
    if onnx_ok:
        write_model_card(model_dir, scaler, lookback, raw_test[:3], len(raw_test))
    meta = {
        "cell": args.cell,
        "hidden_size": int(p["hidden_size"]),
        "num_layers": int(p["num_layers"]),
        "lookback": lookback,
        "features": data.COLUMNS,
        "target": data.TARGET,
        "scaler": {"mean": scaler.mean, "std": scaler.std},
        "best_epoch": best[1],
        "input": "model.pt: float32 [batch, lookback, features], standardised with scaler; output: standardised cases",
        "onnx": "model.onnx: input `window` RAW float32 [batch, lookback, features] (scaler folded in); output `forecast` [batch] in cases",
        "residual": "output = window[:, -1, cases] + head(rnn(window)[:, -1])",
        "files": {"state_dict": "model.pt", "onnx": "model.onnx" if onnx_ok else None},
    }
    with open(os.path.join(model_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)

    weeks = df["week"].iloc[split.test_start :].tolist()[-len(pred) :]
    data.save_predictions(
        os.path.join(out_dir, "predictions.csv"),
        weeks,
        scaler.unscale_target(y_te.numpy()),
        scaler.unscale_target(pred),
    )
    rwproto.artifact(os.path.relpath(os.path.join(out_dir, "predictions.csv")), dest="predictions")
    report_loss_curve(
        os.path.join(out_dir, "plots", "loss_curve.png"),
        train_hist,
        val_hist,
        f"{args.cell.upper()} forecaster: loss per epoch",
    )
    rwproto.progress(1.0, f"done in {time.time() - started:.1f}s; test composite {scores['composite']:.4f}")


if __name__ == "__main__":
    rwproto.run_main(main)
