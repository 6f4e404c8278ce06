"""What the tests share: the running stack's addresses, an smpplib session the way an ESME
would drive it, and the simulator's inspection API."""

import base64
import itertools
import json
import random
import socket
import ssl
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

# The default account every stack's simulator has.
DEMO_ACCOUNT = ("demo", "demo1234")

# What the server registers for an account with a receiver bound, one webhook each.
RECEIVER_EVENTS = frozenset(
    {"sms:received", "sms:data-received", "sms:sent", "sms:delivered", "sms:failed"}
)

# esm_class bits of deliver_sm (SMPP 3.4 5.2.12).
ESM_DELIVERY_RECEIPT = 0x04
ESM_UDHI = 0x40

# A random start keeps numbers of concurrent or repeated runs against one simulator apart.
_numbers = itertools.count(random.randrange(1_000_000, 9_000_000))


@dataclass(frozen=True)
class Stack:
    host: str
    smpp_port: int
    tls_port: int
    http_port: int
    admin_port: int
    simulator_url: str

    @property
    def webhook_prefix(self):
        """Where the phone posts this server's webhooks, token excluded."""
        return f"http://{self.host}:{self.http_port}/api/smpp/v1/webhooks/"


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
    return http_request("GET", url, timeout=timeout)


def http_request(method, url, json_body=None, auth=None, timeout=5.0):
    """(status, body) of one request; `auth` is a (user, password) pair for HTTP Basic."""
    headers = {}
    data = None
    if json_body is not None:
        data = json.dumps(json_body).encode()
        headers["Content-Type"] = "application/json"
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
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


def registered_webhooks(stack, account=DEMO_ACCOUNT):
    """The account's webhooks on the simulator that point at this stack's server."""
    status, body = http_request(
        "GET", f"{stack.simulator_url}/3rdparty/v1/webhooks", auth=account
    )
    assert status == 200, body
    return [w for w in json.loads(body) if w["url"].startswith(stack.webhook_prefix)]


def wait_webhooks_registered(stack, account=DEMO_ACCOUNT, timeout=15.0):
    """Waits for the registrations a receiver bind starts in the background: an event the
    phone fires before them reaches nobody, so a test must not submit earlier."""
    found = wait_for(
        lambda: {w["event"] for w in registered_webhooks(stack, account)} >= RECEIVER_EVENTS,
        timeout=timeout,
    )
    webhooks = registered_webhooks(stack, account)
    assert found, f"webhooks not registered within {timeout}s: {webhooks}"
    assert len(webhooks) == len(RECEIVER_EVENTS), webhooks
    return webhooks


def inject_sms(stack, sender, text=None, data=None, to=None, account=DEMO_ACCOUNT, sim=None):
    """The account's phone receives an SMS (POST /simulator/v1/inbox, the API of
    `smsgate-smpp simulator inject-mo`): `text` fires sms:received, `data` (bytes)
    sms:data-received. Returns the simulator's answer (id, event, messageId, webhooks)."""
    body = {"account": account[0], "from": sender}
    if to is not None:
        body["to"] = to
    if text is not None:
        body["text"] = text
    if data is not None:
        body["data"] = base64.b64encode(data).decode()
    if sim is not None:
        body["simNumber"] = sim
    status, answer = http_request(
        "POST", f"{stack.simulator_url}/simulator/v1/inbox", json_body=body, auth=account
    )
    assert status == 202, (status, answer)
    return json.loads(answer)


def queued_items(stack, account=DEMO_ACCOUNT):
    """deliver_sm of the account the server still holds: only an ESME_ROK deliver_sm_resp
    takes one off its queue."""
    status, body = http_get(f"http://{stack.host}:{stack.admin_port}/api/smpp/v1/queue")
    assert status == 200, body
    return sum(e["items"] for e in json.loads(body)["accounts"] if e["account"] == account[0])


def tls_context(ca):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(context)
    # smpplib wraps the socket before connect() without server_hostname, so Python cannot
    # compare names; the chain is still verified against the test CA (CERT_REQUIRED).
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    return context


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
        if pdu.command in ("enquire_link", "deliver_sm"):
            resp = smpplib.smpp.make_pdu(f"{pdu.command}_resp", client=client)
            # make_pdu(sequence=...) is ignored for responses: smpplib's sequence property
            # falls back to the client's last number, so _set_vars sees it as already set.
            # smpplib's own read_once assigns it afterwards, as here.
            resp.sequence = pdu.sequence
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


class Inbox:
    """The deliver_sm one smpplib client receives, read the way an smpplib ESME does: its
    message_received_handler keeps each, and smpplib itself answers deliver_sm_resp (status
    ESME_ROK when the handler returns None)."""

    # Short, so that a wait ends soon after what it waits for has arrived.
    POLL = 0.25

    def __init__(self, client):
        self.client = client
        self.received = []
        client.set_message_received_handler(self._received)

    def _received(self, pdu, **kwargs):
        self.received.append(pdu)

    def read_until(self, done, timeout=15.0):
        """Lets smpplib read PDUs until `done(received)` holds or `timeout` has passed;
        returns everything received so far. smpplib runs no reader thread of its own."""
        deadline = time.monotonic() + timeout
        # smpplib offers no way to change its socket's timeout after connect().
        sock = self.client._socket
        try:
            while not done(self.received):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                sock.settimeout(min(self.POLL, remaining))
                try:
                    # Without an enquire_link of its own on each idle poll: the answers would
                    # wait unread and confuse the next expect().
                    self.client.read_once(auto_send_enquire_link=False)
                except socket.timeout:
                    pass
        finally:
            sock.settimeout(SOCKET_TIMEOUT)
        return list(self.received)

    def read_for(self, seconds):
        """Reads for `seconds` whatever arrives, for asserting that nothing more does; returns
        everything received so far, as read_until does."""
        return self.read_until(lambda _: False, timeout=seconds)


def gsm_decode(octets):
    """GSM 03.38 default alphabet, one septet per octet as SMPP carries it (data_coding 0),
    escape sequences included. Raises ValueError on what no handset could display, such as an
    escape cut off at the end of a part."""
    table = smpplib.gsm.GSM_CHARACTER_TABLE
    chars = []
    escaped = False
    for octet in octets:
        if octet > 0x7F:
            raise ValueError(f"{octet:#04x} is not a septet")
        if escaped:
            char = table[0x80 + octet]
            # smpplib's table fills the extension table's gaps with '`'.
            if char == "`":
                raise ValueError(f"escape + {octet:#04x} is not a GSM character")
            chars.append(char)
            escaped = False
        elif octet == 0x1B:
            escaped = True
        else:
            chars.append(table[octet])
    if escaped:
        raise ValueError("an escape without the character it announces")
    return "".join(chars)


def decode_user_data(data_coding, octets):
    if data_coding == smpplib.consts.SMPP_ENCODING_DEFAULT:
        return gsm_decode(octets)
    if data_coding == smpplib.consts.SMPP_ENCODING_ISO10646:
        return octets.decode("utf-16-be")
    raise AssertionError(f"data_coding {data_coding} is not a text coding")


def split_udh(pdu):
    """(concatenation (reference, total, sequence) or None, user data without the header)."""
    octets = pdu.short_message
    if not pdu.esm_class & ESM_UDHI:
        return None, octets
    length = octets[0]
    header, rest = octets[1:1 + length], octets[1 + length:]
    concat = None
    i = 0
    while i < len(header):
        iei, ie_length = header[i], header[i + 1]
        value = header[i + 2:i + 2 + ie_length]
        if iei == 0x00:
            concat = (value[0], value[1], value[2])
        elif iei == 0x08:
            concat = (value[0] << 8 | value[1], value[2], value[3])
        i += 2 + ie_length
    return concat, rest


def reassemble(pdus):
    """The text of one message sent as UDH-concatenated parts, joined by reference and
    sequence number as a handset would; all parts must be present, each exactly once."""
    parts = {}
    for pdu in pdus:
        concat, user_data = split_udh(pdu)
        assert concat is not None, f"not a concatenated part: esm_class {pdu.esm_class:#x}"
        parts.setdefault(concat[0], []).append((concat, pdu.data_coding, user_data))
    assert len(parts) == 1, f"parts of {len(parts)} messages: {sorted(parts)}"
    [(_, message)] = parts.items()
    total = message[0][0][1]
    assert sorted(c[2] for c, _, _ in message) == list(range(1, total + 1)), message
    codings = {coding for _, coding, _ in message}
    assert len(codings) == 1, codings
    joined = b"".join(data for _, _, data in sorted(message, key=lambda m: m[0][2]))
    return decode_user_data(codings.pop(), joined)
