"""text-rewrite: a policy plugin in Python. It rewrites the text of every submitted message by a
table in its configuration, e.g. to spell out abbreviations or replace words a network filters:

    [config.rewrite]
    "u" = "you"
    "gr8" = "great"

Whole words only, case-sensitive, in the order the keys sort. Binary messages pass unchanged.
"""

import re

from wit_world import WitWorld as Plugin
from wit_world.imports import host, types
from wit_world.imports.host import Level

PREFIX = "rewrite."


def table():
    """The rewrite table from the plugin's configuration, read on each call so a reload of the
    configuration applies at once."""
    return [(key[len(PREFIX):], host.config_get(key) or "") for key in host.config_keys(PREFIX)]


def rewrite(text, pairs):
    for word, replacement in pairs:
        text = re.sub(rf"\b{re.escape(word)}\b", replacement, text)
    return text


class WitWorld(Plugin):
    def describe(self):
        return types.PluginInfo(
            name="text-rewrite", version="1.0.0", hooks=types.Hooks.TRANSFORM_SUBMIT
        )

    def transform_submit(self, account, message):
        if not isinstance(message.content, types.Content_Text):
            return types.TransformResult_Continue()
        text = message.content.value
        changed = rewrite(text, table())
        if changed == text:
            return types.TransformResult_Continue()
        host.log(Level.DEBUG, f"rewrote {len(text)} characters for {account.id}")
        message.content = types.Content_Text(changed)
        return types.TransformResult_Replace(message)

    # The server calls only the hooks `describe` names; these are never called.
    def authenticate(self, request):
        return types.AuthResult_Pass()

    def route(self, account, message):
        return types.RouteResult_Continue()

    def transform_deliver(self, account, deliver):
        return types.DeliverResult_Continue()

    def route_incoming(self, incoming, candidates):
        return types.RouteIncomingResult_Continue()
