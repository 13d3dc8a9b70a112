"""Beyond one process, as clusters launch it (docs/gpu.md, "Several processes and nodes"), on one host: gloo,
127.0.0.1, --cpu. torchrun with two agents (`--nnodes 2 --nproc-per-node 1`) stands in for two nodes, the SLURM
sbatch example runs under stand-ins for srun/scontrol that set what SLURM sets, a rank is SIGKILLed under
`torchrun --max-restarts 1`, and checkpoints resume on another number of processes, mid-epoch too. Runs that must
take the same updates train with SGD and compare gradients (helpers_cli.assert_same_gradients: a scaled or missing
gradient shows), and the per-step metrics they log (`en_mlm_ppl`, `fr_mlm_acc`, ..., summed over the ranks).

One module fixture runs every training once (tiny models; MLM+TLM 8 updates, 5 an epoch, a checkpoint every 2, two
runs validating as fairseq does by default; UNMT 4), the tests read the runs. The rank is killed by a wrapper of
xlm-train written into the test's folder (the fault is the test's, not the product's), which also notes the updates a
rank makes on fairseq's dummy batch. xlm_fairseq/launch.py's rules (flags from the launcher's variables, the one-line
errors) and the resharding iterator are checked without starting processes."""

import os
import re
import subprocess
import sys

import pytest
from fairseq.data import ListDataset
from fairseq.data.iterators import EpochBatchIterator

from xlm_fairseq import launch
from xlm_fairseq.data.resharding_iterator import ReshardingEpochBatchIterator
from xlm_fairseq.errors import CheckpointError, ConfigError

from .helpers_cli import (
    BIN,
    ENV,
    USER_DIR,
    assert_same_gradients,
    cli,
    free_port,
    lm_train_args,
    load_model_state,
    run,
    train_losses,
    user_error,
    valid_metrics,
)
from .helpers_data import make_data_bin

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SBATCH = os.path.join(ROOT, "examples", "slurm", "train.sbatch")
LR = 0.5
# --epoch-size 32 gives 9 batches an epoch here (whole XLM iterations up to 32 nominal sentences:
# data/training_schedule.py): 5 updates of 2 batches, the 5th of one (with 2 processes rank 1 takes fairseq's dummy
# batch there, weighted 0). Update 5 ends epoch 1 (checkpoint1.pt); the checkpoints of updates 2, 4 and 6 are mid-epoch
SGD = ["--optimizer", "sgd", "--lr", LR, "--save-interval-updates", 2, "--ddp-backend", "legacy_ddp"]
NO_VALID = ["--disable-validation"]  # fairseq validates at every checkpoint: only the runs that compare it do
KILL_AT = 8  # rank 1 dies as it starts update 8: rank 0 has saved update 6 by then (it took part in update 7)
UNMT = ["--ae-steps", "en,fr", "--bt-steps", "en-fr-en,fr-en-fr", "--word-shuffle", 3, "--word-dropout", 0.1]
UNMT += ["--word-blank", 0.1]

# xlm-train, except that rank $KILL_RANK SIGKILLs itself as it starts update $KILL_AT, on torchrun's first attempt,
# and that every rank notes in $DUMMY_MARK each update it makes on fairseq's dummy batch (the rank has no batch of the
# epoch left: fairseq/trainer.py, _prepare_sample), with the keys of that batch
KILL_RANK_PY = """\
import os, signal, sys
from fairseq.trainer import Trainer
from xlm_fairseq.launch import main

train_step = Trainer.train_step
rank, first_attempt = os.environ["RANK"], os.environ["TORCHELASTIC_RESTART_COUNT"] == "0"


def observed_train_step(self, samples, *args, **kwargs):
    update = self.get_num_updates() + 1
    if rank == os.environ["KILL_RANK"] and first_attempt and update == int(os.environ["KILL_AT"]):
        with open(os.environ["KILL_MARK"], "w") as f:
            f.write(f"rank {rank} pid {os.getpid()} update {update}")
        os.kill(os.getpid(), signal.SIGKILL)
    if not all(samples):
        with open(os.environ["DUMMY_MARK"], "a") as f:
            f.write(f"rank {rank} update {update}: {sorted(self._dummy_batch)}\\n")
    return train_step(self, samples, *args, **kwargs)


Trainer.train_step = observed_train_step
sys.exit(main())
"""

# srun: the job's SLURM_NTASKS tasks of the command, spread over SLURM_JOB_NODELIST like --ntasks-per-node, each
# with the variables srun sets for a task of a step; --kill-on-bad-exit stops the others when one fails
SRUN_PY = """\
#!{python}
import os, subprocess, sys, time

args = sys.argv[1:]
while args and args[0].startswith("-"):
    args.pop(0)
ntasks, nnodes = int(os.environ["SLURM_NTASKS"]), int(os.environ["SLURM_NNODES"])
per_node = ntasks // nnodes
procs = []
for rank in range(ntasks):
    env = dict(os.environ, SLURM_STEP_ID="0", SLURM_STEPID="0", SLURM_PROCID=str(rank),
               SLURM_LOCALID=str(rank % per_node), SLURM_NODEID=str(rank // per_node),
               SLURM_STEP_NUM_TASKS=str(ntasks), SLURM_STEP_NUM_NODES=str(nnodes),
               SLURM_STEP_NODELIST=os.environ["SLURM_JOB_NODELIST"],
               SLURM_STEP_TASKS_PER_NODE=f"{{per_node}}(x{{nnodes}})")
    procs.append(subprocess.Popen(args, env=env))
status = 0
while any(p.poll() is None for p in procs):
    if any(p.poll() not in (None, 0) for p in procs):
        for p in procs:
            if p.poll() is None:
                p.kill()
    time.sleep(0.2)
sys.exit(max(abs(p.returncode) for p in procs))
"""

# scontrol show hostnames LIST: one host a line, `prefix[a-b]` ranges expanded (zero-padded as written)
SCONTROL_PY = """\
#!{python}
import re, sys

assert sys.argv[1:3] == ["show", "hostnames"], sys.argv
for part in sys.argv[3].split(","):
    m = re.fullmatch(r"(.*)\\[(\\d+)-(\\d+)\\]", part)
    print("\\n".join(f"{{m[1]}}{{i:0{{len(m[2])}}d}}" for i in range(int(m[2]), int(m[3]) + 1)) if m else part)
"""


def lm_args(data, save, *extra, validate=False):
    return lm_train_args(data, save, *SGD, *([] if validate else NO_VALID), *extra, max_update=8, epoch_size=32)


def mt_args(data, save, *extra):
    return [
        data,
        *("--user-dir", USER_DIR, "--task", "xlm_unsupervised_mt", "--langs", "en,fr", "--arch", "xlm_tiny"),
        *("--criterion", "xlm_mt_loss", "--max-tokens", 300, "--batch-size", 8, "--epoch-size", 64),
        *("--max-update", 4, "--save-dir", save, "--log-format", "simple", "--log-interval", 1, "--num-workers", 0),
        *("--seed", 1, "--no-progress-bar", "--cpu", "--no-epoch-checkpoints", *SGD, *NO_VALID, *UNMT, *extra),
    ]


def start(cmd, env):
    return subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def together(cmds, env=ENV, timeout=300):
    """Start the commands at once (the two agents of a job); their outputs, the first one's first. A failure shows
    every output."""
    procs = [start(cmd, env) for cmd in cmds]
    outs = [p.communicate(timeout=timeout)[0] for p in procs]
    if any(p.returncode for p in procs):
        raise AssertionError(
            "\n\n".join(f"{cmd[:6]} -> {p.returncode}\n{o[-6000:]}" for cmd, p, o in zip(cmds, procs, outs))
        )
    return outs


def torchrun(*args):
    return [os.path.join(BIN, "torchrun"), *args]


def log(proc):
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("launch")
    data = make_data_bin(str(root), langs=("en", "fr"), pairs=(("en", "fr"),))
    out = {"root": root}
    single = lm_args(data, root / "single", "--update-freq", 2, validate=True)
    out["single"] = log(cli("fairseq-train", *single))

    # two nodes launched as for fault tolerance (c10d rendezvous, --max-restarts 1), validating as fairseq does by
    # default (once before training, then at every checkpoint); rank 1 dies at update 8
    (root / "kill_rank.py").write_text(KILL_RANK_PY)
    mark, dummies = root / "killed", root / "dummy_batches"
    env = dict(ENV, KILL_RANK="1", KILL_AT=str(KILL_AT), KILL_MARK=str(mark), TORCH_DISABLE_SHARE_RDZV_TCP_STORE="1")
    env.update(DUMMY_MARK=str(dummies))
    elastic = ["--nnodes", 2, "--nproc-per-node", 1, "--max-restarts", 1, "--monitor-interval", 0.2]
    elastic += ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "--rdzv-id", "killed"]
    two_nodes = lm_args(data, root / "two_nodes", validate=True)
    out["two_nodes"] = together([torchrun(*elastic, root / "kill_rank.py", *two_nodes) for _ in range(2)], env=env)
    out["kill_mark"] = mark.read_text() if mark.exists() else ""
    out["dummy_batches"] = dummies.read_text() if dummies.exists() else ""

    # 2 processes' checkpoint of update 4 (mid-epoch 1, 4 batches taken by each), continued by one with --update-freq 2
    two_to_one = ["--update-freq", 2, "--continue-once", root / "two_nodes" / "checkpoint_1_4.pt"]
    out["two_to_one"] = log(cli("fairseq-train", *lm_args(data, root / "two_to_one", *two_to_one)))

    # the sbatch example as `sbatch --nodes 2 --ntasks-per-node 1` starts it (srun and scontrol stood in for),
    # continuing the 1-process run's checkpoint of update 5 on 2 tasks
    bindir = root / "bin"
    bindir.mkdir()
    for name, text in (("srun", SRUN_PY), ("scontrol", SCONTROL_PY)):
        (bindir / name).write_text(text.format(python=sys.executable))
        (bindir / name).chmod(0o755)
    slurm = dict(ENV, PATH=f"{bindir}:{BIN}:{os.environ['PATH']}", MASTER_PORT=str(free_port()))
    slurm.update(SLURM_JOB_ID="4242", SLURM_JOB_NODELIST="127.0.0.[1-2]", SLURM_NNODES="2", SLURM_JOB_NUM_NODES="2")
    slurm.update(SLURM_NTASKS="2", SLURM_NTASKS_PER_NODE="1", SLURM_TASKS_PER_NODE="1(x2)")
    slurm.update(SLURM_NODEID="0", SLURM_PROCID="0", SLURM_LOCALID="0")  # the batch script's own step
    one_to_two = ["--continue-once", root / "single" / "checkpoint1.pt"]
    out["slurm"] = log(run(["bash", SBATCH, *lm_args(data, root / "slurm", *one_to_two)], env=slurm, timeout=300))

    # UNMT (denoising and back-translation steps) on two nodes, README's static form, and on one process
    port = free_port()
    static = ["--nnodes", 2, "--nproc-per-node", 1, "--master-addr", "127.0.0.1", "--master-port", port]
    xlm_train = os.path.join(BIN, "xlm-train")
    nodes = [torchrun(*static, "--node-rank", n, xlm_train, *mt_args(data, root / "mt_two_nodes")) for n in (0, 1)]
    out["mt_two_nodes"] = together(nodes)[0]
    out["mt_single"] = log(cli("fairseq-train", *mt_args(data, root / "mt_single", "--update-freq", 2)))
    return out


def state(runs, name, file="checkpoint_last.pt"):
    return load_model_state(runs["root"] / name / file)


def after(log_text: str, update: int) -> str:
    """The log without its train_inner lines of updates up to `update` (what a resumed run compares)."""
    keep = [
        line
        for line in log_text.splitlines()
        if "train_inner" not in line or int(re.search(r"num_updates=(\d+)", line).group(1)) > update
    ]
    return "\n".join(keep)


def step_metrics(log_text: str) -> dict:
    """{num_updates: {metric: value}}: the per-step metrics (`en_mlm_ppl`, `fr_ae_acc`, `mlm_ppl`, ...) of each
    train_inner line."""
    out = {}
    for line in log_text.splitlines():
        if "train_inner" in line:
            fields = dict(re.findall(r"([\w-]+)=([^,\s]+)", line))
            out[int(fields["num_updates"])] = {k: float(v) for k, v in fields.items() if k.endswith(("_ppl", "_acc"))}
    return out


def assert_same_step_metrics(log_text: str, reference: str):
    """The per-step metrics of every update equal the reference run's as printed: fairseq prints 6 significant
    digits ({:g}), accuracies are rounded to 2 decimals (step_metrics.acc), and two runs that sum the same numbers in
    another order may round either way."""
    got, want = step_metrics(log_text), step_metrics(reference)
    assert got and got.keys() == want.keys(), (sorted(got), sorted(want))
    for update in got:
        assert got[update] == pytest.approx(want[update], rel=1e-4, abs=0.011), (update, got[update], want[update])


def epochs(log_text: str) -> dict:
    """{num_updates: epoch} of the train_inner lines."""
    return {int(u): int(e) for e, u in re.findall(r"train_inner \| epoch (\d+):.*[ ,]num_updates=(\d+),", log_text)}


def valid_by_update(log_text: str) -> dict:
    """{num_updates: {metric: value}}: loss and per-step metrics of each validation."""
    return {
        int(row["num_updates"]): {k: v for k, v in row.items() if k == "loss" or k.endswith(("_ppl", "_acc"))}
        for row in valid_metrics(log_text)
    }


def rank0_log(agents):
    """Rank 0's log (the other ranks log warnings only) out of the agents' outputs, split at the restart: the
    rendezvous may place rank 0 on either agent, in each attempt."""
    loaded = [out for out in agents if "Loaded checkpoint" in out]
    assert len(loaded) == 1, agents[0][-3000:]
    before, _, resumed = loaded[0].partition("Loaded checkpoint")
    return before + "".join(out for out in agents if out is not loaded[0]), "Loaded checkpoint" + resumed


# ------------------------------------------------------------------------------------------------ nodes
def test_torchrun_two_nodes_train_mlm_tlm_as_one_process_with_update_freq_2(runs):
    """The multi-node torchrun command through xlm-train, two agents for two nodes: the gradients of one process
    accumulating the same batches, and its parameters at the end (across the restart of the test below)."""
    before, resumed = rank0_log(runs["two_nodes"])
    assert "distributed init (rank 0): env://" in before
    assert_same_gradients(before + resumed, runs["single"], state(runs, "two_nodes"), state(runs, "single"), LR)


def test_per_step_metrics_of_two_nodes_sum_both_ranks_steps_as_one_process(runs):
    """Each rank runs its own batch of an update, of another step where the schedule alternates them (update 1: en
    MLM on rank 0, fr MLM on rank 1): the train_inner lines' `{step}_ppl`/`{step}_acc` sum both ranks' counters, as
    one process summing its two batches does. fairseq's all_reduce_dict sums tensors and Python numbers in separate
    buffers: a counter that is a tensor on one rank and a number on the other lands on another key."""
    assert {"en_mlm_acc", "fr_mlm_acc"} <= step_metrics(runs["single"])[1].keys()  # two steps in update 1
    before, resumed = rank0_log(runs["two_nodes"])
    assert_same_step_metrics(before + resumed, runs["single"])


def test_validation_on_two_nodes_after_a_dummy_batch_gives_one_process_valid_metrics(runs):
    """fairseq validates once before training and at every checkpoint, and each validation makes a validation batch
    its dummy batch. Epoch 1's 9 batches leave rank 1 none at update 5: it trains on that dummy (weighted 0), which has
    no schedule iteration (the criterion's λ must not ask for one). The validations (updates 2, 4, 5, 6 and, after the
    restart, 8) sum both ranks' shares of the valid set into one process's numbers."""
    notes = runs["dummy_batches"].splitlines()
    assert notes and all("'iteration'" not in note for note in notes), notes  # dummies are validation batches
    assert "rank 1 update 5" in runs["dummy_batches"], notes
    before, resumed = rank0_log(runs["two_nodes"])
    got, want = valid_by_update(before + resumed), valid_by_update(runs["single"])
    assert sorted(got) == sorted(want) == [2, 4, 5, 6, 8], (got, want)
    for update in got:
        assert got[update] == pytest.approx(want[update], rel=1e-4, abs=0.011), (update, got[update], want[update])


def test_torchrun_two_nodes_train_unmt_with_back_translation_as_one_process(runs):
    """README's static form (--node-rank, --master-addr): denoising and back-translation steps (generated inside
    the training step) give one process's gradients and per-step metrics."""
    assert "en-fr-en_bt_ppl" in runs["mt_single"] and "fr_ae_ppl" in runs["mt_single"]  # both kinds of step ran
    assert_same_gradients(
        runs["mt_two_nodes"], runs["mt_single"], state(runs, "mt_two_nodes"), state(runs, "mt_single"), LR
    )
    assert_same_step_metrics(runs["mt_two_nodes"], runs["mt_single"])


# ------------------------------------------------------------------------------------------------ a rank dies
def test_killed_rank_resumes_from_checkpoint_last_with_the_same_losses(runs):
    """Rank 1 SIGKILLed as it starts update 8 (mid-epoch 2); torchrun --max-restarts 1 restarts both nodes' workers,
    which load checkpoint_last.pt (update 6, mid-epoch) and train updates 7-8 with the uninterrupted run's losses:
    one process with --update-freq 2, the same batches, its losses as printed (4 decimals: a difference in summation
    order may move the last one)."""
    assert runs["kill_mark"].startswith("rank 1 pid ")
    assert "exitcode: -9" in "".join(runs["two_nodes"])  # torchrun saw the SIGKILL
    before, resumed = rank0_log(runs["two_nodes"])
    assert resumed.startswith(f"Loaded checkpoint {runs['root'] / 'two_nodes' / 'checkpoint_last.pt'} (epoch 2 @ 6 ")
    assert set(train_losses(before)) == set(range(1, KILL_AT)) and set(train_losses(resumed)) == {7, 8}
    straight = train_losses(runs["single"])
    assert re.search(r"epoch 002: .*num_updates=8,", runs["single"])  # updates 6-8 are one epoch: 6 is mid-epoch
    for update, loss in train_losses(resumed).items():
        assert loss == pytest.approx(straight[update], abs=1e-4), (update, loss, straight)


# ------------------------------------------------------------------------------------------------ resume
def test_mid_epoch_checkpoint_of_two_processes_resumes_on_one_with_update_freq_2(runs):
    """checkpoint_1_4.pt written by 2 processes mid-epoch 1 (4 batches taken by each, 8 of the epoch's 9), continued
    by one with --update-freq 2: it goes on at batch 8, and updates 5-8 are those of the 1-process run all along
    (fairseq's own count would go on at batch 4: update 5 would train batches 4 and 5)."""
    resumed, straight = runs["two_to_one"], after(runs["single"], 4)
    assert "checkpoint_1_4.pt (epoch 1 @ 4 updates)" in resumed
    assert set(train_losses(resumed)) == {5, 6, 7, 8}
    assert_same_gradients(resumed, straight, state(runs, "two_to_one"), state(runs, "single"), LR)
    assert epochs(resumed) == epochs(straight) == {5: 1, 6: 2, 7: 2, 8: 2}  # epoch 1's last batch, then epoch 2
    assert_same_step_metrics(resumed, straight)


def test_slurm_sbatch_example_resumes_a_one_process_checkpoint_on_two_tasks(runs):
    """examples/slurm/train.sbatch run with bash as `sbatch --nodes 2 --ntasks-per-node 1` would: srun starts
    xlm-train per task, which connects them at the first node of SLURM_JOB_NODELIST (127.0.0.[1-2] -> 127.0.0.1).
    Given the checkpoint of update 5 of one process with --update-freq 2, the 2 tasks make that run's updates 6-8."""
    resumed = runs["slurm"]
    assert "distributed init (rank 0): tcp://127.0.0.1:" in resumed
    assert "checkpoint1.pt (epoch 2 @ 5 updates)" in resumed
    assert set(train_losses(resumed)) == {6, 7, 8}
    assert_same_gradients(resumed, after(runs["single"], 5), state(runs, "slurm"), state(runs, "single"), LR)
    assert_same_step_metrics(resumed, after(runs["single"], 5))


# ------------------------------------------------------------------------------------------------ the rules
TORCHRUN = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"}


def test_torchrun_variables_become_fairseqs_flags():
    flags = launch.train_argv(["data", "--cpu"], TORCHRUN)
    assert flags == [
        "data",
        "--cpu",
        "--distributed-world-size",
        "4",
        "--distributed-rank",
        "3",
        "--distributed-init-method",
        "env://",
        "--distributed-no-spawn",
        "--distributed-backend",
        "gloo",
        "--user-dir",
        launch.package_dir(),
    ]
    gpu = launch.distributed_flags(launch.torchrun_launch(TORCHRUN), ["data"], gpus=8)
    assert gpu[gpu.index("--device-id") + 1] == "1" and "--distributed-backend" not in gpu
    one_gpu_per_task = launch.distributed_flags(launch.torchrun_launch(TORCHRUN), ["data"], gpus=1)
    assert one_gpu_per_task[one_gpu_per_task.index("--device-id") + 1] == "0"
    assert launch.train_argv(["data"], {}) == ["data", "--user-dir", launch.package_dir()]  # no launcher: fairseq-train


def test_flags_the_user_gives_win_and_contradictions_are_one_line():
    given = ["d", "--cpu", "--distributed-init-method", "tcp://h:1", "--distributed-backend", "mpi", "--user-dir", "u"]
    flags = launch.train_argv(given, TORCHRUN)
    assert flags.count("--distributed-init-method") == 1 and flags.count("--distributed-backend") == 1
    assert flags.count("--user-dir") == 1
    with pytest.raises(ConfigError, match=r"--distributed-world-size 1: torchrun started this process as 4"):
        launch.train_argv(["d", "--distributed-world-size=1"], TORCHRUN)
    with pytest.raises(ConfigError, match=r"--distributed-rank 0: torchrun"):
        launch.train_argv(["d", "--distributed-rank", "0"], TORCHRUN)


def test_torchrun_restarts_need_a_store_per_round():
    restartable = dict(TORCHRUN, TORCHELASTIC_MAX_RESTARTS="1", TORCHELASTIC_USE_AGENT_STORE="False")
    assert "--distributed-rank" in launch.train_argv(["d", "--cpu"], restartable)
    with pytest.raises(ConfigError, match="TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1"):
        launch.train_argv(["d", "--cpu"], dict(restartable, TORCHELASTIC_USE_AGENT_STORE="True"))


def test_slurm_variables_become_fairseqs_flags(tmp_path, monkeypatch):
    scontrol = tmp_path / "scontrol"
    scontrol.write_text(SCONTROL_PY.format(python=sys.executable))
    scontrol.chmod(0o755)
    task = {"SLURM_STEP_NUM_TASKS": "16", "SLURM_PROCID": "9", "SLURM_LOCALID": "1", "SLURM_JOB_ID": "123"}
    task.update(SLURM_STEP_NODELIST="gpu[07-08]")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")  # first_host runs scontrol from PATH
    got = launch.srun_launch(task, ["d"])
    assert launch.srun_launch(task, ["d", "--distributed-port", "2000"]).init_method == "tcp://gpu07:2000"
    assert (got.world_size, got.rank, got.local_rank, got.init_method) == (16, 9, 1, "tcp://gpu07:40123")
    batch_script = {k: v for k, v in task.items() if not k.startswith("SLURM_STEP")}  # sbatch's own step: no srun
    assert launch.launched_by(dict(batch_script, SLURM_NTASKS="16"), ["d"]) is None


def test_plain_fairseq_train_under_torchrun_without_cuda_names_xlm_train(tmp_path):
    """What the issue saw: on a machine without CUDA fairseq's launch inference divides by the device count
    (ZeroDivisionError) with --distributed-world-size 2, and without it (a CPU's default world size is 1) trains
    every rank alone, silently. The plugin, imported through --user-dir before that code runs, stops with one line."""
    env = dict(ENV, **dict(TORCHRUN, WORLD_SIZE="2", RANK="1"))
    args = ["data-bin", "--user-dir", USER_DIR, "--task", "xlm_tlm", "--langs", "en,fr", "--arch", "xlm_tiny", "--cpu"]
    proc = run([os.path.join(BIN, "fairseq-train"), *args, "--save-dir", tmp_path], check=False, env=env)
    line = user_error(proc)
    assert "fairseq-train started by torchrun (2 processes)" in line and "xlm-train" in line, line


# ------------------------------------------------------------------------------------------------ mid-epoch, resharded
def epoch_iterator(num_shards, shard_id):
    """Ten batches of one sample each (batch i is sample i), in order, for one of `num_shards` processes."""
    return ReshardingEpochBatchIterator(
        dataset=ListDataset(list(range(10))),
        collate_fn=lambda samples: samples[0],
        batch_sampler=[[i] for i in range(10)],
        num_shards=num_shards,
        shard_id=shard_id,
        disable_shuffling=True,
    )


def stopped_after(num_shards, taken):
    """The iterator state rank 0 of `num_shards` processes saves after taking `taken` batches."""
    itr = epoch_iterator(num_shards, 0)
    epoch = itr.next_epoch_itr(shuffle=False)
    assert [next(epoch) for _ in range(taken)] == list(range(0, taken * num_shards, num_shards))
    return itr.state_dict()


def resumed(state, num_shards, shard_id):
    itr = epoch_iterator(num_shards, shard_id)
    itr.load_state_dict(state)
    return list(itr.next_epoch_itr(shuffle=False))


def test_mid_epoch_iterator_state_resumes_at_the_same_batch_on_another_number_of_processes():
    """2 processes stopped after 2 batches each (batches 0-3 of the epoch taken): one process goes on at batch 4,
    where fairseq's own iterator goes on at batch 2 (the premise). 1 process stopped after 4: 2 processes go on at
    4 and 5. A count the new number cannot share is one line."""
    two = stopped_after(2, 2)
    assert resumed(two, 1, 0) == [4, 5, 6, 7, 8, 9]
    plain = EpochBatchIterator(epoch_iterator(1, 0).dataset, lambda s: s[0], [[i] for i in range(10)])
    plain.load_state_dict(two)
    assert list(plain.next_epoch_itr(shuffle=False)) == [2, 3, 4, 5, 6, 7, 8, 9]
    one = stopped_after(1, 4)
    assert (resumed(one, 2, 0), resumed(one, 2, 1)) == ([4, 6, 8], [5, 7, 9])
    assert resumed(stopped_after(2, 3), 2, 1) == [7, 9]  # the same number: fairseq's count as it is
    with pytest.raises(CheckpointError, match="after 3 batches of epoch 1 .* 2 processes cannot share evenly"):
        resumed(stopped_after(1, 3), 2, 0)
