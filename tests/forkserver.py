"""Runs this virtualenv's fairseq console scripts for the tests without paying their start-up every time.

Every fairseq command imports torch, fairseq and scikit-learn (which fairseq imports) before doing anything: 4.5-5 s
of CPU here, for commands that then train a tiny model for a second or two, a few hundred times per `make test`. This
server imports torch and fairseq once (not the plugin, which reads its command line when imported, nor fairseq_cli),
then forks a child per command; the child runs the installed console script itself (runpy of its file in bin/, as
its shebang would) with the command's argv, environment, working folder and standard streams, then exits as the
interpreter does: uncaught exceptions through sys.excepthook (the plugin's one-line errors), SystemExit's code,
non-daemon threads joined, atexit handlers run, streams flushed.

Protocol (one JSON object per line on stdin, one reply per line on stdout): {"script", "argv", "env", "cwd",
"stdin", "stdout", "stderr", "status"} (paths; stderr = the stdout path merges them) -> {"pid"}. When the child
ends, the server writes its exit status (the code, or -signal) to the "status" file, which the client waits for
(helpers_cli.ForkServer)."""

import json
import logging
import os
import random
import signal
import sys

import fairseq  # noqa: F401  (with torch and scikit-learn: what every command would import first)
import numpy
import torch  # noqa: F401

STATUS = {}  # pid -> the file its exit status goes to


def reap(*_):
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status)
        path = STATUS.pop(pid, None)
        if path:
            with open(path + ".tmp", "w") as f:
                f.write(str(code))
            os.replace(path + ".tmp", path)


def run_child(request):
    """In the forked child: become the command, run it, exit with its status."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the command waits for its own children
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.setsid()  # a group of its own, so that a timeout kills the command and its children
    write = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    streams = ((0, request["stdin"], os.O_RDONLY), (1, request["stdout"], write), (2, request["stderr"], write))
    for fd, path, mode in streams:
        if fd == 2 and path == request["stdout"]:  # stderr merged into stdout, as Popen(stderr=STDOUT)
            os.dup2(1, 2)
        else:
            os.dup2(os.open(path, mode), fd)
    random.seed()  # a fresh process's draws, not the server's
    numpy.random.seed()
    if os.path.basename(request["script"]) == "fairseq-train":
        # fairseq_cli/train.py configures the root logger (stdout) before it imports fairseq, whose import configures
        # it otherwise (stderr) for the other commands: for it, the logger as it was before the server's imports
        for handler in list(logging.root.handlers):
            logging.root.removeHandler(handler)
        logging.root.setLevel(logging.WARNING)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    sys.argv = [request["script"], *request["argv"]]
    code = 0
    try:
        import runpy

        runpy.run_path(request["script"], run_name="__main__")
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    try:
        import atexit
        import threading

        threading._shutdown()  # the interpreter's exit: join non-daemon threads, then atexit
        atexit._run_exitfuncs()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code & 0xFF)


def main():
    signal.signal(signal.SIGCHLD, reap)
    for line in sys.stdin:
        request = json.loads(line)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})  # reaped only once its status file is known
        pid = os.fork()
        if pid == 0:
            run_child(request)
        STATUS[pid] = request["status"]
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        sys.stdout.write(json.dumps({"pid": pid}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
