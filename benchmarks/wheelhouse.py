"""The wheels an offline GPU node needs to run this project (benchmarks/gpu_suite.sh --wheels DIR), fetched here where
the package index is reachable: every package this project needs at run time, found from the requirements of the
installed project (this virtualenv's metadata, markers evaluated for the node's Python), in the versions installed
here, except
- torch and what torch itself requires (the node's own torch brings them: CUDA builds are the node's business),
- what the node already has: `--node-packages FILE`, one package per line as `python3 -m pip list --format=freeze`
  prints them on the node (names are enough; that command needs no index),
plus pytest and pytest-xdist (the suite runs tests/test_gpu.py), pip (the suite installs with it: a node's python
may lack ensurepip and pip) and this project's own wheel. Binary wheels for the node's Python and platform where the
index has them; a package published only as source (antlr4-python3-runtime) is built here into a pure-Python wheel,
and one that is not pure Python stops with its name.

    python benchmarks/wheelhouse.py DIR [--python 3.12] [--node-packages FILE]   # `make wheelhouse` runs this
    python benchmarks/wheelhouse.py DIR --project-only       # this project's wheel alone (offline; tests use it)
    python benchmarks/wheelhouse.py --check-installed        # on the node, after the install (gpu_suite.sh)

DIR ends up holding the .whl files and wheels.txt (name, version, size); the last line is the folder's size.
--check-installed prints one line: whether every requirement of the project and of the suite, followed recursively
(not into torch's own: the node's torch brings them), is installed in a version that its dependants accept; the exit
status is 1 where one is missing (the suite cannot run), 0 otherwise (a version outside a range may still work).
"""

import argparse
import glob
import importlib.metadata as md
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # --check-installed on a node without packaging: pip's own copy
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT = "xlm_fairseq"
SUITE_EXTRAS = ("pytest", "pytest-xdist")
INSTALLER = "pip"  # in every wheelhouse, node list or not: gpu_suite.sh runs it from its wheel
TORCH_FAMILY = ("torch", "torchaudio", "torchvision", "triton")
PLATFORMS = [f"manylinux_2_{n}_x86_64" for n in (17, 24, 27, 28, 31, 34, 35, 39)] + [
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
]


def marker_env(python: str) -> dict:
    return {
        "python_version": python,
        "python_full_version": f"{python}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": "",
    }


def closure(names, env: dict) -> dict:
    """{canonical name: installed version} of these distributions and everything they require (under env)."""
    found, todo = {}, list(names)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in found:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            raise SystemExit(f"error: {name} is required but not installed here: run `make install` first") from None
        found[name] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate(env):
                todo.append(req.name)
    return found


def node_packages(path: str) -> set:
    if not path:
        return set()
    if not os.path.isfile(path):
        raise SystemExit(
            f"error: --node-packages {path}: no such file (on the node: python3 -m pip list --format=freeze)"
        )
    with open(path, encoding="utf-8") as f:
        lines = [line.split("#")[0].strip() for line in f]
    return {canonicalize_name(re.split(r"[=<>~! @]", line, maxsplit=1)[0]) for line in lines if line}


def needed(python: str, node_has: set) -> dict:
    env = marker_env(python)
    wanted = closure([PROJECT, *SUITE_EXTRAS], env)
    torch_side = closure(TORCH_FAMILY[:1], env)  # torch and what it requires
    skip = set(torch_side) | {canonicalize_name(n) for n in TORCH_FAMILY} | node_has | {canonicalize_name(PROJECT)}
    wheels = {n: v for n, v in wanted.items() if n not in skip and not n.startswith("nvidia-")}
    return dict(sorted({**wheels, INSTALLER: md.version(INSTALLER)}.items()))


def installed_problems():
    """(distributions checked, missing, mismatched): the project's and the suite's requirements, followed recursively
    with the markers of this interpreter, that are not installed ({name: the first requirement naming it}) or not in a
    version that their dependant accepts ([line])."""
    missing, mismatched, done = {}, [], set()
    todo = [(Requirement(name), "the GPU suite") for name in (PROJECT, *SUITE_EXTRAS)]
    while todo:
        req, dependant = todo.pop()
        name = canonicalize_name(req.name)
        try:
            version = md.version(name)
        except md.PackageNotFoundError:
            missing.setdefault(name, f"{req.name} missing ({dependant} requires {req})")
            continue
        if not req.specifier.contains(version, prereleases=True):
            mismatched.append(f"{req.name} {version} ({dependant} requires {req})")
        if name in done:
            continue
        done.add(name)
        if name in TORCH_FAMILY:
            continue
        for text in md.requires(name) or []:
            sub = Requirement(text)
            if sub.marker is None or sub.marker.evaluate({"extra": ""}):
                todo.append((sub, f"{name} {version}"))
    return len(done), missing, mismatched


def check_installed() -> int:
    checked, missing, mismatched = installed_problems()
    if not missing and not mismatched:
        print(f"requirements: ok ({checked} distributions, each installed in a version its dependants accept)")
        return 0
    print(
        f"requirements: failed: {'; '.join([*missing.values(), *mismatched])} (`make wheelhouse` brings what "
        f"NODE_PACKAGES does not name; torch is the node's own)"
        + ("" if missing else "; the stages run: a version outside a range may still work")
    )
    return 1 if missing else 0


def pip(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)


def fetch(name: str, version: str, python: str, out: str) -> None:
    """The binary wheel for the node, or a pure-Python wheel built here from the source."""
    abi = "cp" + python.replace(".", "")
    platforms = [a for p in PLATFORMS for a in ("--platform", p)]
    got = pip(
        "download", "--quiet", "--no-deps", "--only-binary=:all:", "--python-version", python,
        "--implementation", "cp", "--abi", abi, "--abi", "abi3", "--abi", "none", *platforms,
        "-d", out, f"{name}=={version}",
    )  # fmt: skip
    if got.returncode == 0:
        return
    with tempfile.TemporaryDirectory() as tmp:
        built = pip("wheel", "--quiet", "--no-deps", "--no-binary", name, "-w", tmp, f"{name}=={version}")
        wheels = glob.glob(os.path.join(tmp, "*.whl"))
        if built.returncode != 0 or not wheels or not wheels[0].endswith("-none-any.whl"):
            raise SystemExit(
                f"error: {name}=={version}: no wheel for Python {python} on the index and no pure-Python build "
                f"here:\n{(got.stderr + built.stderr)[-1500:]}"
            )
        shutil.move(wheels[0], out)


def project_wheel(out: str) -> None:
    """This checkout as a wheel, offline (the build tools of this virtualenv, no isolated build environment)."""
    built = pip("wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", out, ROOT)
    if built.returncode != 0:
        raise SystemExit(f"error: building the project's wheel failed:\n{built.stderr[-2000:]}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n\n", 1)[1])
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("dir", nargs="?", help="the folder to fill (created)")
    p.add_argument("--python", default="3.12", help="the node's Python, major.minor (default 3.12)")
    p.add_argument("--node-packages", default=None, help="what the node has: `pip list --format=freeze` there")
    p.add_argument("--project-only", action="store_true", help="this project's wheel alone, without the index")
    p.add_argument("--check-installed", action="store_true", help="on the node: are the requirements installed?")
    a = p.parse_args()
    if a.check_installed:
        return check_installed()
    if not a.dir:
        p.error("give the folder to fill (DIR)")
    if not re.fullmatch(r"3\.\d+", a.python):
        raise SystemExit(f"error: --python {a.python}: give major.minor, e.g. 3.12")
    os.makedirs(a.dir, exist_ok=True)
    for old in glob.glob(os.path.join(a.dir, "*.whl")):
        os.remove(old)
    todo = {} if a.project_only else needed(a.python, node_packages(a.node_packages))
    for i, (name, version) in enumerate(todo.items(), 1):
        print(f"[{i}/{len(todo)}] {name}=={version}", flush=True)
        fetch(name, version, a.python, a.dir)
    project_wheel(a.dir)
    rows, total = [], 0
    for path in sorted(glob.glob(os.path.join(a.dir, "*.whl"))):
        size = os.path.getsize(path)
        total += size
        rows.append(f"{os.path.basename(path)}\t{size}")
    with open(os.path.join(a.dir, "wheels.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")
    print(f"{len(rows)} wheels in {a.dir}: {total / 2**20:.1f} MiB")


if __name__ == "__main__":
    sys.exit(main())
