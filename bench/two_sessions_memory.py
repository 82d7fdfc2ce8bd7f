"""Do two onnxruntime sessions over the SAME external data file (decode-steps.onnx reads the segments' .data files
by offset) hold the weights once or twice? Writes two one-MatMul graphs reading one 128 MiB weight from one file
and prints the process RSS growth after the first and the second session (each run once).

    .venv-export/bin/python bench/two_sessions_memory.py [--dir /tmp/two-sessions] [--no-prepack]
    npx tsx bench/two-sessions-memory.ts /tmp/two-sessions     (the same graphs in onnxruntime-node)"""

import argparse
import gc
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

ROWS, COLS = 4096, 8192  # 128 MiB of float32


def rss_mib() -> float:
    return int(next(line for line in open("/proc/self/status") if line.startswith("VmRSS")).split()[1]) / 1024


def write_graph(path: Path) -> None:
    w = helper.make_tensor("W", TensorProto.FLOAT, [ROWS, COLS], vals=[])
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "w.data"), ("offset", "0"), ("length", str(ROWS * COLS * 4))):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph([helper.make_node("MatMul", ["X", "W"], ["Y"])], path.stem,
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, ROWS])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, COLS])], [w])
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", default="/tmp/two-sessions")
    parser.add_argument("--no-prepack", action="store_true")
    args = parser.parse_args()
    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    np.random.default_rng(0).standard_normal((ROWS, COLS), dtype=np.float32).tofile(d / "w.data")
    write_graph(d / "a.onnx")
    write_graph(d / "b.onnx")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    if args.no_prepack:
        opts.add_session_config_entry("session.disable_prepacking", "1")
    x = np.ones((1, ROWS), np.float32)
    sizes = [rss_mib()]
    sessions = []
    for name in ("a", "b"):
        sessions.append(ort.InferenceSession(str(d / f"{name}.onnx"), opts, providers=["CPUExecutionProvider"]))
        sessions[-1].run(None, {"X": x})
        gc.collect()
        sizes.append(rss_mib())
    print(f"onnxruntime {ort.__version__}{' (prepacking off)' if args.no_prepack else ''}: weights "
          f"{ROWS * COLS * 4 / 2**20:.1f} MiB; RSS +{sizes[1] - sizes[0]:.1f} MiB after the first session, "
          f"+{sizes[2] - sizes[1]:.1f} MiB after the second over the same data file")


if __name__ == "__main__":
    main()
