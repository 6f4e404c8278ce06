"""What the tests share: the running stack's addresses, an smpplib session the way an ESME
would drive it, and the simulator's inspection API."""

import itertools
import json
import random
import socket
import time
import urllib.request
from dataclasses import dataclass

import smpplib.client
import smpplib.consts
import smpplib.gsm
import smpplib.smpp

# Long enough for a gateway round trip on a loaded CI machine; a hung read fails one test
# instead of the whole run.
SOCKET_TIMEOUT = 10

# Longer than the 8 characters SMPP 3.4 allows, as SMSGate passwords are.
LONG_PASSWORD = "Q7f2kLm9Xp4rTz8Wv3Nb"

# A random start keeps numbers of concurrent or repeated runs against one simulator apart.
_numbers = itertools.count(random.randrange(1_000_000, 9_000_000))


@dataclass(frozen=True)
class Stack:
    host: str
    smpp_port: int
    tls_port: int
    http_port: int
    simulator_url: str


def free_ports(count):
    """Ports the kernel just handed out; held open together so that none repeats."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def http_get(url, timeout=5.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def new_number():
    """A fresh German mobile number without '+', so each test finds only its own messages."""
    return f"49170{next(_numbers):07d}"


def simulator_messages(stack, number):
    """Everything the simulator accepted for `number` (digits only; the gateway sees '+')."""
    status, body = http_get(f"{stack.simulator_url}/simulator/v1/messages")
    assert status == 200, body
    return [m for m in json.loads(body) if f"+{number}" in m["request"].get("phoneNumbers", [])]


def connect(stack, ssl_context=None, port=None):
    client = smpplib.client.Client(
        stack.host,
        port or (stack.tls_port if ssl_context else stack.smpp_port),
        timeout=SOCKET_TIMEOUT,
        ssl_context=ssl_context,
        # Strict parsing: a TLV in the server's answers that smpplib does not know should
        # show up here rather than be skipped silently.
        allow_unknown_opt_params=False,
    )
    client.connect()
    return client


def close(client):
    """Unbinds when bound and checks the answer, then drops the connection."""
    try:
        if client.state in (
            smpplib.consts.SMPP_CLIENT_STATE_BOUND_TX,
            smpplib.consts.SMPP_CLIENT_STATE_BOUND_RX,
            smpplib.consts.SMPP_CLIENT_STATE_BOUND_TRX,
        ):
            client.send_pdu(smpplib.smpp.make_pdu("unbind", client=client))
            resp = expect(client, "unbind_resp")
            assert resp.status == 0, f"unbind_resp status {resp.status:#x}"
    finally:
        client.disconnect()


def expect(client, command):
    """The next PDU named `command`; the server's own enquire_link and deliver_sm PDUs that
    arrive first are answered as an ESME must, so that they cannot break the session."""
    while True:
        pdu = client.read_pdu()
        if pdu.command == command:
            return pdu
        if pdu.command == "enquire_link":
            resp = smpplib.smpp.make_pdu("enquire_link_resp", client=client, sequence=pdu.sequence)
            client.send_pdu(resp)
        elif pdu.command == "deliver_sm":
            resp = smpplib.smpp.make_pdu("deliver_sm_resp", client=client, sequence=pdu.sequence)
            client.send_pdu(resp)
        else:
            raise AssertionError(f"expected {command}, got {pdu.command} (status {pdu.status:#x})")


def text_of(value):
    return value.decode() if isinstance(value, bytes) else value


def send_text(client, number, text, encoding=smpplib.consts.SMPP_ENCODING_DEFAULT,
              registered_delivery=0):
    """Sends `text` the way smpplib's README does (make_parts, one submit_sm per part) and
    returns each part's submit_sm_resp."""
    parts, data_coding, esm_class = smpplib.gsm.make_parts(text, encoding=encoding)
    responses = []
    for part in parts:
        client.send_message(
            source_addr_ton=smpplib.consts.SMPP_TON_ALNUM,
            source_addr_npi=smpplib.consts.SMPP_NPI_UNK,
            source_addr="Tests",
            dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
            dest_addr_npi=smpplib.consts.SMPP_NPI_ISDN,
            destination_addr=number,
            short_message=part,
            data_coding=data_coding,
            esm_class=esm_class,
            registered_delivery=registered_delivery,
        )
        responses.append(expect(client, "submit_sm_resp"))
    return responses


def query(client, message_id):
    client.query_message(
        message_id=message_id,
        source_addr_ton=smpplib.consts.SMPP_TON_ALNUM,
        source_addr_npi=smpplib.consts.SMPP_NPI_UNK,
        source_addr="Tests",
    )
    return expect(client, "query_sm_resp")


def wait_for(predicate, timeout=10.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
