"""Entry points of `openrlhf-cfpo local`, `compare`, `sweep` and `plot` (dispatched by openrlhf_cfpo.cli.main)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from .errors import EXIT_INTERRUPTED, report

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class Terminated(KeyboardInterrupt):
    """SIGTERM during start-up, handled as Ctrl-C. Not KeyboardInterrupt itself: CPython exits by SIGINT (-2), whatever
    status the program returns, once a plain KeyboardInterrupt has passed through code it ran with ``PyRun_*`` (an
    extension's import that evaluates Python, as pybind11's ``exec`` does)."""


def _importing(frame) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _start_up_stopper(prog: str):
    """The handler of Ctrl-C and SIGTERM during start-up: an exception that unwinds what started (as Ctrl-C does), or,
    inside an import, an exit on the spot. An exception raised there leaves a module half-initialised (numpy, torch),
    whose next use fails with a traceback of its own (a RecursionError in numpy, "Could not import module
    'AutoModelForCausalLM'") or aborts the process; nothing has been written that far in."""

    def stop(signum, frame):
        if _importing(frame):
            print(_interrupted_line(prog), file=sys.stderr, flush=True)
            os._exit(EXIT_INTERRUPTED)
        raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt

    return stop


def _interrupted_line(prog: str) -> str:
    return f"{prog}: interrupted during start-up, before anything was written"


def _until_ctrl_c(prog: str, main, argv: list[str] | None) -> int:
    """``main(argv)``, with a Ctrl-C or SIGTERM that reaches here (during start-up: imports, checks, loading) as one
    line, exit status 130; while training, the trainer's own handler saves the step first. A Ctrl-C ignored by the
    caller (a shell's background job) stays ignored."""
    handled = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        handled.append(signal.SIGINT)
    in_main_thread = threading.current_thread() is threading.main_thread()  # signal handlers can only be set there
    previous = {s: signal.signal(s, _start_up_stopper(prog)) for s in handled} if in_main_thread else {}
    try:
        return main(list(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:
        print(_interrupted_line(prog), file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)


def main_local(argv: list[str] | None = None) -> int:
    return _until_ctrl_c("openrlhf-cfpo local", _local, argv)


def _local(argv: list[str]) -> int:
    from .config import parse_args
    from .errors import ConfigError, DiskFullError, Interrupted, NonFiniteError, RewardFuncError

    prog = "openrlhf-cfpo local"
    try:
        cfg = parse_args(argv)
    except SystemExit as e:  # --help
        return int(e.code or 0)
    except ConfigError as e:
        report(prog, e)
        return 2
    from .preflight import prepare
    from .trainer import LocalTrainer

    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    try:
        trainer = LocalTrainer(cfg, log=log, inputs=prepare(cfg, log))
    except ConfigError as e:
        report(prog, e)
        return 2
    try:
        summary = trainer.fit()
    except RewardFuncError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    except NonFiniteError as e:
        print(f"{prog}: error: {e}; {_resume_point(cfg, trainer.run_id)}", file=sys.stderr)
        return 1
    except DiskFullError as e:
        print(f"{prog}: error: {e}; {_resume_point(cfg, trainer.run_id)} once space is freed", file=sys.stderr)
        return 1
    except Interrupted as e:
        kept = (
            f"saved {e.checkpoint}: `--resume` continues from it"
            if e.checkpoint is not None
            else "nothing saved (--ckpt.save_steps -1)"
        )
        print(f"{prog}: interrupted at step {e.step}/{e.total}; {kept}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:  # a second Ctrl-C, inside a step
        print(
            f"{prog}: interrupted inside step {trainer.global_step + 1}, before it was saved; "
            f"{_resume_point(cfg, trainer.run_id)}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    print(_trained(summary, f"{cfg.args.ckpt.output_dir}/metrics.jsonl"), file=sys.stderr)
    return 0


def _trained(summary: dict, metrics: str) -> str:
    """What this session did: a whole run, the rest of a resumed one, or nothing (a finished run resumed)."""
    done, total, now = summary["steps"], summary["sizes"]["total_steps"], summary["steps_this_session"]
    if now == 0:
        wrote = (
            "; wrote its missing model/ from the last checkpoint" if summary["model_written_from_checkpoint"] else ""
        )
        return f"nothing left to train: the run had finished all {total} steps{wrote}; metrics in {metrics}"
    part = f"steps {done - now + 1}-{done} of {total}" if now < done else f"{now} steps"
    return f"trained {part} in {summary['wall_time_this_session_s']:.0f} s; metrics in {metrics}"


def _resume_point(cfg, run_id: str | None = None) -> str:
    """Where `--resume` would continue, read off the checkpoints (of the run ``run_id``) on disk."""
    from . import checkpoint

    found = checkpoint.latest(cfg.args.ckpt.path, run_id)
    if found is None:
        return "no checkpoint was saved, so `--resume` starts from step 0"
    return f"the last checkpoint, {found}, is intact and `--resume` continues from it"


def main_compare(argv: list[str] | None = None) -> int:
    def compare(args: list[str]) -> int:
        from .compare import main

        return main(args)

    return _until_ctrl_c("openrlhf-cfpo compare", compare, argv)


def main_sweep(argv: list[str] | None = None) -> int:
    def sweep(args: list[str]) -> int:
        from .sweep import main

        return main(args)

    return _until_ctrl_c("openrlhf-cfpo sweep", sweep, argv)


def main_plot(argv: list[str] | None = None) -> int:
    return _until_ctrl_c("openrlhf-cfpo plot", _plot, argv)


def _plot(argv: list[str]) -> int:
    from .plot import PlotError, plot_runs, read_runs, with_steps

    p = argparse.ArgumentParser(
        prog="openrlhf-cfpo plot",
        description="Figure-3-style curves (reward, length, clip ratio, KL) per run.",
        allow_abbrev=False,
    )
    p.add_argument(
        "runs", nargs="+", metavar="RUN", help="run folder (metrics.jsonl) or OpenRLHF TensorBoard log folder"
    )
    p.add_argument("--output", required=True, help="PNG file to write")
    p.add_argument("--smooth", type=float, default=0.6, help="EMA weight in [0, 1); 0 plots raw values")
    p.add_argument("--title", default=None)
    args = p.parse_args(argv)
    from .errors import ConfigError, Problems
    from .outputs import figure_problem
    from .plot import smooth_problem

    problems = Problems()
    problems.add(smooth_problem("smooth", args.smooth))
    problems.add(figure_problem("output", args.output))
    try:
        problems.raise_any()
    except ConfigError as e:
        report("openrlhf-cfpo plot", e)
        return 2
    try:
        warn = lambda m: print(m, file=sys.stderr)  # noqa: E731
        runs = with_steps(read_runs(args.runs, warn), warn)
    except PlotError as e:
        print(f"openrlhf-cfpo plot: error: {e}", file=sys.stderr)
        return 2
    plot_runs(runs, args.output, smooth=args.smooth, title=args.title)
    print(args.output)
    return 0
