"""Generate the synthetic weekly case series the forecasting templates train on.

Five years of weekly rows (week start dates, Mondays) with a dengue-like case count that follows
rainfall three to four weeks earlier and temperature two weeks earlier, on top of a yearly
season, a slow upward trend, week-to-week persistence and noise. Pure standard library with a
fixed seed, so running it again writes the same bytes:

    python3 generate_weekly_cases.py [--out weekly_cases.csv] [--weeks 260] [--seed 20240501]
"""

import argparse
import csv
import datetime as dt
import math
import random

WARMUP = 8  # weather weeks drawn before the first row, so every row has its lagged drivers


def generate(weeks: int, seed: int, start: dt.date) -> list[dict]:
    rng = random.Random(seed)
    rain, temp = [], []
    for i in range(weeks + WARMUP):
        phase = 2 * math.pi * (i - WARMUP) / 52.18
        wet = max(0.0, math.sin(phase - 0.6))  # wet season peaks ~ week 18 of the year
        rain.append(round(8 + 55 * wet**1.5 + rng.gammavariate(2.0, 6.0 + 10 * wet), 1))
        temp.append(round(26.0 + 3.2 * math.sin(phase - 0.2) + rng.gauss(0, 0.7), 1))
    rows, prev_log = [], math.log(40)
    for t in range(weeks):
        i = t + WARMUP
        rain_lag = (rain[i - 3] + rain[i - 4]) / 2
        temp_lag = temp[i - 2]
        level = (
            math.log(35)
            + 0.0025 * t  # trend: roughly +90% over five years
            + 0.011 * (rain_lag - 40)
            + 0.16 * (temp_lag - 26)
        )
        log_mu = 0.55 * prev_log + 0.45 * level + rng.gauss(0, 0.09)
        cases = max(0, round(math.exp(log_mu) * rng.lognormvariate(0, 0.08)))
        prev_log = math.log(cases + 1)
        week = start + dt.timedelta(weeks=t)
        rows.append({"week": week.isoformat(), "cases": cases, "rainfall": rain[i], "temperature": temp[i]})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="weekly_cases.csv")
    ap.add_argument("--weeks", type=int, default=260)
    ap.add_argument("--seed", type=int, default=20240501)
    ap.add_argument("--start", default="2019-01-07", help="Monday of the first week")
    a = ap.parse_args()
    rows = generate(a.weeks, a.seed, dt.date.fromisoformat(a.start))
    with open(a.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["week", "cases", "rainfall", "temperature"], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {len(rows)} rows to {a.out}")


if __name__ == "__main__":
    main()
