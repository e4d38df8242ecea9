"""Which task messages the broker still holds: how the reconciler tells a lost step message
from one waiting its turn.

Why this exists: a job's step message can vanish with the broker (a Redis restarted without
its data, a queue deleted by hand). The database alone cannot tell such a job from one whose
message waits behind a long but healthy backlog, so judged by age alone a lost message waited
MF_JOB_QUEUE_WAIT_MAX_S (6 h) before it was sent again. The broker knows at once: a message
that is neither waiting in its queue nor reserved by a worker is gone.

Read the way kombu's Redis transport stores messages (kombu/transport/redis.py, `Channel`):
- a queue is one Redis list per priority step: the queue's own name for step 0 and
  `<queue><sep><step>` for the others (`_q_for_pri`); producers LPUSH, workers BRPOP;
- a message a worker has taken and not yet acknowledged (prefetched, or running: step tasks
  acknowledge late) is in the hash named by the `unacked_key` transport option ("unacked"),
  as JSON `[message, exchange, routing_key]`, until it is acknowledged or restored to its queue;
- every key carries the `global_keyprefix` transport option.
A message's task id is its `headers.id` (Celery's message protocol 2), or its
`properties.correlation_id` (both protocols). Any other broker (memory:// in tests) cannot be
read: BrokerUnreadable, and the reconciler keeps its time rule.

A reserved message is held by some worker, not necessarily a live one: one a worker took and
then died with stays in `unacked` until the visibility timeout. So the two are told apart
(`BrokerHeld`), and the reconciler asks the live workers (production.cluster) which of the
reserved ones they hold.
"""

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import redis
from kombu.exceptions import OperationalError
from kombu.transport.redis import Channel as RedisChannel

from microfactory.celery import app

# Messages per LRANGE / HSCAN round trip.
CHUNK = 1000


class BrokerUnreadable(Exception):
    """The broker cannot say which messages it holds (not Redis, unreachable, too many)."""


@dataclass(frozen=True)
class BrokerHeld:
    """The task ids the broker holds: waiting in a queue, or reserved by a worker."""

    queued: frozenset[str]
    reserved: frozenset[str]

    def __contains__(self, task_id: object) -> bool:
        return task_id in self.queued or task_id in self.reserved


def broker_task_ids(*, queues: Iterable[str], limit: int) -> BrokerHeld:
    """The task ids of the messages waiting in `queues` or reserved by any worker, read with
    the Celery app's own broker URL and transport options. Reads only; a second call changes
    nothing.

    Raises BrokerUnreadable when the broker is not Redis, does not answer, or holds more than
    `limit` messages there (the scan stays bounded: the caller falls back for this pass).
    """
    try:
        with app.connection_for_read() as connection:
            # One attempt: the caller falls back for this pass rather than wait for the broker.
            connection.ensure_connection(max_retries=0)
            channel = connection.default_channel
            if not isinstance(channel, RedisChannel):
                raise BrokerUnreadable(f"the broker is not Redis ({connection.transport_cls})")
            return _scan(channel, queues=queues, limit=limit)
    except (OperationalError, redis.RedisError, OSError) as error:
        raise BrokerUnreadable(f"the broker did not answer ({error})") from error


def _scan(channel: RedisChannel, *, queues: Iterable[str], limit: int) -> BrokerHeld:
    # A plain client on the channel's pool (the app's URL and transport options). Kombu's own
    # client prefixes the keys of some commands but not of LRANGE or HSCAN; this one prefixes
    # none, so every key is prefixed here, once.
    client = redis.Redis(connection_pool=channel.pool)
    prefix = channel.global_keyprefix
    # Queues first, reserved messages second: a message a worker takes meanwhile moves from
    # the first to the second and is seen in one of them (but for the instant between BRPOP
    # and kombu recording it; the caller looks twice before it calls a message lost).
    lists = [
        prefix + (queue if not step else f"{queue}{channel.sep}{step}")
        for queue in queues
        for step in sorted(set(channel.priority_steps))
    ]
    ids: dict[bool, set[str]] = {False: set(), True: set()}
    read = 0
    for reserved, raw in _messages(client, lists=lists, unacked=prefix + channel.unacked_key):
        read += 1
        if read > limit:
            raise BrokerUnreadable(f"more than {limit} messages to read (MF_RECONCILE_SCAN_MAX)")
        if task_id := _task_id(raw):
            ids[reserved].add(task_id)
    return BrokerHeld(queued=frozenset(ids[False]), reserved=frozenset(ids[True]))


def _messages(
    client: redis.Redis, *, lists: list[str], unacked: str
) -> Iterator[tuple[bool, bytes | str]]:
    """Every message in `lists`, then every reserved one, read in chunks: (reserved, raw)."""
    for key in lists:
        start = 0
        while True:
            # LPUSHes meanwhile shift the list right: a message may be read twice, never missed.
            chunk = client.lrange(key, start, start + CHUNK - 1)
            yield from ((False, raw) for raw in chunk)
            if len(chunk) < CHUNK:
                break
            start += CHUNK
    for _tag, entry in client.hscan_iter(unacked, count=CHUNK):
        yield True, entry


def _task_id(raw: bytes | str) -> str | None:
    """The task id of one stored message: a queue's entry is the message, a reserved one
    `[message, exchange, routing_key]`. None for what is not a Celery task message."""
    try:
        stored = json.loads(raw)
    except ValueError:
        return None
    message = stored[0] if isinstance(stored, list) and stored else stored
    if not isinstance(message, dict):
        return None
    for section, key in (("headers", "id"), ("properties", "correlation_id")):
        fields = message.get(section)
        if isinstance(fields, dict) and isinstance(fields.get(key), str):
            return str(fields[key])
    return None
