"""The credential-map plugin as the answer to SMPP's 8-character password field: smpplib 2.2.4,
which cuts every password to 8 characters, binds with short SMPP credentials that the plugin
maps to an SMSGate account whose password it could never send."""

import pytest
import smpplib.consts
import smpplib.exceptions
import smpplib.smpp

import support
from support import LONG_PASSWORD

ROK = smpplib.consts.SMPP_ESME_ROK
RINVPASWD = smpplib.consts.SMPP_ESME_RINVPASWD
RINVSYSID = smpplib.consts.SMPP_ESME_RINVSYSID

# The SMSGate account behind the mapping, with a password of SMSGate's length.
ACCOUNT = "tenant-7"
# What the ESME is given instead: both fit SMPP 3.4 and survive smpplib unchanged.
SYSTEM_ID = "shop1"
PASSWORD = "s3cret12"

CREDENTIAL_MAP = f"""order = 10
failure_policy = "fail-closed"

[config]
# Only mapped users may bind; SMSGate credentials themselves are not accepted.
unknown = "reject"

[config.users.{SYSTEM_ID}]
password = "{PASSWORD}"
smsgate_username = "{ACCOUNT}"
smsgate_password = "{LONG_PASSWORD}"
"""


@pytest.fixture(scope="module")
def mapped(plugin_stack):
    return plugin_stack({"credential-map": CREDENTIAL_MAP}, [(ACCOUNT, LONG_PASSWORD)])


def test_smpplib_binds_with_short_credentials_and_sends_as_the_long_password_account(mapped):
    assert len(LONG_PASSWORD) >= 20 and len(PASSWORD) == 8
    # What smpplib puts on the wire is the whole password: nothing is cut.
    pdu = smpplib.smpp.make_pdu("bind_transceiver", client=None, sequence=1,
                                system_id=SYSTEM_ID, password=PASSWORD)
    assert PASSWORD.encode() + b"\x00" in pdu.generate()

    number = support.new_number()
    client = support.connect(mapped)
    try:
        resp = client.bind_transceiver(system_id=SYSTEM_ID, password=PASSWORD)
        assert resp.status == ROK
        assert client.state == smpplib.consts.SMPP_CLIENT_STATE_BOUND_TRX
        responses = support.send_text(client, number, "sent as tenant-7")
        assert [r.status for r in responses] == [ROK]
        message_id = support.text_of(responses[0].message_id)
    finally:
        support.close(client)

    messages = support.simulator_messages(mapped, number)
    assert len(messages) == 1, messages
    # The gateway call carried the account's own 20-character credentials.
    assert messages[0]["account"] == ACCOUNT
    assert messages[0]["id"] == message_id
    assert messages[0]["request"]["textMessage"]["text"] == "sent as tenant-7"


def test_a_wrong_short_password_is_refused(mapped):
    client = support.connect(mapped)
    try:
        with pytest.raises(smpplib.exceptions.PDUError) as refused:
            client.bind_transmitter(system_id=SYSTEM_ID, password="s3cret13")
        assert refused.value.args[1] == RINVPASWD, refused.value.args
    finally:
        client.disconnect()


def test_an_unmapped_system_id_is_refused(mapped):
    # The account's own name and (cut) password are no way in when the operator maps users.
    client = support.connect(mapped)
    try:
        with pytest.raises(smpplib.exceptions.PDUError) as refused:
            client.bind_transmitter(system_id=ACCOUNT, password=LONG_PASSWORD)
        assert refused.value.args[1] == RINVSYSID, refused.value.args
    finally:
        client.disconnect()
