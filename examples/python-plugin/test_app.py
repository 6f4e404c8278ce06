"""Native tests of text-rewrite: the plugin's class called as the server would call it, with the
host functions given the configuration of text-rewrite.toml. `build` runs them against bindings
generated from the contract before it builds the component."""

import pytest

import app
from wit_world.imports import host, types

CONFIG = {"rewrite.gr8": "great", "rewrite.u": "you"}


@pytest.fixture(autouse=True)
def configured(monkeypatch):
    monkeypatch.setattr(host, "config_keys", lambda prefix: sorted(k for k in CONFIG if k.startswith(prefix)))
    monkeypatch.setattr(host, "config_get", CONFIG.get)
    monkeypatch.setattr(host, "log", lambda level, message: None)


def message(content):
    return types.Message(
        service_type="", source=types.Address(5, 0, "Shop"),
        destinations=[types.Address(1, 1, "491701234567")], esm_class=0, protocol_id=0,
        priority_flag=0, registered_delivery=0, data_coding=0, content=content, validity=None,
        schedule_at=None, tlvs=[], labels=[],
    )


ACCOUNT = types.Account(
    id="shop1", credentials=types.Credentials_Bearer("t"), api_base_url=None, device_id=None,
    sim_number=None, limits=types.AccountLimits(None, None), labels=[],
)


def test_it_declares_transform_submit_only():
    assert app.WitWorld().describe().hooks == types.Hooks.TRANSFORM_SUBMIT


def test_whole_words_are_rewritten():
    result = app.WitWorld().transform_submit(ACCOUNT, message(types.Content_Text("u are gr8, ugr8")))
    assert isinstance(result, types.TransformResult_Replace)
    assert result.value.content == types.Content_Text("you are great, ugr8")


def test_text_without_a_listed_word_and_binary_content_pass_unchanged():
    plugin = app.WitWorld()
    untouched = plugin.transform_submit(ACCOUNT, message(types.Content_Text("hello")))
    assert isinstance(untouched, types.TransformResult_Continue)
    binary = plugin.transform_submit(ACCOUNT, message(types.Content_Binary(types.BinaryContent(b"u", 0))))
    assert isinstance(binary, types.TransformResult_Continue)
