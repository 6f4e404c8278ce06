"""Starts the real binary twice, as a standalone SMSGate simulator and as the SMPP server in
front of it, so that smpplib talks to exactly what an operator would run.

SMSGATE_SMPP_BIN names the binary (tests/run passes the freshly built debug one). Plugin
components are taken from CARGO_TARGET_DIR (default target/) under wasm32-wasip2/wasm/, where
tests/run builds them; a missing one is built with the same cargo command.
"""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import trustme

import support

REPO = Path(__file__).resolve().parents[2]

# Long enough that every test sees a message pass through all its states, short enough that
# the query_sm test does not wait for long.
STEP_DELAY = "100ms"

CONFIG_SECTIONS = (
    "SMPP__", "GATEWAY__", "HTTP__", "ADMIN__", "DELIVERY__", "SIMULATOR__", "PLUGINS__"
)

# The default account every stack's simulator has.
DEMO_ACCOUNT = support.DEMO_ACCOUNT

# Filled by the fixtures so that a failing test's report shows what the processes logged.
_LOGS = {}


def _binary():
    path = Path(os.environ.get("SMSGATE_SMPP_BIN", REPO / "target" / "debug" / "smsgate-smpp"))
    if not path.is_absolute():
        path = REPO / path
    if not os.access(path, os.X_OK):
        pytest.exit(
            f"{path} is not an executable; build it (cargo build) or set SMSGATE_SMPP_BIN",
            returncode=2,
        )
    return path


def _clean_env(extra):
    # A developer's shell may export the server's own variables; the fixture alone decides.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(CONFIG_SECTIONS) and key != "CONFIG_PATH"
    }
    env.setdefault("RUST_LOG", "info,smsgate_smpp=debug,smsgate_plugin_host=debug,smsgate_simulator=debug")
    # The logs go to files that failing tests print; colour codes would only clutter them.
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


def _tail(path, lines=60):
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Process:
    def __init__(self, name, argv, env, log_path):
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        _LOGS[name] = log_path

    def wait_http_ok(self, url, timeout=30.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode} before {url} answered:\n"
                    f"{_tail(self.log_path)}"
                )
            try:
                status, _ = support.http_get(url, timeout=1.0)
                if status == 200:
                    return
                last = f"HTTP {status}"
            except OSError as e:
                last = e
            time.sleep(0.05)
        raise RuntimeError(
            f"{url} did not answer 200 within {timeout}s (last: {last}):\n{_tail(self.log_path)}"
        )

    def stop(self, timeout=20.0):
        """SIGTERM, as an orchestrator would, and the exit code once it is gone."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._log.close()
                raise AssertionError(
                    f"{self.name} was still running {timeout}s after SIGTERM:\n"
                    f"{_tail(self.log_path)}"
                )
        self._log.close()
        return self.proc.returncode


@pytest.fixture(scope="session")
def tls_ca():
    return trustme.CA()


def _start_stack(work, tls_ca, accounts, plugins_dir, label="", server_env=None):
    """Starts a simulator with `accounts` and the server in front of it, loading its plugins
    from `plugins_dir` (and `server_env` added to its environment); yields the Stack and stops
    both with SIGTERM, as an orchestrator would, expecting exit code 0."""
    binary = _binary()

    cert = tls_ca.issue_cert("127.0.0.1", "localhost")
    cert_path = work / "server.crt"
    key_path = work / "server.key"
    cert.cert_chain_pems[0].write_to_path(cert_path)
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(cert_path, append=True)
    cert.private_key_pem.write_to_path(key_path)

    sim_port, smpp_port, tls_port, http_port, admin_port = support.free_ports(5)
    sim_config = work / "simulator.toml"
    sim_config.write_text(
        "[simulator]\n"
        f'step_delay = "{STEP_DELAY}"\n'
        + "".join(
            "[[simulator.accounts]]\n"
            f'username = "{username}"\n'
            f'password = "{password}"\n'
            for username, password in accounts
        )
    )
    simulator = Process(
        f"{label}simulator",
        [str(binary), "simulator", "--listen", f"127.0.0.1:{sim_port}",
         "--config", str(sim_config)],
        _clean_env({}),
        work / "simulator.log",
    )
    sim_url = f"http://127.0.0.1:{sim_port}"

    server = None
    try:
        simulator.wait_http_ok(f"{sim_url}/3rdparty/v1/health")
        server = Process(
            f"{label}server",
            [str(binary), "serve"],
            _clean_env(
                {
                    "SMPP__BIND_ADDRESS": f"127.0.0.1:{smpp_port}",
                    "SMPP__TLS_BIND_ADDRESS": f"127.0.0.1:{tls_port}",
                    "SMPP__TLS_CERT": str(cert_path),
                    "SMPP__TLS_KEY": str(key_path),
                    "HTTP__ADDRESS": f"127.0.0.1:{http_port}",
                    "ADMIN__ADDRESS": f"127.0.0.1:{admin_port}",
                    "GATEWAY__API_BASE_URL": f"{sim_url}/3rdparty/v1",
                    "GATEWAY__TIMEOUT": "10s",
                    # The simulated phone posts receipts and incoming SMS straight to this
                    # server's HTTP listener; the simulator allows plain http.
                    "GATEWAY__WEBHOOK_BASE_URL": f"http://127.0.0.1:{http_port}",
                    # The queue and the sent-message record belong to this stack alone; the
                    # default ./data would be shared by runs and kept after them.
                    "DELIVERY__DATA_DIR": str(work / "data"),
                    "PLUGINS__DIR": str(plugins_dir),
                    **(server_env or {}),
                }
            ),
            work / "server.log",
        )
        # The debug build compiles each plugin component at start when the artifact cache
        # is cold, which takes seconds.
        server.wait_http_ok(f"http://127.0.0.1:{http_port}/health/ready", timeout=90.0)
    except BaseException:
        # The start-up error is the one to report; how the processes then end is noise.
        for process in (server, simulator):
            if process is not None:
                try:
                    process.stop()
                except AssertionError:
                    pass
        raise

    yield support.Stack(
        host="127.0.0.1",
        smpp_port=smpp_port,
        tls_port=tls_port,
        http_port=http_port,
        admin_port=admin_port,
        simulator_url=sim_url,
    )

    problems = []
    for process in (server, simulator):
        # Later failures should not be reported with the logs of processes already gone.
        _LOGS.pop(process.name, None)
        try:
            code = process.stop()
        except AssertionError as e:
            problems.append(str(e))
            continue
        if code != 0:
            problems.append(
                f"{process.name} exited with {code} after SIGTERM:\n{_tail(process.log_path)}"
            )
    assert not problems, "\n\n".join(problems)


@pytest.fixture(scope="session")
def stack(tmp_path_factory, tls_ca):
    """The simulator and the server in front of it, without plugins."""
    work = tmp_path_factory.mktemp("stack")
    # An empty directory rather than the default ./plugins, which depends on the working
    # directory.
    plugins_dir = work / "plugins"
    plugins_dir.mkdir()
    yield from _start_stack(
        work,
        tls_ca,
        [DEMO_ACCOUNT, ("longuser", support.LONG_PASSWORD)],
        plugins_dir,
    )


@pytest.fixture(scope="module")
def delivery_stack(tmp_path_factory, tls_ca):
    """A stack of its own for the delivery tests: deliver_sm go to whichever receiver of the
    account is bound, so receipts other tests leave queued for demo must not reach these
    receivers, nor theirs reach the sessions of later tests."""
    work = tmp_path_factory.mktemp("delivery-stack")
    plugins_dir = work / "plugins"
    plugins_dir.mkdir()
    yield from _start_stack(work, tls_ca, [DEMO_ACCOUNT], plugins_dir, label="delivery ")


def plugin_wasm(package):
    """The component of a workspace plugin crate (e.g. "credential-map"), built when missing."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    if not target.is_absolute():
        target = REPO / target
    path = target / "wasm32-wasip2" / "wasm" / f"{package.replace('-', '_')}.wasm"
    if not path.is_file():
        subprocess.run(
            ["cargo", "build", "--target", "wasm32-wasip2", "--profile", "wasm", "-p", package],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            check=True,
        )
    return path


@pytest.fixture(scope="module")
def plugin_stack(tmp_path_factory, tls_ca):
    """Starts stacks whose server loads policy plugins:
    `plugin_stack({"credential-map": "NAME.toml text"}, [(username, password), ...])` copies
    each plugin's component into a fresh plugin directory with its NAME.toml, gives the
    simulator the demo account and `accounts`, and returns the Stack. Stopped with the module."""
    running = []

    def start(plugins, accounts):
        label = "+".join(plugins)
        work = tmp_path_factory.mktemp("plugin-stack")
        plugins_dir = work / "plugins"
        plugins_dir.mkdir()
        for name, manifest in plugins.items():
            (plugins_dir / f"{name}.toml").write_text(manifest)
            shutil.copyfile(plugin_wasm(name), plugins_dir / f"{name}.wasm")
        stack = _start_stack(
            work, tls_ca, [DEMO_ACCOUNT, *accounts], plugins_dir, label=f"{label} "
        )
        running.append(stack)
        return next(stack)

    yield start
    problems = []
    for stack in running:
        try:
            # The rest of the generator: SIGTERM and the exit code checks.
            next(stack, None)
        except AssertionError as e:
            problems.append(str(e))
    assert not problems, "\n\n".join(problems)


@pytest.fixture(scope="session")
def tshark():
    path = shutil.which("tshark")
    if path is None:
        reason = "tshark is not installed (tests/run installs it from Debian's packages)"
        if os.environ.get("SMSGATE_REQUIRE_TSHARK") == "1":
            pytest.fail(f"{reason}, and SMSGATE_REQUIRE_TSHARK=1 asks for the wire check")
        pytest.skip(reason)
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for name, path in _LOGS.items():
            report.sections.append((f"{name} log (last lines)", _tail(path)))
