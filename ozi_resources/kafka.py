"""Kafka I/O through kafka-python: topics, producing events, reading offset ranges.

Works the same against the embedded broker (no bootstrap configured: the address comes from
``$OZI_HOME/broker.json`` when first needed) and against a Kafka cluster. Two quirks of the
embedded broker shape the reads: ``end_offsets()`` answers the base offset of the last record
batch + 1, so the high watermark is taken from a fetch response instead; and a consumer-group
join takes ~20 s, so reads ``assign`` and ``seek`` without a group.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import OffsetOutOfRangeError, TopicAlreadyExistsError
from kafka.structs import TopicPartition
from pydantic import Field

from ozi_resources import broker
from ozi_resources.farcaster import Event

READ_TIMEOUT_S = 60.0  # for the high watermark only
BOUNDS_FETCH_WAIT_MS = 20  # the high watermarks: how long a fetch (and a poll) waits for data
BOUNDS_FETCH_BYTES = 1024  # the high watermarks: the most a fetch asks of each partition
IDLE_TIMEOUT_S = 30.0  # a read fails after this long without a message
# A safety net for confluent-kafka reads that come back empty while kafka-python reads the
# same offsets (seen on the embedded broker with a 10 ms fetch wait; see _batches_confluent):
# after this long with nothing, a read goes on with kafka-python from where it stands:
# slower, never stuck.
CONFLUENT_STALL_S = 5.0
log = logging.getLogger("ozi.kafka")
BATCH_MESSAGES = 50_000  # messages a batch: bounds memory, one lake transaction each
# A producer looks at its oldest unacknowledged sends every this many sends, and lets go of the
# acknowledged ones: keeping every send's future until the end held 1.5 GB for 1.2M events.
ACK_CHECK_EVERY = 10_000


Ranges = dict[int, tuple[int, int]]  # partition → (start, end) offsets, end exclusive
Columns = dict[int, tuple[list[int], list[int], list, list]]  # offsets, stamps, keys, values


def _columns(partitions: Iterable[int]) -> Columns:
    return {p: ([], [], [], []) for p in partitions}


def _slices(cols: Columns) -> dict[int, LogSlice]:
    return {
        p: LogSlice(p, np.array(offsets, np.int64), np.array(stamps, np.int64), keys, values)
        for p, (offsets, stamps, keys, values) in cols.items()
    }


def _topic_partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    """The topic's partitions as the consumer's metadata has them ([] if it does not exist)."""
    return [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]


def _beginning(consumer: KafkaConsumer, tps: list[TopicPartition]) -> dict[int, int]:
    """{partition: log start offset} of ``tps``."""
    return {tp.partition: int(o) for tp, o in consumer.beginning_offsets(tps).items()}


class KafkaReadError(RuntimeError):
    """Offsets below the high watermark could not be read back from the broker."""


@dataclass(frozen=True)
class LogSlice:
    """Consecutive messages of one Kafka partition, column by column.

    ``offsets`` and ``timestamps_ms`` (Unix ms, the message timestamp) are int64 arrays;
    ``keys`` and ``values`` the exact bytes received (a key may be None).
    """

    partition: int
    offsets: np.ndarray
    timestamps_ms: np.ndarray
    keys: list[bytes | None]
    values: list[bytes]

    def __len__(self) -> int:
        return len(self.values)

    @staticmethod
    def concat(slices: list[LogSlice]) -> LogSlice:
        """Consecutive slices of one partition as one."""
        return LogSlice(
            slices[0].partition,
            np.concatenate([s.offsets for s in slices]),
            np.concatenate([s.timestamps_ms for s in slices]),
            [k for s in slices for k in s.keys],
            [v for s in slices for v in s.values],
        )

    def select(self, mask: np.ndarray) -> LogSlice:
        """The messages where ``mask`` is True."""
        picks = np.flatnonzero(mask)
        return LogSlice(
            self.partition,
            self.offsets[picks],
            self.timestamps_ms[picks],
            [self.keys[i] for i in picks],
            [self.values[i] for i in picks],
        )


class KafkaResource(dg.ConfigurableResource):
    """The Farcaster event topic and its dead-letter topic."""

    bootstrap_servers: str = Field(
        default="",
        description="Kafka bootstrap servers (host:port,…); empty → the embedded broker.",
    )
    home: str = Field(default=".ozi", description="OZI_HOME, where the embedded broker's state is.")
    topic: str = Field(default="farcaster.events", description="Topic of protocol messages.")
    dlq_topic: str = Field(default="farcaster.events.dlq", description="Dead-letter topic.")
    num_partitions: int = Field(default=3, description="Partitions of topics Ozi creates.")
    consumer_client: str = Field(
        default="confluent-kafka",
        description="Client that reads batches: confluent-kafka (fast) or kafka-python.",
    )
    batch_messages: int = Field(
        default=BATCH_MESSAGES,
        description="Messages a stage reads and commits at a time (bounds memory and the "
        "work a crash can lose).",
    )
    # The stream's time semantics (ozi_resources/windows.py).
    allowed_lateness_s: float = Field(
        default=300.0,
        description="A window closes when the newest timestamp read passes its end by this "
        "many seconds; a message for it after that is late (kept and counted).",
    )
    idle_close_s: float = Field(
        default=60.0,
        description="Seconds without a new message after which windows close by the wall "
        "clock (their end plus the allowed lateness has passed).",
    )
    max_clock_skew_s: float = Field(
        default=600.0,
        description="Seconds a timestamp may lie ahead of the ingest clock (Kafka timestamp) "
        "or of its Kafka timestamp (message timestamp) before it is dead-lettered; the hubs "
        "refuse messages more than 10 minutes ahead of their clock.",
    )

    def bootstrap(self) -> str:
        """The address to connect to; raises BrokerError when the embedded broker is down."""
        return self.bootstrap_servers or broker.bootstrap_for(Path(self.home))

    def ensure_topics(self) -> None:
        """Create the event and dead-letter topics if they do not exist (never recreated)."""
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap(), client_id="ozi-admin")
        try:
            existing = set(admin.list_topics())
            wanted = [
                NewTopic(name, num_partitions=self.num_partitions, replication_factor=1)
                for name in (self.topic, self.dlq_topic)
                if name not in existing
            ]
            if wanted:
                # Another process may create it between list and create.
                with contextlib.suppress(TopicAlreadyExistsError):
                    admin.create_topics(wanted)
        finally:
            admin.close()

    def _consumer(
        self, fetch_max_wait_ms: int = 500, fetch_bytes: int = 16 * 1024 * 1024
    ) -> KafkaConsumer:
        return KafkaConsumer(
            bootstrap_servers=self.bootstrap(),
            fetch_max_wait_ms=fetch_max_wait_ms,
            group_id=None,
            enable_auto_commit=False,
            max_poll_records=100_000,
            fetch_max_bytes=4 * fetch_bytes,
            max_partition_fetch_bytes=fetch_bytes,
            client_id="ozi-reader",
            # Never jump to another offset on its own: a deleted offset must be an error.
            # kafka-python takes "none" (NoOffsetForPartitionError); its hints omit it.
            auto_offset_reset="none",  # type: ignore[arg-type]
        )

    def partitions(self, topic: str | None = None) -> list[int]:
        """Partition ids of the topic (the event topic by default); [] if it does not exist."""
        consumer = self._consumer()
        try:
            return sorted(consumer.partitions_for_topic(topic or self.topic) or [])
        finally:
            consumer.close()

    def high_watermarks(self, topic: str | None = None) -> dict[int, int]:
        """{partition: high watermark}, the offset the next message will get.

        Read from a fetch response: the embedded broker's ListOffsets(latest) is only a lower
        bound, so the consumer seeks one before that bound and polls (one record batch a
        partition, whatever the backlog).
        """
        return self.log_bounds(topic, starts=False)[1]

    def log_starts(self, topic: str | None = None) -> dict[int, int]:
        """{partition: log start offset}, the oldest offset still readable (above 0 once
        retention deleted older segments)."""
        topic = topic or self.topic
        consumer = self._consumer()
        try:
            return _beginning(consumer, _topic_partitions(consumer, topic))
        finally:
            consumer.close()

    def log_bounds(
        self, topic: str | None = None, starts: bool = True
    ) -> tuple[dict[int, int], dict[int, int]]:
        """({partition: log start offset}, {partition: high watermark}) read with one consumer
        (the starts left empty when ``starts`` is false). stream_job reads both before every
        batch: one consumer instead of two saves a connection and its metadata request, about
        a fifth of a small batch's time. The high watermarks are read as high_watermarks says.
        """
        topic = topic or self.topic
        # The fetch that brings the high watermarks waits for data at most this long: at the
        # default 500 ms, a read of a topic with an empty partition took 0.6 s, before every
        # batch of a loop that reads the ends of the log each time.
        # Only the fetch response's high watermark is wanted, not its records: a fetch of at
        # most BOUNDS_FETCH_BYTES a partition (a broker still sends one whole record batch)
        # and one record decoded. With the default 16 MiB, the read took 18 -> 40 ms as the
        # embedded broker's log grew from 70k to 220k messages under a 2,000 events/s
        # stream, against 13 -> 25 ms (same run).
        consumer = self._consumer(
            fetch_max_wait_ms=BOUNDS_FETCH_WAIT_MS, fetch_bytes=BOUNDS_FETCH_BYTES
        )
        try:
            tps = _topic_partitions(consumer, topic)
            if not tps:
                return {}, {}
            first = _beginning(consumer, tps) if starts else {}
            consumer.assign(tps)
            for tp, bound in consumer.end_offsets(tps).items():
                consumer.seek(tp, max(bound - 1, 0))
            deadline = time.monotonic() + READ_TIMEOUT_S
            while any(consumer.highwater(tp) is None for tp in tps):
                if time.monotonic() > deadline:
                    raise KafkaReadError(f"no high watermark for {topic} within the timeout")
                consumer.poll(timeout_ms=BOUNDS_FETCH_WAIT_MS, max_records=1)
            return first, {tp.partition: int(consumer.highwater(tp)) for tp in tps}  # type: ignore[arg-type]
        finally:
            consumer.close()

    def batches(
        self,
        ranges: dict[int, tuple[int, int]],
        max_messages: int = BATCH_MESSAGES,
        topic: str | None = None,
    ) -> Iterator[dict[int, LogSlice]]:
        """Read ``{partition: (start, end)}`` offset ranges (end exclusive) batch by batch.

        Each batch holds at most ``max_messages`` messages in all and, per partition, the
        consecutive offsets after the previous batch's; every partition appears in every batch
        (possibly empty). One consumer serves all batches. There is no deadline on the whole
        read, only an inactivity timeout: KafkaReadError when no message arrives for
        ``IDLE_TIMEOUT_S`` while offsets below ``end`` are missing (end past the high
        watermark, a broker that lost them), or when an offset is out of the log's range
        (deleted by retention: the consumer never jumps elsewhere on its own).

        Consumes with confluent-kafka (librdkafka) unless ``consumer_client`` is
        ``kafka-python``: kafka-python decodes every record in Python and tops out near 15k
        messages/s here, a fraction of what the rest of the stage does (``make bench``). A
        confluent-kafka read that gets nothing for ``CONFLUENT_STALL_S`` goes on with
        kafka-python from where it stands.
        """
        topic = topic or self.topic
        wanted = {p: r for p, r in ranges.items() if r[1] > r[0]}
        if not wanted:
            return iter(())
        if self.consumer_client == "kafka-python":
            return self._batches_kafka_python(ranges, wanted, max_messages, topic)
        return self._batches_confluent(ranges, wanted, max_messages, topic)

    def _batches_confluent(
        self, ranges: Ranges, wanted: Ranges, max_messages: int, topic: str
    ) -> Iterator[dict[int, LogSlice]]:
        from confluent_kafka import Consumer, KafkaError
        from confluent_kafka import TopicPartition as CkPartition

        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap(),
                "group.id": "ozi-reader",  # required by librdkafka; offsets are never committed
                "enable.auto.commit": False,
                "auto.offset.reset": "error",  # a deleted offset is an error, never a jump
                "fetch.max.bytes": 64 * 1024 * 1024,
                "max.partition.fetch.bytes": 16 * 1024 * 1024,
                # How long the broker may wait for data. A broker answers at once when it has
                # data, but the embedded broker (Tansu) answers at the deadline with what it
                # has read from storage by then: at 10 ms that was nothing at all, for good,
                # some 45k messages into a partition (23k messages read in 0.5 s at 100 ms,
                # 25 in 8 s at 10 ms, same run).
                "fetch.wait.max.ms": 100,
                "client.id": "ozi-reader",
            }
        )
        position = {p: start for p, (start, _) in wanted.items()}  # next offset to take
        stalled = False
        try:
            consumer.assign([CkPartition(topic, p, start) for p, (start, _) in wanted.items()])
            pending = set(wanted)
            while pending and not stalled:
                cols = _columns(ranges)
                taken = 0
                last_progress = time.monotonic()
                while pending and taken < max_messages:
                    if time.monotonic() - last_progress > CONFLUENT_STALL_S:
                        stalled = True
                        break
                    # A short wait: the first call returns empty while the connection is
                    # set up, and a long timeout would be paid in full on every small read.
                    messages = consumer.consume(
                        num_messages=min(max_messages - taken, 10_000), timeout=0.02
                    )
                    for message in messages:
                        error = message.error()
                        if error is not None:
                            if error.code() == KafkaError._PARTITION_EOF:
                                continue
                            raise KafkaReadError(
                                f"{topic}: {error.str()} (offsets deleted by retention?)"
                            )
                        p = message.partition()
                        if p not in pending:
                            continue
                        offset = message.offset()
                        if offset is None:  # only error events lack one, handled above
                            continue
                        end = wanted[p][1]
                        if offset >= end:
                            continue
                        offsets, stamps, keys, values = cols[p]
                        offsets.append(offset)
                        stamps.append(message.timestamp()[1])
                        keys.append(message.key())
                        values.append(message.value())
                        position[p] = offset + 1
                        taken += 1
                        if offset >= end - 1:
                            pending.discard(p)
                            consumer.pause([CkPartition(topic, p)])
                    if messages:
                        last_progress = time.monotonic()
                if taken or not stalled:
                    yield _slices(cols)
        finally:
            consumer.close()
        if stalled:
            rest = {p: (position[p], wanted[p][1]) for p in pending}
            log.warning(
                "%s: confluent-kafka read nothing for %.0fs at offsets %s; reading on with "
                "kafka-python",
                topic,
                CONFLUENT_STALL_S,
                {p: r[0] for p, r in rest.items()},
            )
            yield from self._batches_kafka_python(ranges, rest, max_messages, topic)

    def _batches_kafka_python(
        self, ranges: Ranges, wanted: Ranges, max_messages: int, topic: str
    ) -> Iterator[dict[int, LogSlice]]:
        """:meth:`batches` through kafka-python."""
        consumer = self._consumer()
        try:
            tps = {p: TopicPartition(topic, p) for p in wanted}
            consumer.assign(list(tps.values()))
            for p, (start, _) in wanted.items():
                consumer.seek(tps[p], start)
            pending = set(wanted)
            while pending:
                cols = _columns(ranges)
                taken = 0
                last_progress = time.monotonic()
                while pending and taken < max_messages:
                    if time.monotonic() - last_progress > IDLE_TIMEOUT_S:
                        missing = {p: (consumer.position(tps[p]), wanted[p][1]) for p in pending}
                        raise KafkaReadError(
                            f"{topic}: no message for {IDLE_TIMEOUT_S:.0f}s while offsets "
                            f"{missing} (position, end) are missing"
                        )
                    try:
                        polled = consumer.poll(
                            timeout_ms=500, max_records=max(max_messages - taken, 1)
                        )
                    except OffsetOutOfRangeError as err:
                        raise KafkaReadError(
                            f"{topic}: offsets out of the log's range (deleted by retention?): "
                            f"{err}"
                        ) from err
                    for tp, records in polled.items():
                        p = tp.partition
                        if p not in pending:
                            continue
                        end = wanted[p][1]
                        offsets, stamps, keys, values = cols[p]
                        for record in records:
                            if record.offset >= end:
                                break
                            offsets.append(record.offset)
                            stamps.append(record.timestamp)
                            keys.append(record.key)
                            values.append(record.value)
                            taken += 1
                        if records:
                            last_progress = time.monotonic()
                        position = consumer.position(tp)
                        if (position is not None and position >= end) or (
                            offsets and offsets[-1] >= end - 1
                        ):
                            pending.discard(p)
                            consumer.pause(tp)
                yield _slices(cols)
        finally:
            consumer.close()

    def read(
        self, ranges: dict[int, tuple[int, int]], topic: str | None = None
    ) -> dict[int, LogSlice]:
        """Read ``{partition: (start, end)}`` offset ranges whole (end exclusive): one LogSlice
        a partition. For small ranges (tests, a sensor); large reads go through
        :meth:`batches`. Raises KafkaReadError as :meth:`batches` does."""
        out = {p: LogSlice(p, np.empty(0, np.int64), np.empty(0, np.int64), [], []) for p in ranges}
        for batch in self.batches(ranges, max_messages=10**12, topic=topic):
            for p, log in batch.items():
                out[p] = LogSlice.concat([out[p], log])
        return out

    def _producer(self) -> KafkaProducer:
        return KafkaProducer(
            bootstrap_servers=self.bootstrap(),
            acks="all",
            linger_ms=20,
            batch_size=512 * 1024,
            client_id="ozi-producer",
        )

    def produce(
        self,
        events: Iterable[Event],
        topic: str | None = None,
        pace: Callable[[], None] | None = None,
        on_sent: Callable[[int], None] | None = None,
    ) -> int:
        """Send events (key, value, timestamp) and wait until all are acknowledged.

        ``pace`` is called before each send (live mode sleeps there); ``on_sent`` gets the
        running count (progress bars). Returns the number sent; raises kafka errors on failure.
        """
        producer = self._producer()
        sent = 0
        pending: collections.deque = collections.deque()  # sends not yet seen acknowledged
        try:
            for event in events:
                if pace:
                    pace()
                pending.append(
                    producer.send(
                        topic or self.topic,
                        key=event.key,
                        value=event.value,
                        timestamp_ms=event.timestamp_ms,
                    )
                )
                sent += 1
                if on_sent and sent % 100 == 0:
                    on_sent(sent)
                if sent % ACK_CHECK_EVERY == 0:
                    while pending and pending[0].is_done:
                        pending.popleft().get()  # raises if the broker refused the message
            producer.flush()
            for future in pending:
                future.get(timeout=30)
        finally:
            producer.close()
        if on_sent:
            on_sent(sent)
        return sent

    def send_dead_letters(self, letters: list[tuple[bytes, bytes, int, list]]) -> int:
        """Send (key, value, timestamp_ms, headers) tuples to the dead-letter topic; returns the
        count. Headers carry the reason and the source position."""
        if not letters:
            return 0
        producer = self._producer()
        try:
            futures = [
                producer.send(self.dlq_topic, key=k, value=v, timestamp_ms=ts, headers=h)
                for k, v, ts, h in letters
            ]
            producer.flush()
            for future in futures:
                future.get(timeout=30)
        finally:
            producer.close()
        return len(letters)
