"""The README's settings for each SMSGate mode (Cloud, Private server, Local), run as written:
only addresses, files and the signing key are swapped, for a simulator answering as that mode's
gateway and a certificate of a test authority. The simulator refuses plain-http webhook URLs,
as a phone does, and trusts that authority, as a phone trusts SMSGate's; smpplib binds, sends,
and gets the receipt and an incoming SMS back through the HTTPS webhook listener the block
configures. For Local mode, `doctor` is run on the same settings."""

import json
import re
import shlex
import subprocess
import time
import urllib.request

import pytest
import smpplib.consts

import support
from conftest import DEMO_ACCOUNT, Process, REPO, _binary, _clean_env

SIGNING_KEY = "modes-test-signing-key"

# The blocks' headings in the README's "SMSGate modes" section, and the simulator's mode.
MODES = {"Cloud": "cloud", "Private server": "cloud", "Local": "local"}


def readme_block(mode):
    """The KEY=VALUE settings of the sh block after the line starting with `mode`."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("### SMSGate modes"):]
    section = section[: section.index("\n### ", 1)]
    match = re.search(rf"^{re.escape(mode)}\b[^\n]*:\n\n```sh\n(.*?)```", section, re.S | re.M)
    assert match, f"no sh block for {mode} in the README's SMSGate modes section"
    words = shlex.split(match[1].replace("\\\n", " "))
    assert words[-2:] == ["smsgate-smpp", "serve"], words
    return dict(word.split("=", 1) for word in words[:-2])


def as_tested(settings, mode, sim_url, http_port, cert, key):
    """The block's settings with what only exists in a real deployment swapped; a setting the
    test does not know fails it, so the README cannot drift from what is tested."""
    env = {}
    for name, value in settings.items():
        if name == "GATEWAY__API_BASE_URL":
            if MODES[mode] == "local":
                assert re.fullmatch(r"http://[0-9.]+:8080", value), value
                env[name] = sim_url
            else:
                assert value.startswith("https://") and value.endswith("/3rdparty/v1"), value
                env[name] = f"{sim_url}/3rdparty/v1"
        elif name == "GATEWAY__WEBHOOK_BASE_URL":
            assert value.startswith("https://"), value
            env[name] = f"https://127.0.0.1:{http_port}"
        elif name == "HTTP__ADDRESS":
            env[name] = f"127.0.0.1:{http_port}"
        elif name == "HTTP__TLS_CERT":
            env[name] = str(cert)
        elif name == "HTTP__TLS_KEY":
            env[name] = str(key)
        elif name == "DELIVERY__SIGNING_KEY":
            env[name] = SIGNING_KEY
        elif name == "GATEWAY__MODE":
            env[name] = value
        else:
            pytest.fail(f"the README's {mode} block sets {name}, which this test does not know")
    return env


def wait_https_ready(process, url, context, timeout=90.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        assert process.proc.poll() is None, f"{process.name} exited: {process.log_path.read_text()}"
        try:
            with urllib.request.urlopen(url, timeout=1.0, context=context) as response:
                if response.status == 200:
                    return
        except OSError as e:
            last = e
        time.sleep(0.05)
    raise AssertionError(f"{url} not ready within {timeout}s: {last}")


@pytest.fixture(params=list(MODES))
def mode_stack(request, tmp_path, tls_ca):
    """The simulator in the block's mode and the server with the block's settings."""
    mode = request.param
    binary = _binary()
    cert = tls_ca.issue_cert("127.0.0.1")
    cert_path, key_path, ca_path = tmp_path / "server.crt", tmp_path / "server.key", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(cert_path)
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(cert_path, append=True)
    cert.private_key_pem.write_to_path(key_path)
    tls_ca.cert_pem.write_to_path(ca_path)

    sim_port, smpp_port, http_port, admin_port = support.free_ports(4)
    sim_url = f"http://127.0.0.1:{sim_port}"
    (tmp_path / "simulator.toml").write_text(
        f'[simulator]\nmode = "{MODES[mode]}"\nstep_delay = "100ms"\n'
        "allow_http_webhooks = false\n"
        "[[simulator.accounts]]\n"
        f'username = "{DEMO_ACCOUNT[0]}"\npassword = "{DEMO_ACCOUNT[1]}"\n'
        f'signing_key = "{SIGNING_KEY}"\n'
    )
    # The phone trusts the authority of the server's certificate (SMSGate's, in real life);
    # the simulator's TLS client reads its roots from SSL_CERT_FILE.
    simulator = Process(
        f"{mode} simulator",
        [str(binary), "simulator", "--listen", f"127.0.0.1:{sim_port}",
         "--config", str(tmp_path / "simulator.toml")],
        _clean_env({"SSL_CERT_FILE": str(ca_path)}),
        tmp_path / "simulator.log",
    )
    env = as_tested(readme_block(mode), mode, sim_url, http_port, cert_path, key_path)
    env.update({
        "SMPP__BIND_ADDRESS": f"127.0.0.1:{smpp_port}",
        "SMPP__TLS_BIND_ADDRESS": f"127.0.0.1:{support.free_ports(1)[0]}",
        "ADMIN__ADDRESS": f"127.0.0.1:{admin_port}",
        "DELIVERY__DATA_DIR": str(tmp_path / "data"),
        "PLUGINS__DIR": str(tmp_path / "plugins"),
    })
    (tmp_path / "plugins").mkdir()
    server = None
    try:
        health = f"{sim_url}/health" if MODES[mode] == "local" else f"{sim_url}/3rdparty/v1/health"
        simulator.wait_http_ok(health)
        server = Process(f"{mode} server", [str(binary), "serve"], _clean_env(env),
                         tmp_path / "server.log")
        wait_https_ready(server, f"https://127.0.0.1:{http_port}/health/ready",
                         support.tls_context(tls_ca))
        yield {
            "mode": mode, "env": env, "ca": ca_path, "sim_url": sim_url,
            "stack": support.Stack(host="127.0.0.1", smpp_port=smpp_port, tls_port=0,
                                   http_port=http_port, admin_port=admin_port,
                                   simulator_url=sim_url),
            "server_log": tmp_path / "server.log",
        }
    finally:
        for process in (server, simulator):
            if process is not None:
                assert process.stop() == 0, process.log_path.read_text()


def phone_webhooks(context):
    api = context["sim_url"] + ("" if MODES[context["mode"]] == "local" else "/3rdparty/v1")
    status, body = support.http_request("GET", f"{api}/webhooks", auth=DEMO_ACCOUNT)
    assert status == 200, body
    return json.loads(body)


def test_each_modes_settings_bring_back_the_receipt_and_incoming_sms(mode_stack):
    stack = mode_stack["stack"]
    client = support.connect(stack)
    try:
        inbox = support.Inbox(client)
        client.bind_transceiver(system_id=DEMO_ACCOUNT[0], password=DEMO_ACCOUNT[1])
        found = support.wait_for(lambda: len(phone_webhooks(mode_stack)) == 5, timeout=15.0)
        webhooks = phone_webhooks(mode_stack)
        assert found, webhooks
        assert all(w["url"].startswith(f"https://127.0.0.1:{stack.http_port}/") for w in webhooks), webhooks

        number = support.new_number()
        [submitted] = support.send_text(client, number, "through the phone", registered_delivery=1)
        message_id = submitted.message_id.decode()
        receipts = inbox.read_until(
            lambda got: any(message_id in support.text_of(p.short_message) for p in got),
            timeout=20.0,
        )
        receipt = [p for p in receipts if message_id in support.text_of(p.short_message)]
        assert receipt, [support.text_of(p.short_message) for p in receipts]
        assert "stat:DELIVRD" in support.text_of(receipt[0].short_message)
        assert receipt[0].esm_class & support.ESM_DELIVERY_RECEIPT

        support.inject_sms(stack, "+4915112345678", text="hello from the LAN")
        incoming = inbox.read_until(
            lambda got: any(support.text_of(p.short_message) == "hello from the LAN" for p in got),
            timeout=20.0,
        )
        assert any(support.text_of(p.short_message) == "hello from the LAN" for p in incoming), [
            support.text_of(p.short_message) for p in incoming
        ]
        client.unbind()
    finally:
        support.close(client)
    # The bind was checked with the device list of the API the gateway serves.
    status, body = support.http_get(f"{mode_stack['sim_url']}/simulator/v1/requests")
    assert status == 200, body
    requests = json.loads(body)
    bind_check = "GET /device 200" if MODES[mode_stack["mode"]] == "local" else "GET /devices 200"
    assert requests.get(bind_check, 0) >= 1, requests
    # Every call the phone made reached the server over HTTPS and was signed and accepted.
    status, body = support.http_get(f"{mode_stack['sim_url']}/simulator/v1/webhook-deliveries")
    assert status == 200, body
    attempts = json.loads(body)
    assert attempts and all(a["url"].startswith("https://") for a in attempts), attempts
    assert all(200 <= (a.get("status") or 0) < 300 for a in attempts), attempts


@pytest.mark.parametrize("mode_stack", ["Local"], indirect=True)
def test_doctor_on_the_local_settings_sees_the_phone_and_the_certificate(mode_stack):
    env = dict(mode_stack["env"])
    # So that this host trusts the test authority as the phone does.
    env["SSL_CERT_FILE"] = str(mode_stack["ca"])
    run = subprocess.run(
        [str(_binary()), "doctor", "--account", ":".join(DEMO_ACCOUNT), "--json"],
        env=_clean_env(env), capture_output=True, text=True, timeout=120,
    )
    report = json.loads(run.stdout)
    checks = {c["check"]: c for c in report["checks"]}
    assert checks["gateway.mode"]["status"] == "ok", checks["gateway.mode"]
    assert checks["gateway.mode"]["saw"].startswith("local"), checks["gateway.mode"]
    assert "GET /device in" in checks["account"]["saw"], checks["account"]
    assert checks["webhook certificate"]["status"] == "ok", checks["webhook certificate"]
    assert "127.0.0.1" in checks["webhook certificate"]["saw"]
    assert checks["webhook reachability"]["status"] == "ok", checks["webhook reachability"]
    assert report["failed"] == 0, run.stdout

    # The same settings with a plain-http webhook URL: the phone would refuse to register it.
    env["GATEWAY__WEBHOOK_BASE_URL"] = env["GATEWAY__WEBHOOK_BASE_URL"].replace("https://", "http://").replace(
        "127.0.0.1", "localhost")
    run = subprocess.run(
        [str(_binary()), "doctor", "--json"], env=_clean_env(env),
        capture_output=True, text=True, timeout=120,
    )
    checks = {c["check"]: c for c in json.loads(run.stdout)["checks"]}
    webhook = checks["gateway.webhook_base_url"]
    assert webhook["status"] == "failed", webhook
    assert "refuses to register" in webhook["saw"], webhook
    assert run.returncode == 1


def test_the_server_logs_which_api_it_speaks(mode_stack):
    log = mode_stack["server_log"].read_text()
    if MODES[mode_stack["mode"]] == "local":
        # The block sets gateway.mode, so the server does not need to look.
        assert re.search(r"gateway .*mode=local", log), log
    else:
        assert re.search(r"gateway mode .*mode=cloud reason=.*3rdparty/v1", log), log
