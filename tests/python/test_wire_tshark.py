"""Wireshark's SMPP dissector as an independent judge of the server's bytes: a session of
smpplib is captured on loopback and every PDU of it must decode cleanly, with the answers the
session expects."""

import collections
import os
import re
import signal
import subprocess
import threading
import time
from xml.etree import ElementTree

import pytest
import smpplib.consts
import smpplib.smpp

import support

UCS2 = smpplib.consts.SMPP_ENCODING_ISO10646

# SMPP 3.4 command_id values; a response is its request's id with the top bit set.
BIND_TRANSCEIVER = 0x00000009
SUBMIT_SM = 0x00000004
QUERY_SM = 0x00000003
ENQUIRE_LINK = 0x00000015
UNBIND = 0x00000006
DELIVER_SM = 0x00000005
RESPONSE = 0x80000000

# Wireshark's expert severity PI_WARN (epan/proto.h); PI_ERROR, where "Malformed Packet"
# lands, is above it. Chat and note entries (SYN, FIN) are normal TCP life.
PI_WARN = 0x00600000

XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")

# 400 characters of plain GSM text: smpplib splits it into 153 + 153 + 94 septets.
LONG_GSM_TEXT = ("The quick brown fox jumps over the lazy dog 0123456789. " * 8)[:400]


class Capture:
    """tshark writing loopback traffic of one port to a file, from before the session's first
    packet until after its last."""

    def __init__(self, tshark, port, path):
        self.path = path
        self.lines = []
        self._capturing = threading.Event()
        self.proc = subprocess.Popen(
            [tshark, "-i", "lo", "-f", f"tcp port {port}", "-w", str(path), "-q"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("Capturing on"):
                self._capturing.set()

    def wait_capturing(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._capturing.wait(0.1):
                # dumpcap announces the interface as it opens it; give the filter a moment
                # to be attached before the first SYN.
                time.sleep(0.5)
                return True
            if self.proc.poll() is not None:
                break
        return False

    def stop(self):
        if self.proc.poll() is None:
            # SIGINT lets tshark flush and close the file properly.
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)

    def output(self):
        return "\n".join(self.lines)


def run_session(stack):
    """A representative ESME session, receipts and an incoming SMS included; returns how many
    submit_sm it sent."""
    client = support.connect(stack)
    submits = 0
    try:
        resp = client.bind_transceiver(system_id="demo", password="demo1234")
        assert resp.status == 0
        number = support.new_number()
        message_ids = []
        for text, encoding in [
            ("Hello from the wire check @ 5€", smpplib.consts.SMPP_ENCODING_DEFAULT),
            ("Привет, мир! 👋", UCS2),
            (LONG_GSM_TEXT, smpplib.consts.SMPP_ENCODING_DEFAULT),
        ]:
            responses = support.send_text(client, number, text, encoding=encoding)
            assert [r.status for r in responses] == [0] * len(responses)
            submits += len(responses)
            message_ids.append(support.text_of(responses[-1].message_id))
        assert submits == 5, "the long text should have made three parts"

        assert support.query(client, message_ids[0]).status == 0
        client.send_pdu(smpplib.smpp.make_pdu("enquire_link", client=client))
        assert support.expect(client, "enquire_link_resp").status == 0

        # The server's own PDUs: a receipt and an incoming Unicode SMS, answered by smpplib.
        inbox = support.Inbox(client)
        support.wait_webhooks_registered(stack)
        [resp] = support.send_text(client, number, "Receipt on the wire", registered_delivery=1)
        assert resp.status == 0
        submits += 1
        support.inject_sms(stack, "+4915112345678", text="Привет с телефона")
        received = inbox.read_until(lambda r: len(r) >= 2, timeout=20.0)
        assert len(received) == 2, [vars(p) for p in received]
        # smpplib answers a deliver_sm after its handler returns; the queue empties only on
        # that answer, so by then both answers are on the wire.
        assert support.wait_for(lambda: support.queued_items(stack) == 0, timeout=10.0)
    finally:
        support.close(client)
    return submits


def decode(tshark, path, port):
    """Per captured TCP segment that carries data: what the dissectors made of it. PDML keeps
    each SMPP PDU's fields together, which matters when one segment holds several PDUs and
    only responses have a command_status."""
    argv = [tshark, "-r", str(path), "-d", f"tcp.port=={port},smpp", "-Y", "tcp.len > 0",
            "-T", "pdml"]
    result = subprocess.run(argv, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    # Message texts are written as they decode, which is neither always UTF-8 nor always
    # legal in XML; only the protocol fields matter here.
    pdml = XML_ILLEGAL.sub("?", result.stdout.decode("utf-8", errors="replace"))
    segments = []
    for packet in ElementTree.fromstring(pdml).iter("packet"):
        fields = {}
        for field in packet.iter("field"):
            fields.setdefault(field.get("name"), field.get("show"))
        protos = packet.findall("proto")
        pdus = []
        for proto in protos:
            if proto.get("name") != "smpp":
                continue
            pdu = {f.get("name"): f.get("show") for f in proto.iter("field")}
            pdus.append(pdu)
        experts = []
        for expert in packet.iter("field"):
            if expert.get("name") != "_ws.expert":
                continue
            detail = {f.get("name"): f.get("show") for f in expert.iter("field")}
            experts.append((int(detail.get("_ws.expert.severity", "0")),
                            detail.get("_ws.expert.message", expert.get("showname"))))
        segments.append({
            "frame": fields.get("num"),
            "tcp_len": int(fields.get("tcp.len", "0")),
            "reassembled_elsewhere": "tcp.reassembled_in" in fields,
            "pdus": pdus,
            "malformed": any(p.get("name") == "_ws.malformed" for p in protos),
            "experts": experts,
        })
    return segments


def number(text):
    return int(text, 0)


def test_every_pdu_decodes_as_smpp(stack, tshark, tmp_path):
    capture = Capture(tshark, stack.smpp_port, tmp_path / "session.pcapng")
    try:
        if not capture.wait_capturing():
            capture.stop()
            reason = f"tshark cannot capture on lo: {capture.output()!r}"
            if os.environ.get("SMSGATE_REQUIRE_TSHARK") == "1":
                pytest.fail(reason)
            pytest.skip(reason)
        submits = run_session(stack)
        # The last answers were read by smpplib, so they have crossed lo; the pause covers
        # the FIN/ACK exchange and dumpcap's own buffering.
        time.sleep(0.5)
    finally:
        capture.stop()

    segments = decode(tshark, capture.path, stack.smpp_port)
    assert segments, f"nothing was captured; tshark said: {capture.output()}"

    problems = []
    commands = collections.Counter()
    payload_bytes = 0
    pdu_bytes = 0
    for segment in segments:
        frame = segment["frame"]
        payload_bytes += segment["tcp_len"]
        if not segment["pdus"] and not segment["reassembled_elsewhere"]:
            problems.append(f"frame {frame}: data that does not decode as SMPP")
        if segment["malformed"]:
            problems.append(f"frame {frame}: Malformed Packet")
        for severity, message in segment["experts"]:
            if severity >= PI_WARN or "malformed" in (message or "").lower():
                problems.append(f"frame {frame}: expert info {message!r}")
        for pdu in segment["pdus"]:
            pdu_bytes += number(pdu["smpp.command_length"])
            command_id = number(pdu["smpp.command_id"])
            if command_id & RESPONSE and "smpp.command_status" not in pdu:
                problems.append(f"frame {frame}: response {command_id:#010x} without a status")
            # Wireshark shows command_status only for responses; a request's is 0 by rule.
            status = number(pdu.get("smpp.command_status", "0"))
            commands[(command_id, status)] += 1

    assert not problems, "\n".join(problems)
    # Every byte sent either way belongs to a PDU the dissector took apart.
    assert payload_bytes == pdu_bytes, (payload_bytes, pdu_bytes)

    expected = collections.Counter({
        (BIND_TRANSCEIVER, 0): 1,
        (BIND_TRANSCEIVER | RESPONSE, 0): 1,
        (SUBMIT_SM, 0): submits,
        (SUBMIT_SM | RESPONSE, 0): submits,
        (QUERY_SM, 0): 1,
        (QUERY_SM | RESPONSE, 0): 1,
        (ENQUIRE_LINK, 0): 1,
        (ENQUIRE_LINK | RESPONSE, 0): 1,
        (UNBIND, 0): 1,
        (UNBIND | RESPONSE, 0): 1,
        (DELIVER_SM, 0): 2,
        (DELIVER_SM | RESPONSE, 0): 2,
    })
    shown = {f"{c:#010x}/{s:#x}": n for (c, s), n in sorted(commands.items())}
    assert not (expected - commands), f"missing PDUs; decoded: {shown}"
    extra = commands - expected
    # The server may send enquire_link of its own during the session; nothing else.
    extra.pop((ENQUIRE_LINK, 0), None)
    extra.pop((ENQUIRE_LINK | RESPONSE, 0), None)
    assert not extra, f"unexpected PDUs; decoded: {shown}"

    # Wireshark took the receipt's TLVs apart as SMPP 3.4 defines them.
    delivers = [p for s in segments for p in s["pdus"]
                if number(p["smpp.command_id"]) == DELIVER_SM]
    receipt = [p for p in delivers if "smpp.receipted_message_id" in p]
    assert len(receipt) == 1, delivers
    assert receipt[0].get("smpp.message_state") is not None, receipt[0]
