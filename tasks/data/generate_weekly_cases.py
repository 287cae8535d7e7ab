"""Generate the synthetic weekly case series the forecasting templates train on.

Five years of weekly rows (week start dates, Mondays) with a dengue-like case count that follows
rainfall three to four weeks earlier and temperature two weeks earlier, on top of a yearly
season, a slow upward trend, week-to-week persistence and noise. Pure standard library with a
fixed seed, so running it again writes the same bytes:

    python3 generate_weekly_cases.py [--out weekly_cases.csv] [--weeks 260] [--seed 20240501]
        [--holdout-out weekly_cases_holdout.csv] [--holdout-weeks 104]

`--holdout-out` continues the same process (trend, persistence, random stream) for the weeks
after the series: data no template trains on, which the judge re-scores models with.
"""

import argparse
import csv
import datetime as dt
import math
import random

WARMUP = 8  # weather weeks drawn before the first row, so every row has its lagged drivers


class Process:
    """The series' generating process, with its random state: `extend(weeks)` draws the next
    `weeks` rows (their weather first, then the cases). Extending again continues the same process
    (trend, persistence, random stream), which is how the holdout weeks are made."""

    def __init__(self, seed: int, start: dt.date) -> None:
        self.rng = random.Random(seed)
        self.start = start
        self.rain: list[float] = []
        self.temp: list[float] = []
        self.prev_log = math.log(40)
        self.t = 0

    def _weather(self, count: int) -> None:
        for _ in range(count):
            i = len(self.rain)
            phase = 2 * math.pi * (i - WARMUP) / 52.18
            wet = max(0.0, math.sin(phase - 0.6))  # wet season peaks ~ week 18 of the year
            self.rain.append(round(8 + 55 * wet**1.5 + self.rng.gammavariate(2.0, 6.0 + 10 * wet), 1))
            self.temp.append(round(26.0 + 3.2 * math.sin(phase - 0.2) + self.rng.gauss(0, 0.7), 1))

    def extend(self, weeks: int) -> list[dict]:
        rng, rain, temp = self.rng, self.rain, self.temp
        self._weather(weeks + (WARMUP if self.t == 0 else 0))
        rows = []
        for t in range(self.t, self.t + weeks):
            i = t + WARMUP
            rain_lag = (rain[i - 3] + rain[i - 4]) / 2
            temp_lag = temp[i - 2]
            level = (
                math.log(35)
                + 0.0025 * t  # trend: roughly +90% over five years
                + 0.011 * (rain_lag - 40)
                + 0.16 * (temp_lag - 26)
            )
            log_mu = 0.55 * self.prev_log + 0.45 * level + rng.gauss(0, 0.09)
            cases = max(0, round(math.exp(log_mu) * rng.lognormvariate(0, 0.08)))
            self.prev_log = math.log(cases + 1)
            week = self.start + dt.timedelta(weeks=t)
            rows.append({"week": week.isoformat(), "cases": cases, "rainfall": rain[i], "temperature": temp[i]})
        self.t += weeks
        return rows


def generate(weeks: int, seed: int, start: dt.date) -> list[dict]:
    return Process(seed, start).extend(weeks)


def write(path: str, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["week", "cases", "rainfall", "temperature"], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {len(rows)} rows to {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="weekly_cases.csv")
    ap.add_argument("--weeks", type=int, default=260)
    ap.add_argument("--seed", type=int, default=20240501)
    ap.add_argument("--start", default="2019-01-07", help="Monday of the first week")
    ap.add_argument("--holdout-out", help="also write the weeks that follow (same process) to this file")
    ap.add_argument("--holdout-weeks", type=int, default=104)
    a = ap.parse_args()
    process = Process(a.seed, dt.date.fromisoformat(a.start))
    write(a.out, process.extend(a.weeks))
    if a.holdout_out:
        write(a.holdout_out, process.extend(a.holdout_weeks))


if __name__ == "__main__":
    main()
