"""Fixtures for the end-to-end suite: the real AUTOMATIC1111 webui v1.10.1 with this extension installed.

Use in a test:

    def test_something(webui):            # API-only server (start.sh's flags + --data-dir)
        r = webui.client.txt2img({"enable": True, "motion_module": V2, "frames": 8, ...}, steps=2)
        assert r.status == 200, r.error
        webui.assert_restored()            # a plain generation is byte-identical to the one made at start

    def test_ui(webui_ui): ...             # the same data dir, server started with its UI (browser tests)
    def test_lowvram(webui_medvram): ...   # the same data dir, --medvram

One data dir per session (a fresh `--data-dir` under pytest's tmp dir: extensions/animlong holds this
repository's files, installed with its install.py; motion_modules/ the files of harness.MOTION_FILES).
At most one server runs at a time (each holds ~5.5 GB); asking for another kind restarts it, and the
tests are ordered API, --medvram, UI so that happens twice per session. If the harness cannot be set up
or the server does not start, every e2e test fails with the reason (never a silent skip).
Deselect the suite with `-m "not e2e"`.
"""
import os
import time

import pytest

from e2e import harness

MODES = {"api": dict(ui=False, extra_args=()), "medvram": dict(ui=False, extra_args=("--medvram",)),
         "ui": dict(ui=True, extra_args=())}
MODE_FIXTURES = {"webui": "api", "webui_medvram": "medvram", "webui_ui": "ui"}
ORDER = ("api", "medvram", "ui")


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: runs against the real AUTOMATIC1111 webui of ../shared/webui")


def _mode(item) -> str:
    for fixture, mode in MODE_FIXTURES.items():
        if fixture in getattr(item, "fixturenames", ()):
            return mode
    return "api"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(os.path.abspath(__file__)) + os.sep
    e2e = [item for item in items if str(item.fspath).startswith(here)]
    if not e2e:
        return
    for item in e2e:
        item.add_marker(pytest.mark.e2e)
    ordered = sorted(e2e, key=lambda item: ORDER.index(_mode(item)))   # stable: file order within a mode
    rest = [item for item in items if not str(item.fspath).startswith(here)]
    items[:] = rest + ordered


class Webui:
    """The session's data dir and its one running server (restarted when another kind is asked for)."""

    def __init__(self, data_dir: str, logs: str, motion_source: str):
        self.data_dir = data_dir
        self.logs = logs
        self.motion_source = motion_source
        self.extension = os.path.join(data_dir, "extensions", harness.EXTENSION_NAME)
        self.motion_modules = os.path.join(self.extension, "motion_modules")
        self.outputs = os.path.join(data_dir, "outputs")
        self.server = None
        self.mode = None
        self.client = None
        self.reference = None      # plain generation's PNG bytes, made right after start, before any animation
        self.starts = []           # (mode, seconds) per start, for the suite's timing note
        self.error = None

    def use(self, mode: str) -> "Webui":
        if self.error is not None:
            pytest.fail(f"the webui could not be started earlier in this session: {self.error}", pytrace=False)
        if self.mode == mode and self.server is not None and self.server.alive():
            return self
        self.stop()
        log = os.path.join(self.logs, f"server-{mode}-{len(self.starts)}.log")
        try:
            self.server = harness.WebuiServer(self.data_dir, log, **MODES[mode]).start()
        except harness.HarnessError as error:
            self.error = str(error)
            pytest.fail(f"the real webui did not start ({mode}): {error}", pytrace=False)
        self.mode = mode
        self.starts.append((mode, round(self.server.started_s, 1)))
        self.client = harness.Client(self.server.url)
        self.reference = self.client.plain()
        return self

    def assert_restored(self) -> None:
        """A plain generation (same seed and settings) is byte-identical to the one made before any animation."""
        assert self.server.alive(), "the webui process died:\n" + self.server.log_text()[-3000:]
        assert self.client.plain() == self.reference, \
            "a plain generation is no longer byte-identical to the one before the animation: the model, " \
            "the sampler or the schedule was left changed"

    def log(self) -> str:
        return self.server.log_text() if self.server else ""

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.server is not None:
            self.server.stop()
            self.server = None
        self.mode = None


@pytest.fixture(scope="session")
def webui_session(tmp_path_factory):
    """Set-up (setup.sh), the motion files, a fresh data dir with the extension installed; stopped at the end."""
    logs = str(tmp_path_factory.mktemp("webui-logs"))
    t0 = time.monotonic()
    try:
        harness.ensure_harness(os.path.join(logs, "setup.log"))
        motion_source = harness.build_motion_files()
        data_dir = str(tmp_path_factory.mktemp("webui-data"))
        extension = harness.install_extension(data_dir)
        harness.link_motion_files(motion_source, os.path.join(extension, "motion_modules"))
    except (harness.HarnessError, OSError) as error:
        pytest.fail(f"the real-webui harness could not be set up: {error}", pytrace=False)
    session = Webui(data_dir, logs, motion_source)
    session.setup_s = time.monotonic() - t0
    try:
        yield session
    finally:
        session.stop()
        print(f"\n[e2e] set-up {session.setup_s:.0f} s; server starts: {session.starts}; logs in {logs}")


@pytest.fixture
def webui(webui_session):
    """The API-only server (start.sh's default: --api --nowebui)."""
    return webui_session.use("api")


@pytest.fixture
def webui_medvram(webui_session):
    return webui_session.use("medvram")


@pytest.fixture
def webui_ui(webui_session):
    """The server with its gradio UI and the API on one port (start.sh's --ui)."""
    return webui_session.use("ui")
