"""smpplib 2.2.4, a widely used third-party ESME library, against the real server: what a
customer's existing integration does must work unchanged."""

import ssl

import pytest
import smpplib.client
import smpplib.command
import smpplib.consts
import smpplib.exceptions
import smpplib.smpp

import support
from support import LONG_PASSWORD

ROK = smpplib.consts.SMPP_ESME_ROK
RINVPASWD = smpplib.consts.SMPP_ESME_RINVPASWD
UCS2 = smpplib.consts.SMPP_ENCODING_ISO10646

# SMPP message_state values in query_sm_resp.
ENROUTE = 1
DELIVERED = 2

# Only characters of the GSM 03.38 default alphabet, including '@' (septet 0x00, so a NUL in
# short_message) and the escaped extension characters '{', '}' and '€'.
GSM_TEXT = "Hallo @Anna: Grüße! {Preis} 5€ ÄÖÑÜ ¿ñ? _Δ_"


def tls_context(ca):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(context)
    # smpplib wraps the socket before connect() without server_hostname, so Python cannot
    # compare names; the chain is still verified against the test CA (CERT_REQUIRED).
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def bind(client, command, system_id, password):
    return getattr(client, command)(system_id=system_id, password=password)


def test_gsm_text_over_plain_tcp(stack):
    number = support.new_number()
    client = support.connect(stack)
    try:
        resp = bind(client, "bind_transceiver", "demo", "demo1234")
        assert resp.status == ROK

        responses = support.send_text(client, number, GSM_TEXT)
        assert len(responses) == 1
        assert responses[0].status == ROK
        message_id = support.text_of(responses[0].message_id)
        assert message_id

        client.send_pdu(smpplib.smpp.make_pdu("enquire_link", client=client))
        assert support.expect(client, "enquire_link_resp").status == ROK
    finally:
        support.close(client)
    assert client.state == smpplib.consts.SMPP_CLIENT_STATE_CLOSED

    messages = support.simulator_messages(stack, number)
    assert len(messages) == 1, messages
    request = messages[0]["request"]
    assert messages[0]["account"] == "demo"
    assert request["textMessage"]["text"] == GSM_TEXT
    assert request["phoneNumbers"] == [f"+{number}"]
    assert messages[0]["id"] == message_id


def test_bind_and_submit_over_tls(stack, tls_ca):
    number = support.new_number()
    client = support.connect(stack, ssl_context=tls_context(tls_ca))
    try:
        resp = bind(client, "bind_transmitter", "demo", "demo1234")
        assert resp.status == ROK
        assert client.state == smpplib.consts.SMPP_CLIENT_STATE_BOUND_TX
        responses = support.send_text(client, number, "over TLS")
        assert [r.status for r in responses] == [ROK]
    finally:
        support.close(client)

    messages = support.simulator_messages(stack, number)
    assert [m["request"]["textMessage"]["text"] for m in messages] == ["over TLS"]


def test_tls_listener_presents_the_configured_certificate(stack):
    # A client that does not trust the test CA must refuse the handshake; otherwise the
    # previous test would prove nothing about which certificate the server serves.
    untrusting = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    untrusting.check_hostname = False
    untrusting.verify_mode = ssl.CERT_REQUIRED
    client = smpplib.client.Client(
        stack.host, stack.tls_port, timeout=support.SOCKET_TIMEOUT,
        ssl_context=untrusting, allow_unknown_opt_params=False,
    )
    with pytest.raises(smpplib.exceptions.ConnectionError):
        client.connect()
    client.disconnect()


def test_long_ucs2_message_is_reassembled(stack):
    # 200 code points; the emoji sits on units 66 and 67, so smpplib's byte-wise split
    # (67 UCS-2 units a part) cuts its surrogate pair across parts 1 and 2. Only a server that
    # joins the bytes before decoding gets the text back.
    text = ("Привет, мир! " * 6)[:66] + "😀" + ("Длинное сообщение из трёх частей. " * 6)[:133]
    assert len(text) == 200
    number = support.new_number()
    client = support.connect(stack)
    try:
        bind(client, "bind_transceiver", "demo", "demo1234")
        responses = support.send_text(client, number, text, encoding=UCS2)
        assert len(responses) == 3
        assert [r.status for r in responses] == [ROK] * 3
        ids = [support.text_of(r.message_id) for r in responses]
        assert all(ids) and len(set(ids)) == 3, ids
    finally:
        support.close(client)

    messages = support.simulator_messages(stack, number)
    assert len(messages) == 1, messages
    assert messages[0]["request"]["textMessage"]["text"] == text
    # Every part id leads back to the one gateway message.
    assert all(i.split(".")[0] == messages[0]["id"] for i in ids), (ids, messages[0]["id"])


def test_wrong_password_is_refused_then_the_right_one_binds(stack):
    client = support.connect(stack)
    try:
        with pytest.raises(smpplib.exceptions.PDUError) as refused:
            bind(client, "bind_transceiver", "demo", "wrong-pw")
        assert refused.value.args[1] == RINVPASWD, refused.value.args
        assert client.state == smpplib.consts.SMPP_CLIENT_STATE_OPEN
    finally:
        client.disconnect()

    client = support.connect(stack)
    try:
        assert bind(client, "bind_transceiver", "demo", "demo1234").status == ROK
    finally:
        support.close(client)


class LongPasswordBindTransmitter(smpplib.command.BindTransmitter):
    """smpplib's bind_transmitter with room for a 64-character password. SMPP 3.4 allows 8,
    smpplib cuts longer ones to 8 without a word, and SMSGate passwords are longer: this is
    what an integration has to do to use one."""

    params = {
        **smpplib.command.BindTransmitter.params,
        "password": smpplib.command.Param(type=str, max=65),
    }


def test_smpplib_cuts_long_passwords_and_the_cut_one_is_refused(stack):
    # smpplib 2.2.4 declares password as Param(max=9) and keeps max-1 characters. The server
    # must refuse the prefix rather than match on it.
    pdu = smpplib.smpp.make_pdu("bind_transmitter", client=None, sequence=1,
                                system_id="longuser", password=LONG_PASSWORD)
    wire = pdu.generate()
    assert LONG_PASSWORD[:8].encode() + b"\x00" in wire
    assert LONG_PASSWORD[:9].encode() not in wire

    client = support.connect(stack)
    try:
        with pytest.raises(smpplib.exceptions.PDUError) as refused:
            bind(client, "bind_transmitter", "longuser", LONG_PASSWORD)
        assert refused.value.args[1] == RINVPASWD
    finally:
        client.disconnect()


def test_twenty_character_password_binds(stack):
    assert len(LONG_PASSWORD) == 20
    number = support.new_number()
    client = support.connect(stack)
    try:
        pdu = LongPasswordBindTransmitter(
            "bind_transmitter", client=client, system_id="longuser", password=LONG_PASSWORD
        )
        assert LONG_PASSWORD.encode() + b"\x00" in pdu.generate()
        client.send_pdu(pdu)
        resp = support.expect(client, "bind_transmitter_resp")
        assert resp.status == ROK
        assert client.state == smpplib.consts.SMPP_CLIENT_STATE_BOUND_TX
        assert [r.status for r in support.send_text(client, number, "long password")] == [ROK]
    finally:
        support.close(client)

    messages = support.simulator_messages(stack, number)
    assert [m["account"] for m in messages] == ["longuser"]


def test_query_sm_follows_the_message_to_delivered(stack):
    number = support.new_number()
    client = support.connect(stack)
    try:
        bind(client, "bind_transceiver", "demo", "demo1234")
        # A delivery report asks the phone to follow the message to the end (Delivered);
        # without one it stops at Sent.
        [submitted] = support.send_text(client, number, "where are you?", registered_delivery=1)
        assert submitted.status == ROK
        message_id = support.text_of(submitted.message_id)

        first = support.query(client, message_id)
        assert first.status == ROK
        assert support.text_of(first.message_id) == message_id
        assert first.message_state in (ENROUTE, DELIVERED)

        def delivered():
            resp = support.query(client, message_id)
            assert resp.status == ROK
            return resp if resp.message_state == DELIVERED else None

        final = support.wait_for(delivered, timeout=10.0, interval=0.1)
        assert final, "query_sm never reported DELIVERED"
        # final_date is an SMPP absolute time: YYMMDDhhmmsstnnp, 16 characters.
        assert len(support.text_of(final.final_date)) == 16, final.final_date

        unknown = support.query(client, "no-such-message")
        assert unknown.status in (
            smpplib.consts.SMPP_ESME_RQUERYFAIL,
            smpplib.consts.SMPP_ESME_RINVMSGID,
        ), hex(unknown.status)
    finally:
        support.close(client)


def test_query_sm_accepts_a_part_id(stack):
    number = support.new_number()
    text = "Ж" * 100  # two UCS-2 parts
    client = support.connect(stack)
    try:
        bind(client, "bind_transceiver", "demo", "demo1234")
        responses = support.send_text(client, number, text, encoding=UCS2)
        assert [r.status for r in responses] == [ROK, ROK]
        for resp in responses:
            answer = support.query(client, support.text_of(resp.message_id))
            assert answer.status == ROK
            assert answer.message_state in (ENROUTE, DELIVERED)
    finally:
        support.close(client)
