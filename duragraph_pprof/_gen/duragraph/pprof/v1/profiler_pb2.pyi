import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GoroutineKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GOROUTINE_KIND_UNSPECIFIED: _ClassVar[GoroutineKind]
    GOROUTINE_KIND_THREAD: _ClassVar[GoroutineKind]
    GOROUTINE_KIND_ASYNCIO_TASK: _ClassVar[GoroutineKind]
GOROUTINE_KIND_UNSPECIFIED: GoroutineKind
GOROUTINE_KIND_THREAD: GoroutineKind
GOROUTINE_KIND_ASYNCIO_TASK: GoroutineKind

class ListProfilesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListProfilesResponse(_message.Message):
    __slots__ = ("profiles",)
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    profiles: _containers.RepeatedCompositeFieldContainer[ProfileInfo]
    def __init__(self, profiles: _Optional[_Iterable[_Union[ProfileInfo, _Mapping]]] = ...) -> None: ...

class ProfileInfo(_message.Message):
    __slots__ = ("name", "description", "count", "delta")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    count: int
    delta: bool
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., count: _Optional[int] = ..., delta: _Optional[bool] = ...) -> None: ...

class GetProfileRequest(_message.Message):
    __slots__ = ("name", "seconds", "debug", "gc")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    DEBUG_FIELD_NUMBER: _ClassVar[int]
    GC_FIELD_NUMBER: _ClassVar[int]
    name: str
    seconds: int
    debug: int
    gc: bool
    def __init__(self, name: _Optional[str] = ..., seconds: _Optional[int] = ..., debug: _Optional[int] = ..., gc: _Optional[bool] = ...) -> None: ...

class GetProfileResponse(_message.Message):
    __slots__ = ("data", "content_type", "filename")
    DATA_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    content_type: str
    filename: str
    def __init__(self, data: _Optional[bytes] = ..., content_type: _Optional[str] = ..., filename: _Optional[str] = ...) -> None: ...

class WatchGoroutinesRequest(_message.Message):
    __slots__ = ("interval", "max_updates")
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    MAX_UPDATES_FIELD_NUMBER: _ClassVar[int]
    interval: _duration_pb2.Duration
    max_updates: int
    def __init__(self, interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_updates: _Optional[int] = ...) -> None: ...

class WatchGoroutinesResponse(_message.Message):
    __slots__ = ("time", "threads", "asyncio_tasks", "total")
    TIME_FIELD_NUMBER: _ClassVar[int]
    THREADS_FIELD_NUMBER: _ClassVar[int]
    ASYNCIO_TASKS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    threads: int
    asyncio_tasks: int
    total: int
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., threads: _Optional[int] = ..., asyncio_tasks: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...

class GetGoroutinesRequest(_message.Message):
    __slots__ = ("kind",)
    KIND_FIELD_NUMBER: _ClassVar[int]
    kind: GoroutineKind
    def __init__(self, kind: _Optional[_Union[GoroutineKind, str]] = ...) -> None: ...

class GetGoroutinesResponse(_message.Message):
    __slots__ = ("time", "goroutines")
    TIME_FIELD_NUMBER: _ClassVar[int]
    GOROUTINES_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    goroutines: _containers.RepeatedCompositeFieldContainer[Goroutine]
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., goroutines: _Optional[_Iterable[_Union[Goroutine, _Mapping]]] = ...) -> None: ...

class Goroutine(_message.Message):
    __slots__ = ("id", "kind", "name", "status", "frames", "thread_id", "awaiting", "created_by")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    AWAITING_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    id: int
    kind: GoroutineKind
    name: str
    status: str
    frames: _containers.RepeatedCompositeFieldContainer[Frame]
    thread_id: int
    awaiting: str
    created_by: str
    def __init__(self, id: _Optional[int] = ..., kind: _Optional[_Union[GoroutineKind, str]] = ..., name: _Optional[str] = ..., status: _Optional[str] = ..., frames: _Optional[_Iterable[_Union[Frame, _Mapping]]] = ..., thread_id: _Optional[int] = ..., awaiting: _Optional[str] = ..., created_by: _Optional[str] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("function", "filename", "line", "start_line")
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    START_LINE_FIELD_NUMBER: _ClassVar[int]
    function: str
    filename: str
    line: int
    start_line: int
    def __init__(self, function: _Optional[str] = ..., filename: _Optional[str] = ..., line: _Optional[int] = ..., start_line: _Optional[int] = ...) -> None: ...
