"""PredictionJournal: journalled predictions survive their process and are replayed once."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from pathlib import Path

from tests.data.helpers import record, wait_for

from driftloop.data.journal import PredictionJournal
from driftloop.data.predictions import PredictionLog
from driftloop.data.writer import BatchingWriter


def _journal_then_die(folder: str, n: int) -> None:
    """A process that journals ``n`` predictions, writes none, and is SIGKILLed."""
    journal = PredictionJournal(Path(folder), segment_records=7)

    async def main() -> None:
        for i in range(n):
            await journal.commit([record(i)])

    asyncio.run(main())
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_killed_processs_journal_is_replayed_into_the_log_once(
        log: PredictionLog, tmp_path: Path) -> None:
    folder = tmp_path / "journal"
    log.append([record(i) for i in range(5)])  # these were written before the kill
    child = multiprocessing.get_context("spawn").Process(target=_journal_then_die,
                                                         args=(str(folder), 20))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    assert len(list(folder.glob("*.jsonl"))) == 3  # segments of 7, 7 and 6 records
    journal = PredictionJournal(folder)
    writer = BatchingWriter(log, max_delay=0.01, on_done=journal.forget)
    try:
        assert journal.recover(writer) == 20
        assert log.count() == 20 and writer.duplicates == 5
        assert not [p for p in folder.iterdir() if journal.owner not in p.name]
        assert journal.recover(writer) == 0  # nothing twice
    finally:
        writer.close()
        journal.close()
    assert list(folder.iterdir()) == []


def test_a_live_journal_is_left_alone_and_forgotten_segments_are_deleted(
        log: PredictionLog, tmp_path: Path) -> None:
    folder = tmp_path / "journal"
    live = PredictionJournal(folder, segment_records=3, fsync=True)
    other = PredictionJournal(folder)
    writer = BatchingWriter(log, max_delay=0.01, on_done=live.forget)
    try:
        async def main() -> None:
            await asyncio.gather(*(live.commit([record(i)]) for i in range(10)))

        asyncio.run(main())
        assert live.journalled == 10 and live.unsaved == 10
        assert other.recover(writer) == 0  # its owner is alive
        for i in range(10):
            writer.add(record(i))
        wait_for(lambda: live.unsaved == 0)
        assert sorted(p.name for p in folder.glob(f"{live.owner}-*.jsonl")) == [
            f"{live.owner}-4.jsonl"]  # the current one; the full, forgotten ones are gone
    finally:
        writer.close()
        live.close()
        other.close()
    assert list(folder.iterdir()) == []


def test_commits_of_one_event_loop_turn_share_one_write_and_are_on_disk_when_they_return(
        tmp_path: Path) -> None:
    journal = PredictionJournal(tmp_path / "journal")
    writes: list[int] = []
    write = journal._write
    journal._write = lambda data: (writes.append(len(data)), write(data))[1]  # type: ignore[method-assign]

    async def one(i: int) -> int:
        await journal.commit([record(i)])
        segment = next((tmp_path / "journal").glob("*.jsonl"))
        return segment.read_text().count(f'"r{i:05d}"')  # its line is in the file

    async def main() -> list[int]:
        together = await asyncio.gather(*(one(i) for i in range(32)))
        await one(99)  # alone: a group of its own
        return list(together)

    try:
        assert asyncio.run(main()) == [1] * 32
        assert len(writes) == 2 and journal.journalled == 33
    finally:
        journal.close()
