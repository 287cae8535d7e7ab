"""Loading, splitting, windowing and scoring the weekly case series, shared by every Python template.

The split is chronological and the same for all templates (the Node template mirrors it): the last
52 weeks are the test split, the 52 before them validation, the rest training. Scores are one-step-
ahead forecasts of each test week from the history before it, measured on `cases` standardised
with the training split's mean and std, so RMSE, MAE and MSE share a scale and none swamps the
composite 0.5·RMSE + 0.3·MAE + 0.2·MSE. `*_cases` variants are the same errors in cases.
"""

import csv
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
import yaml

COLUMNS = ["cases", "rainfall", "temperature"]
TARGET = "cases"
VAL_WEEKS = 52
TEST_WEEKS = 52


def load_config(path: str | None) -> dict:
    """The worker's config.yml: {params: {...}, inputs: {name: path}, output_dir: path}."""
    if not path:
        return {"params": {}, "inputs": {}}
    with open(path) as f:
        config = yaml.safe_load(f) or {}
    config.setdefault("params", {})
    config.setdefault("inputs", {})
    return config


def resolve_run(args, defaults: dict) -> tuple[dict, str, str]:
    """Params (template defaults overlaid with config.yml), the series path and the output folder,
    from the `--config/--data/--out` arguments every forecasting template takes."""
    config = load_config(args.config)
    params = {**defaults, **{k: v for k, v in config["params"].items() if k in defaults}}
    data_path = args.data or config["inputs"].get("series")
    out_dir = args.out or config.get("output_dir") or "output"
    if not data_path:
        raise ValueError("no input series: pass --data or set inputs.series in the config")
    return params, data_path, out_dir


def load_series(path: str, columns: list = COLUMNS) -> pd.DataFrame:
    """The CSV sorted by week, checked for the `columns` a template uses."""
    df = pd.read_csv(path)
    missing = [c for c in ["week", *columns] if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; has {', '.join(df.columns)}")
    df = df.sort_values("week").reset_index(drop=True)
    if df[columns].isna().any().any():
        raise ValueError(f"{path}: empty cells in {', '.join(columns)}")
    if len(df) < VAL_WEEKS + TEST_WEEKS + 26:
        raise ValueError(f"{path}: {len(df)} rows; need at least {VAL_WEEKS + TEST_WEEKS + 26}")
    return df


@dataclass(frozen=True)
class Split:
    """Row bounds: train [0, val_start), val [val_start, test_start), test [test_start, n)."""

    n: int
    val_start: int
    test_start: int

    @classmethod
    def of(cls, n: int) -> "Split":
        return cls(n, n - TEST_WEEKS - VAL_WEEKS, n - TEST_WEEKS)

    def sizes(self) -> dict:
        return {
            "n_train": self.val_start,
            "n_val": self.test_start - self.val_start,
            "n_test": self.n - self.test_start,
        }


@dataclass(frozen=True)
class Scaler:
    """Per-column standardisation fitted on the training rows only."""

    mean: dict
    std: dict

    @classmethod
    def fit(cls, df: pd.DataFrame, split: Split, columns: list = COLUMNS) -> "Scaler":
        train = df.iloc[: split.val_start]
        return cls(
            {c: float(train[c].mean()) for c in columns},
            {c: float(train[c].std(ddof=0)) or 1.0 for c in columns},
        )

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        return np.column_stack([(df[c].to_numpy(float) - self.mean[c]) / self.std[c] for c in COLUMNS])

    def scale_target(self, y) -> np.ndarray:
        return (np.asarray(y, float) - self.mean[TARGET]) / self.std[TARGET]

    def unscale_target(self, z) -> np.ndarray:
        return np.asarray(z, float) * self.std[TARGET] + self.mean[TARGET]


def windows(features: np.ndarray, lookback: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs: the `lookback` rows before week t (all columns); target: scaled cases at t.

    One pair per t in [max(lo, lookback), hi).
    """
    targets = range(max(lo, lookback), hi)
    x = np.stack([features[t - lookback : t] for t in targets]).astype(np.float32)
    y = np.array([features[t, COLUMNS.index(TARGET)] for t in targets], dtype=np.float32)
    return x, y


def mse(y_true, y_pred) -> float:
    return float(np.mean((np.asarray(y_true, float) - np.asarray(y_pred, float)) ** 2))


def error_metrics(y_true_scaled, y_pred_scaled, target_std: float) -> dict:
    """test_rmse/test_mae/test_mse/composite on the scaled target, plus rmse and mae in cases."""
    err = np.asarray(y_true_scaled, float) - np.asarray(y_pred_scaled, float)
    m = {
        "test_rmse": float(np.sqrt(np.mean(err**2))),
        "test_mae": float(np.mean(np.abs(err))),
        "test_mse": float(np.mean(err**2)),
    }
    m["composite"] = 0.5 * m["test_rmse"] + 0.3 * m["test_mae"] + 0.2 * m["test_mse"]
    m["test_rmse_cases"] = m["test_rmse"] * target_std
    m["test_mae_cases"] = m["test_mae"] * target_std
    return m


def save_predictions(path: str, weeks, actual, predicted) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["week", "actual_cases", "predicted_cases"])
        for row in zip(weeks, actual, predicted, strict=True):
            w.writerow([row[0], round(float(row[1]), 3), round(float(row[2]), 3)])
