"""`xlm-train`: fairseq-train for a process that a cluster launcher started, on CPUs and GPUs alike.

torchrun and SLURM's srun start one process per rank and tell it its place in environment variables. fairseq reads
them itself (facebookresearch/fairseq `fairseq/distributed/utils.py: infer_init_method`), but assumes a GPU per
process: under torchrun it sets `device_id = rank % torch.cuda.device_count()` (ZeroDivisionError without CUDA), and
on a CPU its default `--distributed-world-size 1` skips the distributed setup altogether, so every rank trains alone,
silently; under srun it counts GPUs per node to size the world. `xlm-train` reads the launcher's variables instead
and passes them as fairseq's own flags, which make fairseq infer nothing (`--distributed-init-method`,
`--distributed-world-size`, `--distributed-rank`, `--distributed-no-spawn`, `--device-id` on CUDA, `--distributed-
backend gloo` without CUDA), then runs fairseq-train (`fairseq_cli/train.py: cli_main`) with them:

    torchrun --nnodes 2 --nproc-per-node 8 ... $(which xlm-train) DATA --task xlm_tlm ...
    srun xlm-train DATA --task xlm_tlm ...            # one task per GPU (or per CPU process)

Flags the user gives win; one that contradicts the launcher (another world size or rank) is an error naming it.
Without a launcher, xlm-train is fairseq-train. fairseq's files are not changed.

`refuse_fairseq_train_under_launcher`, called when the plugin is imported, turns a plain `fairseq-train` started by
torchrun or srun on a machine without CUDA (where fairseq's inference fails or trains each rank alone) into one line
naming xlm-train."""

import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import List, Mapping, Optional

from .errors import ConfigError

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")  # what torchrun sets for every worker
USAGE = """\
xlm-train: fairseq-train started by torchrun or SLURM's srun, on GPUs or CPUs (docs/gpu.md, "Several processes and
nodes"). It reads the launcher's RANK/WORLD_SIZE/LOCAL_RANK (torchrun) or SLURM_PROCID/SLURM_STEP_NUM_TASKS/
SLURM_LOCALID/SLURM_STEP_NODELIST (srun) and passes them to fairseq as --distributed-* flags; every other flag is
fairseq-train's:
  torchrun --nnodes 2 --nproc-per-node 8 --node-rank $NODE_RANK --master-addr $MASTER --master-port 29500 \\
      $(which xlm-train) DATA --task xlm_tlm ...
  srun xlm-train DATA --task xlm_tlm ...

"""


@dataclass
class Launch:
    """A process's place in a job, as its launcher told it."""

    launcher: str  # "torchrun" or "srun"
    world_size: int
    rank: int
    local_rank: int
    init_method: str


# ------------------------------------------------------------------------------------------------ launchers
def _int(env: Mapping[str, str], name: str, launcher: str) -> int:
    try:
        return int(env[name])
    except (KeyError, ValueError):
        raise ConfigError(
            f"{name}={env.get(name)!r}: {launcher} sets it to an integer; start under {launcher}"
        ) from None


def torchrun_launch(env: Mapping[str, str]) -> Optional[Launch]:
    """torchrun's workers (and torch.distributed.launch's): env:// reads MASTER_ADDR and MASTER_PORT itself."""
    if not all(name in env for name in TORCHRUN_VARIABLES):
        return None
    check_restartable(env)
    world, rank = _int(env, "WORLD_SIZE", "torchrun"), _int(env, "RANK", "torchrun")
    local = _int(env, "LOCAL_RANK", "torchrun") if "LOCAL_RANK" in env else 0
    return Launch("torchrun", world, rank, local, "env://")


def check_restartable(env: Mapping[str, str]) -> None:
    """torchrun --max-restarts N restarts the whole worker group when a worker dies. Its workers then find their
    process group's addresses in the store the agent shares with them (TORCHELASTIC_USE_AGENT_STORE), where the
    group they replace left its own: a restarted rank connects to a dead one and the job fails (seen with gloo on
    torch 2.13, the static and the c10d rendezvous alike). torchrun started with TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1
    and the c10d rendezvous gives each round a fresh store (torch/distributed/elastic/rendezvous/dynamic_rendezvous.py:
    use_agent_store; the static rendezvous always shares). Refused at the first start, not at the first failure."""
    restarts = env.get("TORCHELASTIC_MAX_RESTARTS", "0")
    if restarts.isdigit() and int(restarts) > 0 and env.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        raise ConfigError(
            f"torchrun --max-restarts {restarts}: restarted workers would read the addresses of the workers they "
            "replace from the store torchrun shares with them, and fail to connect; start torchrun with "
            "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 in its environment and --rdzv-backend c10d (docs/gpu.md)"
        )


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list (`node[01-04]`), as `scontrol show hostnames` expands it."""
    try:
        out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True)
    except FileNotFoundError:
        raise ConfigError(
            f"SLURM_STEP_NODELIST={nodelist}: scontrol is not on PATH to expand it; run under srun"
        ) from None
    except subprocess.CalledProcessError as e:
        raise ConfigError(
            f"SLURM_STEP_NODELIST={nodelist}: `scontrol show hostnames` failed: {e.stderr.strip()}"
        ) from None
    hosts = out.stdout.split()
    if not hosts:
        raise ConfigError(f"SLURM_STEP_NODELIST={nodelist}: `scontrol show hostnames` named no host")
    return hosts[0]


def slurm_port(env: Mapping[str, str], port_flag: Optional[str]) -> int:
    """--distributed-port, else MASTER_PORT, else one port per job from SLURM_JOB_ID (the same on every task of the
    job; two jobs sharing a first node get different ports unless their ids differ by a multiple of 20000)."""
    if port_flag is not None:
        if not port_flag.isdigit():
            raise ConfigError(f"--distributed-port {port_flag}: give a port number")
        if int(port_flag) > 0:
            return int(port_flag)
    if "MASTER_PORT" in env:
        return _int(env, "MASTER_PORT", "srun")
    return 40000 + _int(env, "SLURM_JOB_ID", "srun") % 20000


def srun_launch(env: Mapping[str, str], argv: List[str]) -> Optional[Launch]:
    """A task of an srun step. srun sets SLURM_STEP_NUM_TASKS for its tasks; a batch script's own environment has
    SLURM_NTASKS but no SLURM_STEP_* variables, so xlm-train run there without srun is one process, not rank 0 of
    a world whose other ranks never come."""
    if "SLURM_STEP_NUM_TASKS" not in env:
        return None
    world = _int(env, "SLURM_STEP_NUM_TASKS", "srun")
    rank, local = _int(env, "SLURM_PROCID", "srun"), _int(env, "SLURM_LOCALID", "srun")
    if world == 1:
        return Launch("srun", 1, 0, 0, "")
    nodes = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST")
    if not nodes:
        raise ConfigError("SLURM_STEP_NODELIST is not set: srun sets it; start xlm-train with srun")
    port = slurm_port(env, flag_value(argv, "--distributed-port"))
    return Launch("srun", world, rank, local, f"tcp://{first_host(nodes)}:{port}")


def launched_by(env: Mapping[str, str], argv: List[str]) -> Optional[Launch]:
    """torchrun's variables first: torchrun started inside an srun step sets them for its own workers."""
    return torchrun_launch(env) or srun_launch(env, argv)


# ------------------------------------------------------------------------------------------------ flags
def flag_value(argv: List[str], *names: str) -> Optional[str]:
    """The value of the last `--flag value` / `--flag=value` among `names` in argv (argparse: the last one wins)."""
    found = None
    for i, arg in enumerate(argv):
        flag, eq, value = arg.partition("=")
        if flag in names:
            found = value if eq else (argv[i + 1] if i + 1 < len(argv) else None)
    return found


def cuda_devices(argv: List[str]) -> int:
    """The GPUs this process will train on (0 with --cpu)."""
    if "--cpu" in argv:
        return 0
    import torch

    return torch.cuda.device_count()


def distributed_flags(launch: Launch, argv: List[str], gpus: int) -> List[str]:
    """fairseq's flags for this process's place in the job, those the user gave left as given."""
    given = {
        name: flag_value(argv, name)
        for name in ("--distributed-world-size", "--distributed-rank", "--distributed-init-method")
    }
    for name, value in (("--distributed-world-size", launch.world_size), ("--distributed-rank", launch.rank)):
        if given[name] is not None and given[name].lstrip("-").isdigit() and int(given[name]) != value:
            raise ConfigError(
                f"{name} {given[name]}: {launch.launcher} started this process as {value} "
                f"({'world size' if 'world' in name else 'rank'}); drop the flag, xlm-train reads it from the launcher"
            )
    if launch.world_size == 1:
        return []
    flags = ["--distributed-world-size", str(launch.world_size), "--distributed-rank", str(launch.rank)]
    if given["--distributed-init-method"] is None:
        flags += ["--distributed-init-method", launch.init_method]
    if "--distributed-no-spawn" not in argv:
        flags.append("--distributed-no-spawn")  # the launcher started one process per rank already
    if gpus and flag_value(argv, "--device-id", "--local_rank") is None:
        flags += ["--device-id", str(launch.local_rank % gpus)]  # all of the node's GPUs visible, or one per task
    if not gpus and flag_value(argv, "--distributed-backend") is None:
        flags += ["--distributed-backend", "gloo"]  # fairseq's default, nccl, needs GPUs
    return flags


def package_dir() -> str:
    return os.path.dirname(os.path.abspath(__file__))


def train_argv(argv: List[str], env: Mapping[str, str]) -> List[str]:
    """fairseq-train's command line for this process: argv (without the program name), the launcher's flags, and
    --user-dir naming this package when it is not given (so the checkpoint's config names the plugin)."""
    launch = launched_by(env, argv)
    extra = distributed_flags(launch, argv, cuda_devices(argv)) if launch else []
    if flag_value(argv, "--user-dir") is None:
        extra += ["--user-dir", package_dir()]
    return argv + extra


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        sys.stdout.write(USAGE)
        sys.stdout.flush()
        from .cli_hooks import install_help_epilogue

        install_help_epilogue(["fairseq-train", *argv])  # the task's own flags after fairseq's help
    try:
        full = train_argv(argv, os.environ)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # fairseq's own tasks set up the root logger when imported (fairseq/tasks/text_to_speech.py), as this package's
    # import did; fairseq_cli/train.py sets up fairseq-train's (time stamps, stdout) only where none is: let it
    for handler in list(logging.root.handlers):
        logging.root.removeHandler(handler)
    from fairseq_cli.train import cli_main

    sys.argv = [sys.argv[0], *full]
    cli_main()
    return 0


# ------------------------------------------------------------------------------------------------ fairseq-train
def refuse_fairseq_train_under_launcher(argv=None, env=None) -> None:
    """A plain fairseq-train started by torchrun or srun with WORLD_SIZE > 1 on a machine without CUDA: fairseq's
    launch code would divide by the GPU count or train each rank alone. Exit with one line naming xlm-train."""
    from .cli_hooks import fairseq_command

    argv = sys.argv if argv is None else argv
    env = os.environ if env is None else env
    name = os.path.basename(argv[0]) if argv else ""
    if not fairseq_command(argv) or name.replace("-", "_") not in ("fairseq_train", "train.py"):
        return
    if any(a in ("-h", "--help") for a in argv[1:]) or flag_value(argv[1:], "--distributed-init-method") is not None:
        return
    try:
        launch = launched_by(env, argv[1:])
    except ConfigError:
        return  # not a launch this check can read: fairseq's own code has the word
    if launch is None or launch.world_size <= 1 or cuda_devices([]) > 0:
        return
    sys.stderr.write(
        f"error: fairseq-train started by {launch.launcher} ({launch.world_size} processes) on a machine without "
        f"CUDA: fairseq's launch code needs a GPU per process and would fail or train each rank alone; start "
        f"`$(which xlm-train)` instead of fairseq-train, with the same flags (docs/gpu.md)\n"
    )
    sys.stderr.flush()
    sys.exit(2)
