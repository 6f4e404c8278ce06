"""The delivery path with smpplib 2.2.4 as the receiving ESME: what the simulated phone
reports (receipts of submitted messages, incoming SMS) must reach a bound receiver as the
deliver_sm an ESME's existing receipt and MO handling expects, and smpplib's own
deliver_sm_resp must be what takes each off the server's queue."""

import re

import smpplib.consts

import support

ROK = smpplib.consts.SMPP_ESME_ROK
GSM = smpplib.consts.SMPP_ENCODING_DEFAULT
UCS2 = smpplib.consts.SMPP_ENCODING_ISO10646
TON_INTL = smpplib.consts.SMPP_TON_INTL
TON_ALNUM = smpplib.consts.SMPP_TON_ALNUM

# message_state of a final DELIVRD receipt (SMPP 3.4 5.2.28).
DELIVERED = 2

# SMPP 3.4 Appendix B, as ESMEs parse it; the dates are YYMMDDhhmm.
RECEIPT_TEXT = re.compile(
    r"id:(?P<id>\S+) sub:001 dlvrd:001 submit date:\d{10} done date:\d{10} "
    r"stat:DELIVRD err:000 text:(?P<text>.*)"
)

# The phone's own number, as the simulator reports it for an incoming SMS.
PHONE = "+4915100000001"

# Escaped extension characters and '@' (septet 0x00, a NUL in short_message) among plain ones.
GSM_TEXT = "Hallo @Anna: {Preis} 5€ [ok] ÄÖÑÜ ¿ñ? _Δ_"
# Cyrillic, and an emoji that UCS-2 can only carry as a surrogate pair.
UNICODE_TEXT = "Привет, мир! 😀 Ω≈ç"
# 200 characters, 201 septets: the '€' on characters 152-153 is an escape sequence that
# would straddle a split at 153 septets, so the first part must end before it.
LONG_TEXT = ("Incoming long message, part of a test. " * 4)[:152] + "€" + (
    " The rest of it follows in the second part." * 2
)[:47]


def receipts_for(received, message_id):
    return [
        p for p in received
        if p.esm_class & support.ESM_DELIVERY_RECEIPT
        and support.text_of(p.receipted_message_id) == message_id
    ]


def from_sender(received, number):
    return [p for p in received if support.text_of(p.source_addr) == number]


def bind_receiver(client, command="bind_transceiver"):
    resp = getattr(client, command)(system_id="demo", password="demo1234")
    assert resp.status == ROK
    return support.Inbox(client)


def submit_for_receipt(client, number, text):
    [resp] = support.send_text(client, number, text, registered_delivery=1)
    assert resp.status == ROK
    message_id = support.text_of(resp.message_id)
    assert message_id
    return message_id


def check_receipt(pdu, message_id, number, text):
    """A receipt of a submit_sm from "Tests" (alphanumeric) to `number` (international,
    digits only, as the ESME sent it)."""
    assert pdu.esm_class == support.ESM_DELIVERY_RECEIPT
    assert pdu.data_coding == GSM
    assert support.text_of(pdu.receipted_message_id) == message_id
    assert pdu.message_state == DELIVERED
    body = support.gsm_decode(pdu.short_message)
    match = RECEIPT_TEXT.fullmatch(body)
    assert match, body
    assert match["id"] == message_id
    assert match["text"] == text[:20]
    # It travels back from the handset to the submitter: the addresses swap. ESMEs match
    # receipts on them too, so they must be the ones the ESME sent, byte for byte.
    addresses = (
        (pdu.source_addr_ton, support.text_of(pdu.source_addr)),
        (pdu.dest_addr_ton, support.text_of(pdu.destination_addr)),
    )
    assert addresses == ((TON_INTL, number), (TON_ALNUM, "Tests"))


def wait_queue_drained(stack):
    # Only an ESME_ROK deliver_sm_resp removes an item: this is smpplib's answer arriving.
    assert support.wait_for(lambda: support.queued_items(stack) == 0, timeout=10.0), (
        f"{support.queued_items(stack)} deliver_sm still queued for demo"
    )


def test_receipt_over_plain_tcp_transceiver(delivery_stack):
    stack = delivery_stack
    number = support.new_number()
    text = "Receipt wanted for this one"
    client = support.connect(stack)
    try:
        inbox = bind_receiver(client)
        support.wait_webhooks_registered(stack)
        message_id = submit_for_receipt(client, number, text)

        received = inbox.read_until(lambda r: receipts_for(r, message_id), timeout=15.0)
        assert receipts_for(received, message_id), [vars(p) for p in received]
        # sms:sent also reaches the server, but registered_delivery=1 asks for the final
        # outcome only; a repeated sms:delivered must not make a second receipt either.
        received = inbox.read_for(1.0)
        [receipt] = receipts_for(received, message_id)
        check_receipt(receipt, message_id, number, text)
        assert [p for p in received if p is not receipt] == [], [vars(p) for p in received]
        wait_queue_drained(stack)
    finally:
        support.close(client)


def test_receipt_reaches_a_tls_receiver_of_a_plain_transmitter(delivery_stack, tls_ca):
    stack = delivery_stack
    number = support.new_number()
    text = "Sent on plain, reported on TLS"
    receiver = support.connect(stack, ssl_context=support.tls_context(tls_ca))
    transmitter = None
    try:
        inbox = bind_receiver(receiver, "bind_receiver")
        assert receiver.state == smpplib.consts.SMPP_CLIENT_STATE_BOUND_RX
        support.wait_webhooks_registered(stack)

        transmitter = support.connect(stack)
        assert transmitter.bind_transmitter(system_id="demo", password="demo1234").status == ROK
        message_id = submit_for_receipt(transmitter, number, text)

        received = inbox.read_until(lambda r: receipts_for(r, message_id), timeout=15.0)
        [receipt] = receipts_for(received, message_id)
        check_receipt(receipt, message_id, number, text)
        wait_queue_drained(stack)
    finally:
        if transmitter is not None:
            support.close(transmitter)
        support.close(receiver)


def test_incoming_sms_in_gsm_ucs2_and_udh_parts(delivery_stack):
    assert len(LONG_TEXT) == 200
    stack = delivery_stack
    client = support.connect(stack)
    try:
        inbox = bind_receiver(client, "bind_receiver")
        support.wait_webhooks_registered(stack)

        # One at a time: the order of deliver_sm for separate webhook calls is not promised.
        cases = [(GSM_TEXT, GSM, 1), (UNICODE_TEXT, UCS2, 1), (LONG_TEXT, GSM, 2)]
        for text, data_coding, count in cases:
            # A sender per case keeps a late duplicate of one case out of the next.
            sender = support.new_number()
            answer = support.inject_sms(stack, f"+{sender}", text=text, to=PHONE)
            assert answer["event"] == "sms:received", answer
            assert answer["webhooks"] == 1, answer

            inbox.read_until(lambda r: len(from_sender(r, sender)) >= count)
            # A moment more, so that a part too many or a repeat would be seen.
            received = inbox.read_for(0.5)
            pdus = from_sender(received, sender)
            assert len(pdus) == count, (text, [vars(p) for p in received])
            for pdu in pdus:
                assert pdu.source_addr_ton == TON_INTL
                assert support.text_of(pdu.destination_addr) == PHONE.lstrip("+")
                assert pdu.dest_addr_ton == TON_INTL
                assert pdu.data_coding == data_coding, (text, pdu.data_coding)
                assert not pdu.esm_class & support.ESM_DELIVERY_RECEIPT

            if count == 1:
                [pdu] = pdus
                assert pdu.esm_class == 0
                got = support.decode_user_data(pdu.data_coding, pdu.short_message)
            else:
                assert all(p.esm_class == support.ESM_UDHI for p in pdus)
                got = support.reassemble(pdus)
                # Each part stands on its own: no escape sequence is cut in two.
                by_sequence = sorted((support.split_udh(p) for p in pdus), key=lambda c: c[0][2])
                assert "".join(support.gsm_decode(data) for _, data in by_sequence) == text
            assert got == text
        wait_queue_drained(stack)
    finally:
        support.close(client)
