"""Shared helpers for the Python forecasting templates (copied into each workspace as `forecast/`).

`rwproto` speaks the runwarden stdout line protocol, `data` loads and splits the weekly series and
scores forecasts, `plots` draws the loss curve, and `train_rnn` is the GRU/LSTM training script
run as `python -m forecast.train_rnn`.
"""
