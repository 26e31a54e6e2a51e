"""End-to-end scenario through matrix-nio, a third-party Matrix client
library (Debian's python3-matrix-nio), against a running Axon server.

Usage: nio_scenario.py BASE_URL SERVER_NAME

Two users register, one creates a room and invites the other, who joins;
they exchange messages; each sees the other's messages through /sync;
history is paginated with /messages; a state change and a redaction are
seen; then both log out. Any unexpected answer raises, and the exit code is
non-zero.
"""

import asyncio
import sys
import uuid

from nio import (
    AsyncClient,
    JoinResponse,
    LoginResponse,
    RegisterResponse,
    RoomCreateResponse,
    RoomGetStateEventResponse,
    RoomInviteResponse,
    RoomMessagesResponse,
    RoomMessageText,
    RoomPutStateResponse,
    RoomRedactResponse,
    RoomSendResponse,
    SyncResponse,
    InviteMemberEvent,
)


def check(resp, kind, what):
    if not isinstance(resp, kind):
        raise SystemExit(f"{what}: unexpected answer {resp!r}")
    return resp


async def wait_for(client, predicate, what, rounds=20):
    """Syncs until predicate(sync_response) is true."""
    for _ in range(rounds):
        resp = check(await client.sync(timeout=5000), SyncResponse, f"{what}: sync")
        if predicate(resp):
            return resp
    raise SystemExit(f"{what}: never seen through /sync")


def texts(resp, room_id):
    room = resp.rooms.join.get(room_id)
    if room is None:
        return []
    return [e.body for e in room.timeline.events if isinstance(e, RoomMessageText)]


async def main(base, server_name):
    tag = uuid.uuid4().hex[:8]
    alice = AsyncClient(base, f"alice{tag}")
    bob = AsyncClient(base, f"bob{tag}")
    try:
        check(await alice.register(f"alice{tag}", "alice-password-1"), RegisterResponse, "register alice")
        check(await bob.register(f"bob{tag}", "bob-password-1"), RegisterResponse, "register bob")

        # A fresh login on another device works too.
        other = AsyncClient(base, f"@alice{tag}:{server_name}")
        check(await other.login("alice-password-1", device_name="second"), LoginResponse, "login alice")
        await other.logout()
        await other.close()

        room = check(await alice.room_create(name="e2e", topic="through nio"), RoomCreateResponse, "create room")
        room_id = room.room_id
        check(await alice.room_invite(room_id, bob.user_id), RoomInviteResponse, "invite bob")

        await wait_for(bob, lambda r: room_id in r.rooms.invite, "bob's invite")
        check(await bob.join(room_id), JoinResponse, "bob joins")

        check(await alice.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "hello bob"}),
              RoomSendResponse, "alice sends")
        await wait_for(bob, lambda r: "hello bob" in texts(r, room_id), "alice's message at bob")

        sent = check(await bob.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "hi alice"}),
                     RoomSendResponse, "bob sends")
        await wait_for(alice, lambda r: "hi alice" in texts(r, room_id), "bob's message at alice")

        for i in range(15):
            check(await alice.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": f"n{i}"}),
                  RoomSendResponse, f"alice sends n{i}")
        history = check(await bob.room_messages(room_id, start="", limit=30), RoomMessagesResponse, "pagination")
        bodies = [e.body for e in history.chunk if isinstance(e, RoomMessageText)]
        if bodies[:3] != ["n14", "n13", "n12"] or "hello bob" not in bodies:
            raise SystemExit(f"pagination: unexpected history {bodies}")

        check(await alice.room_put_state(room_id, "m.room.topic", {"topic": "changed"}), RoomPutStateResponse, "topic")
        topic = check(await bob.room_get_state_event(room_id, "m.room.topic"), RoomGetStateEventResponse, "get topic")
        if topic.content.get("topic") != "changed":
            raise SystemExit(f"topic: got {topic.content}")

        check(await bob.room_redact(room_id, sent.event_id, reason="oops"), RoomRedactResponse, "redact")
        print("nio scenario: ok")
    finally:
        await alice.close()
        await bob.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
