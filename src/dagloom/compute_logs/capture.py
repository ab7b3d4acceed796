"""Capturing a step attempt's stdout and stderr: per task on one event loop, per process by
file descriptor.

In one process, steps run concurrently (async ops as tasks, sync ops in threads), so the
process's file descriptors cannot be split between them. Instead `sys.stdout` and
`sys.stderr` are replaced, while any run captures, by routers whose `write` looks up the
`StepLog` of the current context (a `ContextVar` set around each attempt) and falls back to
the stream they replaced. Tasks copy the context when they start, and so do
`anyio.to_thread.run_sync` and `asyncio.to_thread`, so a step's own tasks and worker threads
land in its log. Not caught this way: writes to file descriptor 1 or 2 from C code or child
processes, and a bare `threading.Thread` (it starts with an empty context).

A step process of the multiprocess executor owns its process, so there the attempt's log
files take over file descriptors 1 and 2 (`redirect_fds`), which catches everything.
"""

from __future__ import annotations

import atexit
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from pathlib import Path
from typing import IO, Any, Final, Literal, Protocol, TextIO

from dagloom._logging import get_logger
from dagloom.errors import DagloomError

__all__ = [
    "STDERR",
    "STDOUT",
    "IOType",
    "StepLog",
    "console_echo",
    "current_step_log",
    "install_routers",
    "no_follow",
    "redirect_fds",
    "set_console_echo",
    "truncation_marker",
    "uninstall_routers",
]

_log = get_logger("dagloom.compute_logs")

IOType = Literal["stdout", "stderr"]
STDOUT: Final = 0
STDERR: Final = 1
_SUFFIXES: Final = (".out", ".err")


def truncation_marker(limit: int) -> bytes:
    """The line that ends a log cut at `limit` bytes."""
    return f"\n[dagloom: output truncated after {limit} bytes]\n".encode()


class StepLog:
    """The stdout and stderr files of one step attempt, written as the step prints.

    `write` is cheap and never blocks on the disk: it counts the bytes against `limit`
    (past it the log is cut with a marker line; the step goes on, later output is dropped)
    and hands them to the process's log writer thread, which creates the files on first
    use and writes them unbuffered, in order, so a reader can tail them a moment later. A
    step that prints nothing costs no file. Output that cannot be kept (a path that would
    leave the manager's folder, a full disk) is dropped with a warning, never raised into
    the step. `write` is thread-safe; `close` is idempotent; `flush_writes()` waits for
    what was handed over so far.
    """

    __slots__ = (
        "_close_marked",
        "_closed",
        "_dropped",
        "_fd_written",
        "_files",
        "_lock",
        "_paths",
        "_sizes",
        "_where",
        "attempt",
        "echo",
        "limit",
        "run_id",
        "step_key",
    )

    def __init__(
        self,
        run_id: str,
        step_key: str,
        attempt: int,
        paths: tuple[Path, Path] | Callable[[], tuple[Path, Path]],
        *,
        limit: int,
        echo: bool | None = None,
    ) -> None:
        self.run_id = run_id
        self.step_key = step_key
        self.attempt = attempt
        # Resolving and checking the paths costs syscalls: done by the writer, on first use.
        self._paths = paths if isinstance(paths, tuple) else None
        self._where = paths if not isinstance(paths, tuple) else None
        self.limit = limit
        self.echo = _echo if echo is None else echo
        self._files: list[IO[bytes] | None] = [None, None]
        self._sizes = [0, 0]
        self._lock = threading.Lock()
        self._fd_written = False
        self._dropped = False
        self._closed = False
        self._close_marked = False

    @property
    def paths(self) -> tuple[Path, Path]:
        """The stdout and stderr files (resolved on first use; `DagloomError` when the run
        id or step key cannot name a file inside the manager's folder)."""
        if self._paths is None:
            assert self._where is not None
            self._paths = self._where()
        return self._paths

    def write(self, stream: int, text: str) -> None:
        """Append `text` to stream STDOUT or STDERR, up to the limit."""
        self.write_bytes(stream, text.encode("utf-8", "replace"))

    def write_bytes(self, stream: int, data: bytes) -> None:
        """Append `data` to stream STDOUT or STDERR, up to the limit."""
        with self._lock:
            size = self._sizes[stream]
            if size > self.limit or self._closed:  # already cut, or the attempt is over
                return
            if size + len(data) > self.limit:
                data = data[: self.limit - size] + truncation_marker(self.limit)
                self._sizes[stream] = self.limit + 1
            else:
                self._sizes[stream] = size + len(data)
            self._keep(stream, data)

    def _keep(self, stream: int, data: bytes) -> None:
        """Where bytes within the limit go (under the log's lock): to the writer thread."""
        _writer.put((self, stream, data))

    # -- on the writer thread ---------------------------------------------------------------

    def _write_now(self, stream: int, data: bytes) -> None:
        if self._dropped:
            return
        file = self._files[stream]
        try:
            if file is None:
                path = self.paths[stream]
                path.parent.mkdir(parents=True, exist_ok=True)
                # Open for the attempt's life; `_close_now` closes it.
                file = open(path, "ab", buffering=0, opener=no_follow)  # noqa: SIM115
                self._files[stream] = file
            file.write(data)
            if self._closed and self._close_marked is False:
                # Closed without a marker (it saw nothing written) while this write was
                # on its way: nothing follows it.
                self._close_now()
        except (DagloomError, OSError) as exc:
            self._dropped = True
            _log.warning(
                "compute_log_unavailable",
                run_id=self.run_id,
                step_key=self.step_key,
                error=str(exc),
            )

    def _close_now(self) -> None:
        for stream, file in enumerate(self._files):
            if file is not None:
                self._files[stream] = None
                with suppress(OSError):
                    file.close()

    # -- the step's side -----------------------------------------------------------------

    def fd_paths(self) -> tuple[str, str]:
        """Create both files (empty) and return their paths, for a process that writes
        them through its own file descriptors."""
        self._fd_written = True
        for stream in (STDOUT, STDERR):
            path = self.paths[stream]
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(no_follow(str(path), os.O_WRONLY | os.O_CREAT | os.O_APPEND))
        return (str(self.paths[STDOUT]), str(self.paths[STDERR]))

    def close(self) -> None:
        """End the attempt's log: later writes are dropped, its files are closed once the
        writer has written what came before. Files a process wrote through its file
        descriptors are cut to the limit and, when echoing, copied to the console now.
        Idempotent; does not block on the writer."""
        sizes = self._sizes
        if sizes[0] == 0 and sizes[1] == 0 and not self._fd_written:
            # Nothing written (most steps): no lock, no marker. A write racing this one
            # from a stray thread is dropped, or closes its file itself (`_write_now`).
            self._closed = True
            return
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._close_marked = True
            written = sizes != [0, 0]
        if written:
            _writer.put((self, _CLOSE, b""))
        if self._fd_written:
            self._fd_written = False
            for stream, path in enumerate(self.paths):
                _cut(path, self.limit)
                if self.echo:
                    _echo_file(path, sys.stdout if stream == STDOUT else sys.stderr)

    def written(self) -> list[Path]:
        """The files that exist (were written or created)."""
        if self._paths is None:
            return []
        return [p for p in self._paths if p.exists()]


class AttemptOutput:
    """What one step attempt's writes are routed to: its `StepLog`, opened by
    `open_log(step_key, attempt)` on the first write, so an attempt that prints nothing
    (most) opens none. Opening one for every attempt was a third of the cost of a step
    recorded in SQLite.

    `open_log` returns None when the attempt cannot have a log; its writes then go to the
    console. `end` (idempotent, thread-safe) ends the attempt: it returns the log if one was
    opened (the caller finishes it), and writes that come later (from a thread the attempt
    left running) are dropped, as a closed log drops them.
    """

    __slots__ = (
        "_ended",
        "_log",
        "_open_log",
        "_unavailable",
        "attempt",
        "default_echo",
        "step_key",
    )

    def __init__(
        self, open_log: Callable[[str, int], StepLog | None], step_key: str, attempt: int
    ) -> None:
        self._open_log = open_log
        self.step_key = step_key
        self.attempt = attempt
        self._log: StepLog | None = None
        self._ended = False
        self._unavailable = False
        self.default_echo = _echo  # a log opened now would echo so (`StepLog.echo`)

    @property
    def echo(self) -> bool:
        log = self._log
        if log is not None:
            return log.echo
        # No log: the console gets writes it could not have; a log that would have been
        # closed before any write echoes as one opened at the start would.
        return self._unavailable or self.default_echo

    def _target(self) -> StepLog | None:
        log = self._log
        if log is not None or self._ended or self._unavailable:
            return log
        with _opening:
            if self._log is None and not self._ended and not self._unavailable:
                self._log = self._open_log(self.step_key, self.attempt)
                self._unavailable = self._log is None
            return self._log

    def write(self, stream: int, text: str) -> None:
        log = self._target()
        if log is not None:
            log.write(stream, text)

    def write_bytes(self, stream: int, data: bytes) -> None:
        log = self._target()
        if log is not None:
            log.write_bytes(stream, data)

    def end(self) -> StepLog | None:
        """End the attempt; its log, if a write opened one."""
        with _opening:
            self._ended = True
            return self._log


_opening = threading.Lock()  # opens attempts' logs, once each (uncontended but by threads)

_CLOSE: Final = -1


def no_follow(path: str | os.PathLike[str], flags: int) -> int:
    """`os.open` that refuses a symbolic link in the file's place (an `opener` for
    `open`): a link planted where a log goes cannot send writes or reads elsewhere."""
    return os.open(path, flags | os.O_NOFOLLOW, 0o644)


class _Writer:
    """The thread that does step logs' file work, in the order it was handed over, so
    steps never wait for the disk (creating a file took milliseconds on a busy machine).
    Started on first use; a daemon, drained at interpreter exit."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[StepLog | None, int, Any]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def put(self, item: tuple[StepLog | None, int, Any]) -> None:
        if self._thread is None:
            self._start()
        self._queue.put(item)

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="compute-log-writer", daemon=True)
                thread.start()
                self._thread = thread
                atexit.register(self._drain_at_exit)

    def _run(self) -> None:
        get = self._queue.get
        while True:
            log, stream, data = get()
            if log is None:
                data.set_result(None)  # a flush marker: everything before it is written
            elif stream == _CLOSE:
                log._close_now()
            else:
                log._write_now(stream, data)

    def flush(self) -> Future[None]:
        """A future done once everything handed over before this call is written."""
        done: Future[None] = Future()
        if self._thread is None:
            done.set_result(None)
        else:
            self._queue.put((None, 0, done))
        return done

    def _drain_at_exit(self) -> None:
        with suppress(TimeoutError):
            self.flush().result(timeout=5)


_writer = _Writer()


def flush_writes() -> Future[None]:
    """A future done once every step log write handed over so far is on disk (and logs
    closed so far have their files closed)."""
    return _writer.flush()


def _cut(path: Path, limit: int) -> None:
    """Truncate a file a process wrote directly to `limit` bytes plus the marker."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size <= limit:
        return
    with open(path, "r+b", opener=no_follow) as file:
        file.truncate(limit)
        file.seek(limit)
        file.write(truncation_marker(limit))


def _echo_file(path: Path, console: TextIO) -> None:
    try:
        with open(path, "rb", opener=no_follow) as file:
            data = file.read()
    except FileNotFoundError:
        return
    if data:
        console.write(data.decode("utf-8", "replace"))
        console.flush()


# -- routing in one process -------------------------------------------------------------------


class WriteTarget(Protocol):
    """Where the routers send a context's writes: a `StepLog`, or an `AttemptOutput` that
    opens one on the first write. After a write, `echo` says whether the text also goes to
    the console."""

    @property
    def echo(self) -> bool: ...

    def write(self, stream: int, text: str) -> None: ...

    def write_bytes(self, stream: int, data: bytes) -> None: ...


_current: ContextVar[WriteTarget | None] = ContextVar("dagloom_step_log", default=None)
_echo = True


def set_console_echo(enabled: bool) -> None:
    """Whether captured output is also written to the console (the streams the routers
    replaced); the default for step logs opened from now on. Process-wide, as the console
    is."""
    global _echo
    _echo = enabled


def console_echo() -> bool:
    """Whether captured output is echoed to the console (see `set_console_echo`)."""
    return _echo


def current_step_log() -> WriteTarget | None:
    """Where the current context's writes go (a step's log), or None."""
    return _current.get()


# Every write that reaches a replaced stream holds this lock. Text streams are not safe to
# write from several threads at once (CPython's TextIOWrapper can corrupt its pending buffer
# and crash the interpreter), and steps in threads print concurrently. Reentrant: a stream
# that logs while writing must not deadlock.
_console_lock = threading.RLock()


def _is_closed(stream: Any) -> bool:
    try:
        return bool(stream.closed)
    except (AttributeError, ValueError):
        return False


class _Router:
    """Stands in for sys.stdout or sys.stderr: writes go to the current step's log (and,
    when it echoes, to the replaced stream); without one, to the replaced stream. Every
    other public attribute is the replaced stream's.

    The replaced stream may be closed while the router is still in use (a test runner's
    capture ends, a logger kept the router); writes then go to the process's own stream
    (`sys.__stdout__` / `sys.__stderr__`), so a closed stream is never written."""

    def __init__(self, stream: int, original: TextIO) -> None:
        self._stream = stream
        self._original = original

    def _console(self) -> Any:
        """Where writes that are not captured go, resolved now."""
        if not _is_closed(self._original):
            return self._original
        own = sys.__stdout__ if self._stream == STDOUT else sys.__stderr__
        return None if own is None or _is_closed(own) else own

    def _to_console(self, text: str) -> None:
        with _console_lock:
            console = self._console()
            if console is not None:
                with suppress(ValueError):  # closed between the check and the write
                    console.write(text)

    def write(self, text: str) -> int:
        log = _current.get()
        if log is not None:
            log.write(self._stream, text)
            if not log.echo:
                return len(text)
        self._to_console(text)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        with _console_lock:
            console = self._console()
            if console is not None:
                with suppress(ValueError):
                    console.flush()

    @property
    def buffer(self) -> Any:
        """The replaced stream's binary buffer, routed the same way."""
        return _BinaryRouter(self)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            # Never delegated: a router without its fields (copied, half-built) must fail
            # here instead of looking `_original` up through itself without end.
            raise AttributeError(name)
        return getattr(self._original, name)


class _BinaryRouter:
    """`sys.stdout.buffer` while routed: bytes go where the text would."""

    def __init__(self, text: _Router) -> None:
        self._text = text

    def _to_console(self, data: bytes) -> None:
        with _console_lock:
            console = self._text._console()
            if console is not None:
                with suppress(ValueError, AttributeError):  # closed, or a text-only stream
                    console.buffer.write(data)

    def write(self, data: bytes) -> int:
        log = _current.get()
        if log is not None:
            log.write_bytes(self._text._stream, bytes(data))
            if not log.echo:
                return len(data)
        self._to_console(bytes(data))
        return len(data)

    def flush(self) -> None:
        with _console_lock:
            console = self._text._console()
            if console is not None:
                with suppress(ValueError, AttributeError):
                    console.buffer.flush()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._text._original.buffer, name)


_install_lock = threading.Lock()
_installed = 0


# Every router made, for the life of the process. `print()` holds sys.stdout as a borrowed
# reference while it calls the router's `write` (Python code, so other threads run); a thread
# that puts the replaced stream back meanwhile (`uninstall_routers`, a test runner swapping
# its capture) would free the router under that `print` and corrupt the heap. Kept here, a
# router taken off sys.stdout stays alive; one per replaced stream, reused.
_routers: list[_Router] = []


def _route(name: str, stream: int) -> None:
    """Put a router in place of sys.<name>, unless one is there already (never a router
    around a router)."""
    current = getattr(sys, name)
    if isinstance(current, _Router):
        return
    for router in _routers:
        if router._stream == stream and router._original is current:
            break
    else:
        router = _Router(stream, current)
        _routers.append(router)
    setattr(sys, name, router)


def install_routers() -> None:
    """Route sys.stdout and sys.stderr by context; counted, so each call needs one
    `uninstall_routers`. A stream someone put in place of the routers since the first call
    (a test runner's capture) is routed too."""
    global _installed
    with _install_lock:
        _route("stdout", STDOUT)
        _route("stderr", STDERR)
        _installed += 1


def uninstall_routers() -> None:
    """Undo one `install_routers`; the last one puts the replaced streams back (unless
    something replaced the routers since, which is then left alone)."""
    global _installed
    with _install_lock:
        _installed = max(_installed - 1, 0)
        if _installed > 0:
            return
        for name in ("stdout", "stderr"):
            router = getattr(sys, name)
            if isinstance(router, _Router):
                setattr(sys, name, router._original)


@contextmanager
def routed_to(log: StepLog) -> Iterator[None]:
    """Send this context's sys.stdout/sys.stderr writes to `log` for the block."""
    token = _current.set(log)
    try:
        yield
    finally:
        _current.reset(token)


def set_current(log: WriteTarget | None) -> object:
    """Route this context's writes to `log`; returns the token for `reset_current`."""
    return _current.set(log)


def reset_current(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]  # a token from set_current


# -- a whole process ---------------------------------------------------------------------------


@contextmanager
def redirect_fds(stdout_path: str, stderr_path: str) -> Iterator[None]:
    """Point file descriptors 1 and 2 of this process at the two files for the block, so
    C-level writes and child processes are caught too; for a process that runs one step at
    a time (a step process). Python's buffers are flushed on the way in and out."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = (os.dup(1), os.dup(2))
    try:
        for fd, path in ((1, stdout_path), (2, stderr_path)):
            target = no_follow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                os.dup2(target, fd)
            finally:
                os.close(target)
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with suppress(OSError, ValueError):  # a stream user code closed: nothing to flush
                stream.flush()
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


def log_suffix(stream: int) -> str:
    """`.out` or `.err`."""
    return _SUFFIXES[stream]


def stream_of(io_type: IOType) -> int:
    """STDOUT or STDERR for `"stdout"` / `"stderr"`; ValueError otherwise."""
    if io_type == "stdout":
        return STDOUT
    if io_type == "stderr":
        return STDERR
    raise ValueError(f"io_type must be 'stdout' or 'stderr', not {io_type!r}")
