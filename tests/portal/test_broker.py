"""The embedded broker (no REDIS_URL): a message a worker takes is always the whole message, even
while it is being published. kombu's own filesystem transport loses about one in ten of these
(the worker reads a file still being written and stops on the JSONDecodeError)."""

from __future__ import annotations

import threading

from kombu import Connection

from portal.broker import Transport

MESSAGES = 500


def test_messages_taken_while_they_are_published_arrive_whole(tmp_path):
    options = {
        "data_folder_in": tmp_path,
        "data_folder_out": tmp_path,
        "control_folder": tmp_path / "control",  # kombu's default is ./control
        "polling_interval": 0,
    }

    def publish():
        with Connection("filesystem://", transport=Transport, transport_options=options) as conn:
            queue = conn.SimpleQueue("work")
            for number in range(MESSAGES):
                queue.put({"number": number, "padding": "x" * 4000})

    publisher = threading.Thread(target=publish)
    received = []
    with Connection("filesystem://", transport=Transport, transport_options=options) as conn:
        queue = conn.SimpleQueue("work")
        publisher.start()
        while len(received) < MESSAGES:
            message = queue.get(timeout=10)
            received.append(message.payload["number"])
            message.ack()
    publisher.join(timeout=10)
    assert sorted(received) == list(range(MESSAGES))
    assert not list(tmp_path.glob("*.partial"))
