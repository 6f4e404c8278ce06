"""The README's smpplib example, run as a newcomer runs it: it must print the message id of its
submit_sm and then the receipt for that id."""

import re
import subprocess
import sys
from pathlib import Path

import support

README = Path(__file__).resolve().parents[2] / "README.md"
QUICK_START_ADDRESS = '"127.0.0.1", 2775'


def quick_start_example():
    """The first Python block of the Quick start section."""
    text = README.read_text()
    section = text[text.index("## Quick start"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_quick_start_example_prints_the_message_id_and_its_receipt(delivery_stack):
    code = quick_start_example()
    assert QUICK_START_ADDRESS in code, code
    code = code.replace(
        QUICK_START_ADDRESS, f'"{delivery_stack.host}", {delivery_stack.smpp_port}'
    )
    # The example's bind registers the webhooks in the background, seconds before the quick
    # start's simulator reports delivery; this stack's simulator takes 100 ms a step, so a
    # receiver registers them first (they stay for delivery.webhook_grace).
    receiver = support.connect(delivery_stack)
    try:
        receiver.bind_receiver(system_id="demo", password="demo1234")
        support.wait_webhooks_registered(delivery_stack)
    finally:
        support.close(receiver)

    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    message_id = re.search(r"^message id: (\S+)$", run.stdout, re.M)
    assert message_id, run.stdout + run.stderr
    receipt = rf"^receipt: id:{re.escape(message_id[1])} .*stat:DELIVRD err:000 "
    assert re.search(receipt, run.stdout, re.M), run.stdout + run.stderr
