"""The Python side of `npm run bench:onnx` (bench/onnx.ts runs it with .venv's python).

  python bench/onnx_py.py build <model.onnx> [--seed S]
      writes the benchmark model: an MLP 32 -> 256 -> 128 -> 1 (Gemm + Relu, float32 weights
      from a seeded normal, inline raw_data), input `x` float32 [N, 32], output `y` [N, 1].
  python bench/onnx_py.py time <model.onnx> <data.f32> <out.f32> --rows N --batch B --single R
      --warmup W --repeat K
      scores the same data with Python onnxruntime (1 intra-op and 1 inter-op thread, sequential,
      default graph optimisation): W warm-up runs, then K timed passes of each mode, and prints one
      JSON line {"ort": version, "batched": [rows/s...], "full": [...], "single": [...]}.
      Modes: `batched` = all N rows in B-row batches, `full` = all N rows in one run, `single` =
      the first R rows one row per run. Writes the full-set output to <out.f32> for bench/onnx.ts
      to compare its own outputs with.
"""

import argparse
import json
import sys
import time

import numpy as np


def build(path: str, seed: int) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    sizes = [32, 256, 128, 1]
    inits, nodes, prev = [], [], "x"
    for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:], strict=False)):
        w = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
        b = (rng.standard_normal(fan_out) * 0.1).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        out = "y" if i == len(sizes) - 2 else f"h{i}"
        gemm = out if out == "y" else f"g{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [gemm]))
        if out != "y":
            nodes.append(helper.make_node("Relu", [gemm], [out]))
        prev = out
    graph = helper.make_graph(
        nodes,
        "bench_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, path)


def rate(rows: int, fn) -> float:
    t0 = time.perf_counter()
    fn()
    return rows / (time.perf_counter() - t0)


def timing(args) -> None:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])
    x = np.fromfile(args.data, dtype="<f4").reshape(-1, 32)[: args.rows]
    n, b = len(x), args.batch

    def batched():
        for i in range(0, n, b):
            sess.run(["y"], {"x": x[i : i + b]})

    def full():
        return sess.run(["y"], {"x": x})[0]

    def single():
        for i in range(args.single):
            sess.run(["y"], {"x": x[i : i + 1]})

    for i in range(args.warmup):
        sess.run(["y"], {"x": x[(i * b) % n : (i * b) % n + b]})
        sess.run(["y"], {"x": x[i : i + 1]})
    full()
    res = {"ort": ort.__version__, "batched": [], "full": [], "single": []}
    for _ in range(args.repeat):
        res["batched"].append(rate(n, batched))
        res["full"].append(rate(n, full))
        res["single"].append(rate(args.single, single))
    np.asarray(full(), dtype="<f4").tofile(args.out)
    print(json.dumps(res))


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("model")
    b.add_argument("--seed", type=int, default=7)
    t = sub.add_parser("time")
    t.add_argument("model")
    t.add_argument("data")
    t.add_argument("out")
    for name in ["rows", "batch", "single", "warmup", "repeat"]:
        t.add_argument(f"--{name}", type=int, required=True)
    args = ap.parse_args()
    if args.cmd == "build":
        build(args.model, args.seed)
    else:
        timing(args)


if __name__ == "__main__":
    sys.exit(main())
