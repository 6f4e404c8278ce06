"""The admin listener as operators and their tools meet it: the status console rendered by a real
browser (headless Chromium) with an smpplib session on it, and the admin API and the webhook
endpoint checked against the OpenAPI document by schemathesis, which generates requests from
the document and checks every answer against it.

Chromium comes from Debian's package (tests/run installs it); without it the browser test is
skipped, except with SMSGATE_REQUIRE_CHROMIUM=1 (CI), where it fails.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import support
from conftest import DEMO_ACCOUNT, REPO, _start_stack

TOKEN = "console-openapi-token-0123456789"
OPENAPI = REPO / "host" / "openapi.yaml"
SCREENSHOT = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "console-screenshot.png"


@pytest.fixture(scope="module")
def guarded_stack(tmp_path_factory, tls_ca):
    """A stack of its own with an admin token: schemathesis posts webhook events and acts on
    the admin API, which must not reach other tests' sessions."""
    work = tmp_path_factory.mktemp("console-stack")
    plugins_dir = work / "plugins"
    plugins_dir.mkdir()
    yield from _start_stack(
        work, tls_ca, [DEMO_ACCOUNT], plugins_dir, label="console ",
        server_env={"ADMIN__TOKEN": TOKEN},
    )


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("SMSGATE_REQUIRE_CHROMIUM") == "1":
        pytest.fail("chromium is required (SMSGATE_REQUIRE_CHROMIUM=1) but not installed")
    pytest.skip("chromium is not installed (Debian: apt-get install chromium)")


def headless(browser, tmp_path, *args):
    """Runs headless Chromium once; returns its standard output."""
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu",
         f"--user-data-dir={tmp_path / 'profile'}", "--no-first-run", *args],
        capture_output=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return result.stdout.decode(errors="replace")


def test_the_console_shows_a_bound_smpplib_session_in_chromium(stack, tmp_path):
    browser = chromium()
    client = support.connect(stack)
    try:
        assert client.bind_transceiver(system_id="demo", password="demo1234").status == 0
        [resp] = support.send_text(client, support.new_number(), "seen on the console")
        assert resp.status == 0
        peer = "127.0.0.1:%d" % client._socket.getsockname()[1]
        url = f"http://127.0.0.1:{stack.admin_port}/"

        dom = headless(browser, tmp_path, "--dump-dom", url)
        assert "<table id=\"sessions\">" in dom or 'id="sessions"' in dom, dom[:3000]
        row = next((line for line in dom.split("<tr>") if peer in line), None)
        assert row is not None, f"no row for {peer} in\n{dom[:5000]}"
        for part in ("demo", "transceiver", "Disconnect"):
            assert part in row, f"{part!r} missing in {row}"
        assert "<svg" in dom or "first interval" in dom

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        SCREENSHOT.unlink(missing_ok=True)
        headless(browser, tmp_path, f"--screenshot={SCREENSHOT}", "--window-size=1600,1000",
                 "--hide-scrollbars", url)
        image = SCREENSHOT.read_bytes()
        assert image.startswith(b"\x89PNG\r\n\x1a\n") and len(image) > 10_000, len(image)
        print(f"console screenshot: {SCREENSHOT} ({len(image)} bytes)")
    finally:
        support.close(client)


def schemathesis(args, work, config=None):
    st = Path(sys.executable).with_name("st")
    command = [str(st)]
    if config:
        command += ["--config-file", str(config)]
    command += ["run", str(OPENAPI), "--checks", "all", "--max-redirects", "0",
                "--seed", "20261205", "--max-examples", "60", *args]
    # Schemathesis keeps its cache in the working directory: a scratch one, not the checkout.
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=work)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    return output


def test_the_admin_api_answers_as_its_openapi_document_says(guarded_stack, tmp_path):
    stack = guarded_stack
    client = support.connect(stack)
    try:
        assert client.bind_transceiver(system_id="demo", password="demo1234").status == 0
        support.wait_webhooks_registered(stack)
        output = schemathesis([
            "--url", f"http://127.0.0.1:{stack.admin_port}",
            "--exclude-tag", "webhooks",
            "--header", f"Authorization: Bearer {TOKEN}",
        ], tmp_path)
        assert "passed" in output
    finally:
        # Schemathesis may have found the session's id in /status and disconnected it.
        client.disconnect()


def test_the_webhook_endpoint_answers_as_its_openapi_document_says(guarded_stack, tmp_path):
    stack = guarded_stack
    client = support.connect(stack)
    try:
        assert client.bind_receiver(system_id="demo", password="demo1234").status == 0
        [hook, *_] = support.wait_webhooks_registered(stack)
        token = hook["url"].rsplit("/", 1)[1]
        # The token the server handed out, so the bodies reach the parser and the queue; the
        # body's rules that depend on the event kind (which payload fields, base64, RFC 3339
        # with an offset) are prose in the document, so generated bodies are not expected to
        # be accepted or refused by the schema alone.
        config = tmp_path / "schemathesis.toml"
        config.write_text(
            "[[operations]]\n"
            'include-tag = "webhooks"\n'
            f'parameters = {{ "path.token" = "{token}" }}\n'
        )
        schemathesis([
            "--url", f"http://127.0.0.1:{stack.http_port}",
            "--include-tag", "webhooks",
            "--exclude-checks", "positive_data_acceptance,negative_data_rejection",
        ], tmp_path, config=config)
    finally:
        client.disconnect()
