"""Statistical baseline for weekly cases: StatsForecast AutoETS, one candidate ETS form per step.

Run from the workspace (the shared `forecast/` package beside it) as `python train_ets.py --config
config.yml --data <csv> --out <output_dir>`. ETS is not trained by epochs, so each step is one
candidate model form (error/trend/season letters, Z = let AutoETS choose by AICc): it is fitted
on the training split, train_loss is its in-sample one-step MSE and val_loss the MSE of one-step
forecasts over the validation split with the fitted parameters held fixed (states updated by the
actual weeks). The form with the best val_loss is refitted on train + validation and scored by
one-step forecasts over the test split, like every template. Rainfall and temperature are not
used: ETS is univariate. Writes model/params.json (readable parameters), model/model.pkl (the
fitted AutoETS object), predictions.csv and plots/loss_curve.png.
"""

import argparse
import json
import math
import os
import pickle
import time

import numpy as np
from statsforecast.models import AutoETS

from forecast import data, rwproto  # the shared folder, copied into the workspace
from forecast.plots import report_loss_curve

DEFAULTS = {"candidates": "ANN,AAN,MNN,MAN,AAA,MAM,ZZZ", "season_length": 52}


def one_step(model: AutoETS, y: np.ndarray) -> np.ndarray:
    """One-step-ahead forecasts of every week of `y` with `model`'s parameters fixed."""
    return model.forward(y=y, h=1, fitted=True)["fitted"]


def scaled_mse(scaler: data.Scaler, actual: np.ndarray, pred: np.ndarray) -> float:
    ok = np.isfinite(pred)
    return data.mse(scaler.scale_target(actual[ok]), scaler.scale_target(pred[ok])) if ok.any() else math.nan


def readable(model: AutoETS, spec: str, season: int) -> dict:
    fit = model.model_
    par = [None if not np.isfinite(v) else float(v) for v in fit["par"]]
    return {
        "candidate": spec,
        "method": fit["method"],
        "components": fit["components"],
        "season_length": season,
        "m": int(fit["m"]),
        "smoothing": dict(zip(["alpha", "beta", "gamma", "phi"], par[:4], strict=True)),
        "initial_states": par[4:],
        "final_states": [float(v) for v in fit["states"][-1]],
        "sigma2": float(fit["sigma2"]),
        "aic": float(fit["aic"]),
        "aicc": float(fit["aicc"]),
        "bic": float(fit["bic"]),
        "forecast": "one-step-ahead on raw weekly cases; see the template README",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description="Fit the AutoETS weekly-cases baseline.")
    ap.add_argument("--config", default="config.yml")
    ap.add_argument("--data")
    ap.add_argument("--out")
    args = ap.parse_args()
    p, data_path, out_dir = data.resolve_run(args, DEFAULTS)
    specs = [s.strip().upper() for s in str(p["candidates"]).split(",") if s.strip()]
    bad = [s for s in specs if len(s) != 3 or s[0] not in "AMZ" or s[1] not in "ANZ" or s[2] not in "ANMZ"]
    if not specs or bad:
        raise ValueError(
            f"candidates: {bad or 'none'} not ETS forms like ANN, AAN, MAM, ZZZ"
            " (error A/M/Z, trend A/N/Z, season A/M/N/Z)"
        )
    started = time.time()

    df = data.load_series(data_path, [data.TARGET])
    split = data.Split.of(len(df))
    scaler = data.Scaler.fit(df, split, [data.TARGET])
    y = df[data.TARGET].to_numpy(float)
    season = int(p["season_length"])
    rwproto.tag("model_family", "ets")
    rwproto.params({**p, **split.sizes(), "features": data.TARGET})

    train_hist, val_hist, best = [], [], (math.inf, None)
    for step, spec in enumerate(specs, start=1):
        try:
            model = AutoETS(season_length=season, model=spec).fit(y[: split.val_start])
            train_loss = scaled_mse(scaler, y[: split.val_start], model.model_["fitted"])
            pred = one_step(model, y[: split.test_start])[split.val_start :]
            val_loss = scaled_mse(scaler, y[split.val_start : split.test_start], pred)
            method = model.model_["method"]
        except Exception as exc:  # noqa: BLE001 - a form that cannot be fitted is skipped, not fatal
            train_loss = val_loss = math.nan
            method = f"failed ({type(exc).__name__}: {exc})"
        train_hist.append(train_loss)
        val_hist.append(val_loss)
        rwproto.metric("train_loss", train_loss, step)
        rwproto.metric("val_loss", val_loss, step)
        rwproto.progress(step / (len(specs) + 1), f"candidate {step}/{len(specs)}: {spec}")
        print(
            f"step {step} candidate {spec} -> {method}: train_loss={train_loss:.4f} val_loss={val_loss:.4f}",
            flush=True,
        )
        if val_loss < best[0]:
            best = (val_loss, spec)
    if best[1] is None:
        raise RuntimeError(f"no candidate could be fitted: {', '.join(specs)}")

    final = AutoETS(season_length=season, model=best[1]).fit(y[: split.test_start])
    pred = one_step(final, y)[split.test_start :]
    actual = y[split.test_start :]
    scores = data.error_metrics(
        scaler.scale_target(actual), scaler.scale_target(pred), scaler.std[data.TARGET]
    )
    rwproto.tag("selected_model", final.model_["method"])
    rwproto.param("selected_candidate", best[1])
    rwproto.metric("best_val_loss", best[0])
    for key, value in scores.items():
        rwproto.metric(key, value)

    model_dir = os.path.join(out_dir, "model")
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, "params.json"), "w") as f:
        json.dump(readable(final, best[1], season), f, indent=2)
    with open(os.path.join(model_dir, "model.pkl"), "wb") as f:
        pickle.dump(final, f)
    data.save_predictions(
        os.path.join(out_dir, "predictions.csv"), df["week"].iloc[split.test_start :], actual, pred
    )
    rwproto.artifact(os.path.relpath(os.path.join(out_dir, "predictions.csv")), dest="predictions")
    report_loss_curve(
        os.path.join(out_dir, "plots", "loss_curve.png"),
        train_hist,
        val_hist,
        "AutoETS baseline: loss per candidate form",
        xlabel="candidate (step)",
        xticks=specs,
    )
    rwproto.progress(
        1.0,
        f"done in {time.time() - started:.1f}s; selected {final.model_['method']};"
        f" test composite {scores['composite']:.4f}",
    )


if __name__ == "__main__":
    rwproto.run_main(main)
