"""Second-order MAML throughput of metazoo beside PyTorch peers, measured side by side.

Usage::

    python scripts/benchmark_peers.py [--threads N] [--repeats R] [--steps S] [--warmup W]
                                      [--seed SEED] [--setups NAME [NAME ...]] [--quick]

Needs torch (`pip install metazoo[bench]`); learn2learn is used when it is importable.
Every implementation runs one inner SGD step at lr 0.01 and Adam(1e-3) outer updates on
the same meta-batches from the same initial weights (Keras' initialization, copied into
torch), with the same thread count. Setups:

* ``sinusoid``: 25 sine tasks x (10 support + 10 query) points, 1-40-40-1 ReLU MLP
  (Finn et al. 2017, section 5.1). Implementations: metazoo ``train_on_batch``, metazoo
  ``fit`` with default arguments (compile's default steps per call) and with
  ``steps_per_execution=50``, ``torch.func``
  (``functional_call`` + ``grad`` + ``vmap`` over tasks), ``torch.compile`` of that step,
  and learn2learn's ``MAML`` wrapper (tasks in a loop) if installed.
* ``lstm``: LSTM(32) + dense head, 8 tasks x (16 + 16) synthetic windows of (20, 3).
* ``market``: the market setup of ``scripts/benchmark_meta.py``: 8 quarterly tasks x (20 +
  20) windows of 20 days of the default features of SP500, NASDAQ and MSFT before 2013.
  Implementations of both LSTM setups: metazoo with the zoo ``lstm`` base
  (``train_on_batch``), torch with the LSTM cell written out and ``vmap``-ped over tasks,
  and torch's ``nn.LSTM`` with tasks in a loop (``autograd.grad(create_graph=True)``).

Method. A first subprocess draws the meta-batches and builds the Keras initial weights;
then every implementation runs in its own subprocess (so the peak RSS in the table is that
implementation's alone: one framework's memory does not count against another's), all
processes of a setup alive at once but only one working at a time. Each subprocess sets
intra- and inter-op threads of its framework to ``--threads``. Before timing, each one
computes the second-order meta-gradient and meta-loss at the initial weights on the first
meta-batch (metazoo's from one ``train_on_batch`` with outer SGD at lr 1, as the change of
the weights); the table gives the largest absolute difference from metazoo's, and the run
fails if any exceeds ``1e-4 + 1e-3 * max|gradient|``. Then each runs ``--warmup`` untimed
meta-steps (tracing, compilation), and ``--repeats`` rounds follow, round-robin: in every
round each implementation runs ``--steps`` meta-steps in turn (the order rotates from round
to round), cycling over 20 distinct meta-batches that are tensors before timing.
Rates are medians over rounds with their min-max; ratios are medians of the per-round
ratios (metazoo's rate over the peer's in the same round).

The warm-up column counts the check too: for metazoo it traces two learners (the SGD one of
the check and the timed Adam one); ``fit`` with defaults also runs one untimed ``fit`` of
``--steps`` steps, as its steps per compiled call depend on the step count. Run time is dominated by tracing the metazoo LSTM steps
and by the LSTM rounds: ``--threads 1 --repeats 3 --steps 100`` took 22 minutes on a
2-core CPU loaded by other work (load average 6-7; the two metazoo LSTM warm-ups alone
took 410 s), ``--setups sinusoid`` 4 minutes. The default (5 rounds of 200 steps) takes
longer. ``--quick`` is a smoke test of tiny shapes (the check and one round of 5 steps; no
``fit`` rows, no ``torch.compile``): 1-3 minutes on that machine, half of it the LSTM.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

INNER_LR, OUTER_LR, DISTINCT_BATCHES, FIT_STEPS_PER_EXECUTION = 0.01, 1e-3, 20, 50
MARKET = {"symbols": ["SP500", "NASDAQ", "MSFT"], "lookback": 20, "test_start": "2013-01-01"}
SETUPS = {  # name: shapes; `window` is (lookback, n_features), None for the bundled data
    "sinusoid": {"tasks": 25, "support": 10, "query": 10, "base": "mlp"},
    "lstm": {"tasks": 8, "support": 16, "query": 16, "window": (20, 3), "base": "lstm"},
    "market": {"tasks": 8, "support": 20, "query": 20, "window": None, "base": "lstm"},
}
QUICK_SETUPS = {
    "sinusoid": {"tasks": 4, "support": 5, "query": 5, "base": "mlp"},
    "lstm": {"tasks": 2, "support": 4, "query": 4, "window": (5, 3), "base": "lstm"},
}
IMPLEMENTATIONS = {  # name: (label, base it runs, framework)
    "metazoo": ("metazoo train_on_batch", ("mlp", "lstm"), "metazoo"),
    "metazoo-fit": ("metazoo fit (defaults)", ("mlp",), "metazoo"),
    "metazoo-fit-50": ("metazoo fit, steps_per_execution=50", ("mlp",), "metazoo"),
    "torch-func": ("torch.func + vmap", ("mlp",), "torch"),
    "torch-compile": ("torch.compile of torch.func + vmap", ("mlp",), "torch"),
    "learn2learn": ("learn2learn MAML (task loop)", ("mlp",), "torch"),
    "torch-lstm-vmap": ("torch, LSTM cell written out, vmap over tasks", ("lstm",), "torch"),
    "torch-lstm-loop": ("torch nn.LSTM, task loop", ("lstm",), "torch"),
}
QUICK_SKIPS = ("metazoo-fit", "metazoo-fit-50", "torch-compile")  # slow to trace or compile
UNITS = {"mlp": (40, 40), "lstm": (32,)}


# == the first subprocess: meta-batches and initial weights (TensorFlow) ======================
def prepare(setup: str, shapes: dict, seed: int, folder: str) -> None:
    """Write `folder/<setup>.npz`: the meta-batches (`b<i>_<part>`) and Keras' initial
    weights of the base network (`w<j>`, in the order of `trainable_weights`)."""
    import keras

    from metazoo import data, models

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    n, s, q = shapes["tasks"], shapes["support"], shapes["query"]
    if shapes["base"] == "mlp":
        batches = []
        for _ in range(DISTINCT_BATCHES):
            sx, sy, qx, qy = data.SinusoidTasks().sample(n, s, q, rng=rng)
            batches.append((sx[..., None], sy, qx[..., None], qy))
        window = (1, 1)
    elif shapes["window"] is not None:
        window = tuple(shapes["window"])
        batches = [synthetic_windows(n, s, q, window, rng) for _ in range(DISTINCT_BATCHES)]
    else:
        prices = data.load_markets(symbols=MARKET["symbols"])
        windows = data.make_windows(prices, lookback=MARKET["lookback"], horizon=1)
        train = windows.select(label_end_before=MARKET["test_start"])
        scaled = data.WindowScaler(per_symbol=True).fit(train).transform(train)
        tasks = data.TaskSet.from_windows(scaled, period="Q")
        stream = tasks.meta_batches(n, s, q, n_batches=DISTINCT_BATCHES, seed=seed)
        batches = [tuple(part.numpy() for part in batch) for batch in stream]
        window = tuple(batches[0][0].shape[2:])
    network = models.build(shapes["base"], window, 1, units=UNITS[shapes["base"]], seed=seed)
    arrays = {f"w{j}": np.asarray(w) for j, w in enumerate(network.get_weights())}
    for i, batch in enumerate(batches):
        for name, part in zip(("sx", "sy", "qx", "qy"), batch, strict=True):
            arrays[f"b{i}_{name}"] = np.asarray(part, dtype=np.float32)
    np.savez(os.path.join(folder, f"{setup}.npz"), **arrays)


def synthetic_windows(n_tasks, support, query, window, rng) -> tuple:
    """One meta-batch of regression tasks on Gaussian windows: each task's target is its
    own linear function of the last time step plus noise."""
    lookback, features = window
    coefficients = rng.standard_normal((n_tasks, features, 1))

    def points(size):
        x = rng.standard_normal((n_tasks, size, lookback, features))
        y = x[:, :, -1, :] @ coefficients + 0.1 * rng.standard_normal((n_tasks, size, 1))
        return x, y

    return (*points(support), *points(query))


def load(folder: str, setup: str) -> tuple[list, list]:
    """`(meta-batches as 4-tuples of float32 arrays, initial weights)` of a setup."""
    with np.load(os.path.join(folder, f"{setup}.npz")) as arrays:
        weights = [arrays[f"w{j}"] for j in range(sum(k.startswith("w") for k in arrays))]
        batches = [
            tuple(arrays[f"b{i}_{name}"] for name in ("sx", "sy", "qx", "qy"))
            for i in range(DISTINCT_BATCHES)
        ]
    return batches, weights


# == metazoo runners ==========================================================================
class MetazooRunner:
    """metazoo MAML on the zoo base; `fit_steps_per_execution` None times `train_on_batch`,
    otherwise `fit` on a repeated `tf.data.Dataset` of the meta-batches, compiled with that
    `steps_per_execution` (`"default"`: none given, compile's default)."""

    def __init__(self, base, batches, weights, fit_steps_per_execution=None):
        import keras
        import tensorflow as tf

        from metazoo import models
        from metazoo.trainers import MAML

        self.tf, self.keras, self.MAML, self.models = tf, keras, MAML, models
        self.base, self.weights = base, weights
        self.window = batches[0][0].shape[2:]
        self.batches = [tuple(tf.constant(part) for part in batch) for batch in batches]
        self.per_call = fit_steps_per_execution
        self.learner = self.make(keras.optimizers.Adam(OUTER_LR), fit_steps_per_execution)
        if fit_steps_per_execution is not None:
            stacked = tuple(np.stack(column) for column in zip(*batches, strict=True))
            self.dataset = tf.data.Dataset.from_tensor_slices(stacked).repeat()
        self.position = 0

    def make(self, optimizer, steps_per_execution=None):
        network = self.models.build(self.base, self.window, 1, units=UNITS[self.base])
        network.set_weights(self.weights)
        learner = self.MAML(network, inner_lr=INNER_LR, inner_steps=1)
        per_call = (
            {}
            if steps_per_execution in (None, "default")
            else {"steps_per_execution": steps_per_execution}
        )
        learner.compile(optimizer=optimizer, loss="mse", **per_call)
        return learner

    def check(self, batch) -> tuple:
        """Meta-loss and meta-gradient at the initial weights, from one outer SGD step at
        lr 1 (the gradient is the change of the weights)."""
        learner = self.make(self.keras.optimizers.SGD(1.0))
        logs = learner.train_on_batch(tuple(self.tf.constant(p) for p in batch), return_dict=True)
        after = learner.model.get_weights()
        return float(logs["loss"]), [w0 - w1 for w0, w1 in zip(self.weights, after, strict=True)]

    def run(self, steps: int) -> int:
        if self.per_call is None:
            for _ in range(steps):
                self.learner.train_on_batch(self.batches[self.position % len(self.batches)])
                self.position += 1
            return steps
        if self.per_call != "default":  # whole executions (compile's default finds them)
            per_call = max(1, min(self.per_call, steps))
            steps = -(-steps // per_call) * per_call
        self.learner.fit(self.dataset, steps_per_epoch=steps, epochs=1, verbose=0)
        return steps

    def warm_for(self, steps: int) -> None:
        """Trace what `run(steps)` runs: with compile's default, the steps per compiled call
        depend on `steps` (the largest divisor up to 50), so the warm-up's fit is not it."""
        if self.per_call == "default":
            self.run(steps)


# == torch runners ============================================================================
def mse(torch, prediction, target):
    return torch.mean((prediction - target) ** 2)


class TorchRunner:
    """Shared loop of the torch peers: `meta_gradients(params, batch)` -> `(loss, grads)`
    as dicts keyed like `self.params`, then an Adam step; subclasses build the network.
    `torch.func` transforms get the parameters detached (they share the storage that Adam
    updates in place), so no autograd graph is recorded around them."""

    functional = True

    def __init__(self, batches, weights, compiled=False):
        import torch

        self.torch = torch
        self.build(weights)
        self.inputs = (
            {name: p.detach() for name, p in self.params.items()}
            if self.functional
            else self.params
        )
        self.batches = [self.prepare(tuple(torch.from_numpy(p) for p in b)) for b in batches]
        self.optimizer = torch.optim.Adam(list(self.params.values()), lr=OUTER_LR)
        self.gradients = torch.compile(self.meta_gradients) if compiled else self.meta_gradients
        self.position = 0

    def prepare(self, batch):
        return batch

    def check(self, batch) -> tuple:
        batch = self.prepare(tuple(self.torch.from_numpy(p) for p in batch))
        loss, grads = self.gradients(self.inputs, batch)
        return float(self.torch.as_tensor(loss).detach()), self.to_keras(grads)

    def run(self, steps: int) -> int:
        for _ in range(steps):
            _, grads = self.gradients(self.inputs, self.batches[self.position % len(self.batches)])
            for name, parameter in self.params.items():
                parameter.grad = grads[name]
            self.optimizer.step()
            self.position += 1
        return steps


class TorchFuncMLP(TorchRunner):
    """`torch.func`: `functional_call` of an `nn.Sequential`, `grad` of the inner loss
    inside the task loss, `vmap` over tasks, `grad_and_value` of the meta-loss."""

    def build(self, weights):
        torch, nn = self.torch, self.torch.nn
        widths = [w.shape[0] for w in weights[::2]] + [weights[-1].shape[0]]
        layers = []
        for i in range(len(widths) - 1):
            layers += [nn.Linear(widths[i], widths[i + 1]), nn.ReLU()]
        self.net = nn.Sequential(*layers[:-1])
        linears = [m for m in self.net if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for linear, kernel, bias in zip(linears, weights[::2], weights[1::2], strict=True):
                linear.weight.copy_(torch.from_numpy(kernel.T))  # Keras (in, out) -> (out, in)
                linear.bias.copy_(torch.from_numpy(bias))
        self.params = dict(self.net.named_parameters())

    def prepare(self, batch):
        sx, sy, qx, qy = batch
        return sx.flatten(-2), sy, qx.flatten(-2), qy  # (tasks, points, 1, 1) -> 1 feature

    def task_loss(self, params, sx, sy, qx, qy):
        from torch.func import functional_call, grad

        def support_loss(p):
            return mse(self.torch, functional_call(self.net, p, (sx,)), sy)

        inner = grad(support_loss)(params)
        fast = {name: params[name] - INNER_LR * inner[name] for name in params}
        return mse(self.torch, functional_call(self.net, fast, (qx,)), qy)

    def meta_gradients(self, params, batch):
        from torch.func import grad_and_value, vmap

        def meta_loss(p):
            return vmap(self.task_loss, in_dims=(None, 0, 0, 0, 0))(p, *batch).mean()

        grads, loss = grad_and_value(meta_loss)(params)
        return loss, grads

    def to_keras(self, grads):
        return [g.detach().numpy().T if g.ndim == 2 else g.detach().numpy() for g in grads.values()]


class Learn2LearnMLP(TorchFuncMLP):
    """learn2learn's `MAML` wrapper: `clone()` and `adapt()` per task, in a loop."""

    functional = False

    def build(self, weights):
        import learn2learn

        super().build(weights)
        self.maml = learn2learn.algorithms.MAML(self.net, lr=INNER_LR, first_order=False)

    def meta_gradients(self, params, batch):
        torch = self.torch
        tasks = batch[0].shape[0]
        total = 0.0
        for task in range(tasks):
            sx, sy, qx, qy = (part[task] for part in batch)
            learner = self.maml.clone()
            learner.adapt(mse(torch, learner(sx), sy))
            total = total + mse(torch, learner(qx), qy) / tasks
        grads = torch.autograd.grad(total, list(params.values()))
        return total.detach(), dict(zip(params, grads, strict=True))


class TorchLSTMVmap(TorchRunner):
    """The LSTM cell written out (Keras' layout and gate order i, f, c, o) as a function of
    a dict of tensors, `grad` for the inner step and `vmap` over tasks."""

    def build(self, weights):
        torch = self.torch
        names = ("kernel", "recurrent", "bias", "head_kernel", "head_bias")
        self.params = {
            name: torch.nn.Parameter(torch.from_numpy(w.copy()))
            for name, w in zip(names, weights, strict=True)
        }

    def forward(self, p, x):
        torch = self.torch
        inputs = x @ p["kernel"] + p["bias"]  # (points, time, 4 * units), all steps at once
        units = p["recurrent"].shape[0]
        h = c = inputs.new_zeros(x.shape[0], units)
        for t in range(x.shape[1]):
            z = inputs[:, t] + h @ p["recurrent"]
            i, f, g, o = torch.split(z, units, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        return h @ p["head_kernel"] + p["head_bias"]

    def task_loss(self, params, sx, sy, qx, qy):
        from torch.func import grad

        inner = grad(lambda p: mse(self.torch, self.forward(p, sx), sy))(params)
        fast = {name: params[name] - INNER_LR * inner[name] for name in params}
        return mse(self.torch, self.forward(fast, qx), qy)

    meta_gradients = TorchFuncMLP.meta_gradients

    def to_keras(self, grads):
        return [g.detach().numpy() for g in grads.values()]


class TorchLSTMLoop(TorchRunner):
    """`nn.LSTM` + `nn.Linear`, tasks in a loop, the inner step by
    `autograd.grad(create_graph=True)` and `functional_call` with the fast weights."""

    functional = False

    def build(self, weights):
        torch, nn = self.torch, self.torch.nn
        kernel, recurrent, bias, head_kernel, head_bias = weights

        class Regressor(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(kernel.shape[0], recurrent.shape[0], batch_first=True)
                self.head = nn.Linear(recurrent.shape[0], 1)

            def forward(self, x):
                return self.head(self.lstm(x)[0][:, -1])

        self.net = Regressor()
        lstm = self.net.lstm
        with torch.no_grad():  # torch's gate order i, f, g, o is Keras' i, f, c, o
            lstm.weight_ih_l0.copy_(torch.from_numpy(kernel.T))
            lstm.weight_hh_l0.copy_(torch.from_numpy(recurrent.T))
            lstm.bias_ih_l0.copy_(torch.from_numpy(bias))
            lstm.bias_hh_l0.zero_()  # Keras has one bias: torch's second stays 0, frozen
            self.net.head.weight.copy_(torch.from_numpy(head_kernel.T))
            self.net.head.bias.copy_(torch.from_numpy(head_bias))
        lstm.bias_hh_l0.requires_grad_(False)
        self.params = {k: v for k, v in self.net.named_parameters() if v.requires_grad}

    def forward(self, params, x):
        from torch.func import functional_call

        return functional_call(self.net, params, (x,), strict=False)

    def meta_gradients(self, params, batch):
        torch = self.torch
        tasks = batch[0].shape[0]
        names, values = list(params), list(params.values())
        grads, total = None, 0.0
        for task in range(tasks):
            sx, sy, qx, qy = (part[task] for part in batch)
            support_loss = mse(torch, self.forward(params, sx), sy)
            inner = torch.autograd.grad(support_loss, values, create_graph=True)
            fast = {n: v - INNER_LR * g for n, v, g in zip(names, values, inner, strict=True)}
            loss = mse(torch, self.forward(fast, qx), qy) / tasks
            task_grads = torch.autograd.grad(loss, values)  # frees this task's graph
            grads = (
                task_grads
                if grads is None
                else [a + b for a, b in zip(grads, task_grads, strict=True)]
            )
            total += float(loss.detach())
        return total, dict(zip(names, grads, strict=True))

    def to_keras(self, grads):
        order = ("lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0", "head.weight")
        arrays = [grads[name].numpy() for name in order] + [grads["head.bias"].numpy()]
        return [a.T if a.ndim == 2 else a for a in arrays]  # torch (out, in) -> Keras


RUNNERS = {
    "torch-func": TorchFuncMLP,
    "torch-compile": TorchFuncMLP,
    "learn2learn": Learn2LearnMLP,
    "torch-lstm-vmap": TorchLSTMVmap,
    "torch-lstm-loop": TorchLSTMLoop,
}


def make_runner(name: str, base: str, batches: list, weights: list):
    if name.startswith("metazoo"):
        per_call = {
            "metazoo": None,
            "metazoo-fit": "default",
            "metazoo-fit-50": FIT_STEPS_PER_EXECUTION,
        }
        return MetazooRunner(base, batches, weights, per_call[name])
    return RUNNERS[name](batches, weights, compiled=name == "torch-compile")


# == one implementation's subprocess ==========================================================
def set_threads(framework: str, threads: int) -> str:
    """Set the thread pools of the framework; return its version string."""
    if framework == "metazoo":
        import keras
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        return f"TensorFlow {tf.__version__}, Keras {keras.__version__}"
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(threads)
    return f"torch {torch.__version__}"


def worker(args) -> None:
    """Answer the parent's commands (one JSON line each on stdin) on the original stdout;
    anything the libraries print goes to stderr."""
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    began = time.perf_counter()
    framework = IMPLEMENTATIONS[args.worker][2]
    version = set_threads(framework, args.threads)
    imported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if framework == "metazoo":
        import keras

        keras.utils.set_random_seed(args.seed)
    else:
        import torch

        torch.manual_seed(args.seed)
    batches, weights = load(args.folder, args.setup)
    runner = make_runner(args.worker, setups(args)[args.setup]["base"], batches, weights)
    started = {"version": version, "import_rss_mib": imported}
    replies.write(json.dumps(started | {"seconds": time.perf_counter() - began}) + "\n")
    for line in sys.stdin:
        command = json.loads(line)
        began = time.perf_counter()
        if command["do"] == "check":
            loss, grads = runner.check(batches[0])
            path = os.path.join(args.folder, f"{args.setup}-{args.worker}-gradients.npz")
            np.savez(path, *[np.asarray(g) for g in grads])
            reply = {"loss": loss, "path": path}
        elif command["do"] == "run":
            reply = {"steps": runner.run(command["steps"])}
            if command.get("warmup") and hasattr(runner, "warm_for"):
                runner.warm_for(args.steps)
        else:
            reply = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        reply["seconds"] = time.perf_counter() - began
        replies.write(json.dumps(reply) + "\n")
        if command["do"] == "exit":
            return


class Worker:
    """The parent's handle on one implementation's subprocess."""

    def __init__(self, name: str, setup: str, args):
        self.name, self.log = name, os.path.join(args.folder, f"{setup}-{name}.log")
        command = [sys.executable, os.path.abspath(__file__), "--worker", name, "--setup", setup]
        command += ["--folder", args.folder, "--threads", str(args.threads)]
        command += ["--seed", str(args.seed)] + (["--quick"] if args.quick else [])
        threads = str(args.threads)
        env = os.environ | {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
            )

    def reply(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            with open(self.log) as log:
                tail = log.read()[-3000:]
            raise RuntimeError(f"{self.name} stopped; the end of its log {self.log}:\n{tail}")
        return json.loads(line)

    def ask(self, do: str, **fields) -> dict:
        self.process.stdin.write(json.dumps({"do": do, **fields}) + "\n")
        self.process.stdin.flush()
        return self.reply()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


# == the parent ===============================================================================
def setups(args) -> dict:
    return QUICK_SETUPS if args.quick else SETUPS


def available(name: str, base: str, args) -> bool:
    label, bases, framework = IMPLEMENTATIONS[name]
    if base not in bases or (args.quick and name in QUICK_SKIPS):
        return False
    if name == "learn2learn":
        found = subprocess.run([sys.executable, "-c", "import learn2learn"], capture_output=True)
        return found.returncode == 0
    return True


def compare(reference: tuple, other: tuple) -> tuple[float, float, bool]:
    """`(max |gradient difference|, |loss difference|, within tolerance)`."""
    (loss_a, grads_a), (loss_b, grads_b) = reference, other
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(grads_a, grads_b, strict=True))
    scale = max(float(np.max(np.abs(a))) for a in grads_a)
    loss_diff = abs(loss_a - loss_b)
    return diff, loss_diff, diff <= 1e-4 + 1e-3 * scale and loss_diff <= 1e-4 + 1e-4 * abs(loss_a)


def measure(setup: str, args) -> dict:
    """Start the setup's workers, check them against metazoo, warm them up and time them
    round-robin; return per implementation its rates, warm-up, peak RSS and check."""
    base = setups(args)[setup]["base"]
    names = [name for name in IMPLEMENTATIONS if available(name, base, args)]
    workers = {name: Worker(name, setup, args) for name in names}
    try:
        results = {name: {"start": w.reply()} for name, w in workers.items()}
        for name, w in workers.items():
            checked = w.ask("check")
            with np.load(checked["path"]) as arrays:
                results[name]["check"] = (checked["loss"], [arrays[k] for k in arrays.files])
            results[name]["warmup"] = (
                checked["seconds"] + w.ask("run", steps=args.warmup, warmup=True)["seconds"]
            )
            print(
                f"  {setup} {name}: checked and warmed up in {results[name]['warmup']:.1f}s",
                flush=True,
            )
        reference = results["metazoo"]["check"]
        for name in names:
            results[name]["compare"] = compare(reference, results[name]["check"])
            results[name]["rates"] = []
        for round_ in range(args.repeats):
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                timed = workers[name].ask("run", steps=args.steps)
                results[name]["rates"].append(timed["steps"] / timed["seconds"])
        for name, w in workers.items():
            results[name]["peak_rss_mib"] = w.ask("exit")["peak_rss_mib"]
            results[name]["version"] = results[name]["start"]["version"]
    finally:
        for w in workers.values():
            w.close()
    return results


def table(setup: str, results: dict, args) -> tuple[str, bool]:
    """The setup's table and whether every check passed."""
    shapes = setups(args)[setup]
    window = (1, 1) if shapes["base"] == "mlp" else shapes["window"] or "of the bundled data"
    lines = [
        f"\n{setup}: {shapes['tasks']} tasks x ({shapes['support']} + {shapes['query']}), "
        f"base {shapes['base']} {UNITS[shapes['base']]}, window {window}",
        "| implementation | meta-steps/s (median) | min-max | warm-up s | peak RSS MiB "
        "(after import) | check: max abs grad diff / loss diff |",
        "|---|---|---|---|---|---|",
    ]
    passed = True
    for name, result in results.items():
        rates = result["rates"]
        diff, loss_diff, ok = result["compare"]
        passed &= ok
        lines.append(
            f"| {IMPLEMENTATIONS[name][0]} | {np.median(rates):,.1f} | {min(rates):,.1f}-"
            f"{max(rates):,.1f} | {result['warmup']:.1f} | {result['peak_rss_mib']:,.0f} "
            f"({result['start']['import_rss_mib']:,.0f}) | "
            f"{diff:.1e} / {loss_diff:.1e}{'' if ok else ' FAILED'} |"
        )
    ours = [name for name in results if name.startswith("metazoo")]
    peers = [name for name in results if not name.startswith("metazoo")]
    lines += [
        "\nmetazoo / peer (median of per-round ratios):",
        "| peer | " + " | ".join(IMPLEMENTATIONS[name][0] for name in ours) + " |",
        "|---|" + "---|" * len(ours),
    ]
    for peer in peers:
        ratios = [
            np.median(np.divide(results[name]["rates"], results[peer]["rates"])) for name in ours
        ]
        lines.append(
            f"| {IMPLEMENTATIONS[peer][0]} | " + " | ".join(f"{r:.2f}" for r in ratios) + " |"
        )
    return "\n".join(lines), passed


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Second-order MAML meta-steps/s of metazoo and PyTorch peers on the same "
        "tasks, weights and threads, interleaved, with peak RSS and a gradient check."
    )
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="threads (default: cores)"
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 5)")
    parser.add_argument(
        "--steps", type=int, default=None, help="meta-steps per round (default 200)"
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed meta-steps (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of tasks and weights (default 0)")
    parser.add_argument(
        "--setups", nargs="+", default=None, help=f"of {list(SETUPS)} (default all)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny shapes, one round of 5 steps, no torch.compile"
    )
    parser.add_argument(
        "--worker", choices=list(IMPLEMENTATIONS) + ["prepare"], help=argparse.SUPPRESS
    )
    parser.add_argument("--setup", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (1 if args.quick else 5)
    args.steps = args.steps or (5 if args.quick else 200)
    args.setups = args.setups or list(setups(args))
    unknown = sorted(set(args.setups) - set(setups(args)))
    if unknown:
        parser.error(f"--setups expected names of {list(setups(args))}. Received: {unknown}")
    for name in ("threads", "repeats", "steps", "warmup"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} expected an integer >= 1. Received: {getattr(args, name)}")
    if args.seed < 0:
        parser.error(f"--seed expected an integer >= 0. Received: {args.seed}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker == "prepare":
        for setup in args.setups:
            prepare(setup, setups(args)[setup], args.seed, args.folder)
        return 0
    if args.worker:
        worker(args)
        return 0
    began = time.perf_counter()
    passed, reports, versions = True, [], set()
    with tempfile.TemporaryDirectory(prefix="benchmark_peers-") as folder:
        args.folder = folder
        prepare_command = [sys.executable, os.path.abspath(__file__), "--worker", "prepare"]
        prepare_command += ["--folder", folder, "--seed", str(args.seed), "--setups", *args.setups]
        subprocess.run(prepare_command + (["--quick"] if args.quick else []), check=True)
        for setup in args.setups:
            results = measure(setup, args)
            report, ok = table(setup, results, args)
            print(report, flush=True)
            reports.append(report)
            passed &= ok
            versions |= {result["version"] for result in results.values()}
    print(
        f"\n{args.repeats} interleaved rounds x {args.steps} meta-steps after {args.warmup} "
        f"warm-up steps; one inner SGD step at lr {INNER_LR}, second order, Adam({OUTER_LR}) "
        f"outer; {args.threads} thread(s); seed {args.seed}.\n"
        f"{platform.processor() or platform.machine()}, os.cpu_count()={os.cpu_count()}, "
        f"{platform.platform()}, Python {platform.python_version()}, "
        f"{', '.join(sorted(versions))}; wall time {time.perf_counter() - began:.0f}s"
    )
    if not passed:
        print("A meta-gradient check FAILED: the implementations do not compute the same step.")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
