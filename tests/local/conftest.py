"""Shared fixtures: tiny embedded-default assets, built once per session (seconds), and run helpers."""

import importlib.util
import os

import pytest

from openrlhf_cfpo.local.embedded import arithmetic, chat


@pytest.fixture(scope="session")
def tiny_assets(tmp_path_factory):
    return chat.DEFAULT.build(tmp_path_factory.mktemp("assets") / "tiny", chat.ChatSettings.tiny())


@pytest.fixture
def local_flags(tiny_assets):
    """Flags for a seconds-long run on the tiny assets: 4 prompts x 2 samples per rollout, 3 rollouts."""
    return [
        "--actor.model_name_or_path",
        tiny_assets.policy,
        "--reward.model_name_or_path",
        tiny_assets.reward,
        "--data.prompt_dataset",
        tiny_assets.prompts,
        "--data.max_samples",
        "12",
        "--rollout.batch_size",
        "4",
        "--rollout.n_samples_per_prompt",
        "2",
        "--rollout.max_new_tokens",
        "6",
        "--train.batch_size",
        "4",
        "--train.micro_batch_size",
        "2",
        "--actor.adam.lr",
        "1e-3",
        "--logger.progress",
        "none",
    ]


@pytest.fixture(scope="session")
def tiny_arithmetic(tmp_path_factory):
    return arithmetic.DEFAULT.build(
        tmp_path_factory.mktemp("assets") / "arithmetic", arithmetic.ArithmeticSettings.tiny()
    )


@pytest.fixture
def arithmetic_flags(tiny_arithmetic):
    """Flags for a seconds-long verifiable-reward run: the tiny arithmetic policy, its prompts and reward file."""
    return [
        "--actor.model_name_or_path",
        tiny_arithmetic.policy,
        "--data.prompt_dataset",
        tiny_arithmetic.prompts,
        "--reward.remote_url",
        tiny_arithmetic.reward_func,
        "--data.label_key",
        "label",
        "--data.max_samples",
        "12",
        "--rollout.batch_size",
        "4",
        "--rollout.n_samples_per_prompt",
        "2",
        "--rollout.max_new_tokens",
        "5",
        "--train.batch_size",
        "4",
        "--train.micro_batch_size",
        "4",
        "--actor.adam.lr",
        "1e-3",
        "--logger.progress",
        "none",
        "--algo.advantage.estimator",
        "group_norm",
    ]


class SavedFigure:
    """A figure the engine wrote, read back by what it plots."""

    def __init__(self, fig, path):
        self.fig, self.path = fig, path

    def panel(self, title):
        (ax,) = [ax for ax in self.fig.axes if ax.get_title() == title]
        return ax

    @staticmethod
    def curve(ax, label, raw=False):
        """(steps, values) of the line ``label`` in ``ax``: its plotted curve,
        or with ``raw`` the faint unsmoothed one."""
        (line,) = [ln for ln in ax.get_lines() if ln.get_label() == (f"_raw {label}" if raw else label)]
        return list(line.get_xdata()), list(line.get_ydata())


@pytest.fixture
def saved_figures(monkeypatch):
    """Every figure `plot.save_figure` writes during the test, in order, as :class:`SavedFigure`."""
    from openrlhf_cfpo.local import plot

    saved, save = [], plot.save_figure

    def recording(fig, output):
        saved.append(SavedFigure(fig, save(fig, output)))
        return output

    monkeypatch.setattr(plot, "save_figure", recording)
    return saved


@pytest.fixture
def chatml_tokenizer():
    """ChatML turns closed by <|im_end|> with another eos, <|endoftext|>, as Qwen2.5 base models
    have (tests/test_chat.py)."""
    spec = importlib.util.spec_from_file_location(
        "test_chat", os.path.join(os.path.dirname(__file__), "..", "test_chat.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.chatml_tokenizer_with_base_eos()


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder in which no file can be created: a chmod'ed one, or for root (whom permissions do not stop) /sys."""
    if os.geteuid() == 0:
        yield "/sys"
        return
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    yield str(folder)
    folder.chmod(0o755)
