"""The wire between a job's two sides: values cross as data, everything else as a handle.

A job's program runs in processes of its own (the solution side) and its tests in another (the
tests' side, see `harness.py`); they talk over a socket. A value crosses by value only when its
type is one whose equality the receiver computes itself: Python's plain types (numbers, text,
bytes, containers), a few standard-library value types, NumPy arrays and scalars. Any other
object stays where it lives and crosses as a handle: a `Remote` proxy whose calls, attributes
and operators are requests to the other side. A subclass of a plain type that keeps the plain
type's equality (a namedtuple, an IntEnum) crosses as a twin: the plain value, with its other
attributes still reached through the handle. So an object of the program's own that claims to
equal everything equals no value of the tests, and nothing the solution side sends can run code
on the tests' side: the receiver unpickles only the types it allows.

Standard library only: this file runs inside the sandbox (see `worker.py`).
"""

import builtins
import importlib
import io
import operator
import pickle
import socket
import struct
import sys
import types
from collections.abc import Callable
from typing import Any

#: Types sent by value as they are.
PLAIN = frozenset(
    {
        type(None),
        bool,
        int,
        float,
        complex,
        str,
        bytes,
        bytearray,
        list,
        tuple,
        dict,
        set,
        frozenset,
        range,
        slice,
        type(Ellipsis),
    }
)
#: Standard-library value types sent by value (their equality is the standard library's).
VALUES = {
    "collections": ("OrderedDict", "defaultdict", "Counter", "deque"),
    "decimal": ("Decimal",),
    "fractions": ("Fraction",),
    "datetime": ("date", "time", "datetime", "timedelta", "timezone"),
}
#: Callables a message may name to rebuild a value: the types above and NumPy's rebuilders.
REBUILD = {
    ("builtins", name)
    for name in (
        *("complex", "range", "slice", "set", "frozenset", "bytearray", "int", "float"),
        *("str", "bytes", "list", "tuple", "dict", "bool", "Ellipsis"),
    )
} | {(module, name) for module, names in VALUES.items() for name in names}
NUMPY = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.numeric", "_frombuffer"),
}
#: Standard-library modules never imported because the other side named them.
UNSAFE_MODULES = frozenset({"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo"})
#: Largest message either side accepts, bytes.
MAX_MESSAGE = 64 << 20
EXITS = (SystemExit, KeyboardInterrupt, GeneratorExit)


class WireError(Exception):
    """The other side broke the protocol, or is gone."""


class Gone(BaseException):
    """The other side's process ended (the socket closed) while a request waited."""


class Exited(BaseException):
    """The solution side exited (SystemExit and the like) while serving a request."""


def _value_types() -> frozenset[type]:
    found: set[type] = set()
    for module, names in VALUES.items():
        loaded = importlib.import_module(module)
        found.update(getattr(loaded, name) for name in names)
    return frozenset(found)


BY_VALUE = _value_types()


def _numpy_value(kind: type) -> bool:
    """An exact NumPy array or scalar type (object arrays excluded by the caller)."""
    numpy = sys.modules.get("numpy")
    if numpy is None or not kind.__module__.startswith("numpy"):
        return False
    return kind is numpy.ndarray or (issubclass(kind, numpy.generic) and kind is not numpy.object_)


def _plain_base(kind: type) -> type | None:
    """The plain type whose equality instances of `kind` keep, or None when a class between
    them defines its own."""
    for klass in kind.__mro__:
        if klass in PLAIN:
            return klass
        if {"__eq__", "__ne__", "__hash__"} & vars(klass).keys() and klass.__module__ != "enum":
            return None
    return None


def _stdlib(module: str) -> bool:
    top = module.split(".")[0]
    return top in sys.stdlib_module_names and top not in UNSAFE_MODULES and top != "__main__"


def _global_name(obj: object) -> tuple[str, str] | None:
    """(module, qualified name) of a standard-library module, class or function that the other
    side can import for itself."""
    if isinstance(obj, types.ModuleType):
        return (obj.__name__, "") if _stdlib(obj.__name__) else None
    if not isinstance(obj, type | types.FunctionType | types.BuiltinFunctionType):
        return None
    module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(name, str) or not _stdlib(module):
        return None
    try:
        return (module, name) if _resolve(module, name) is obj else None
    except Exception:
        return None


def _inert(module: str, name: str) -> type | None:
    """A plain or standard-library value type, or a built-in exception class, by its name."""
    if module != "builtins" and module not in VALUES:
        return None
    found = getattr(builtins, name, None) if module == "builtins" else None
    if module in VALUES and name in VALUES[module]:
        found = _resolve(module, name)
    if found in PLAIN or found in BY_VALUE:
        return found  # type: ignore[return-value]
    if isinstance(found, type) and issubclass(found, BaseException):
        return found
    return None


def _resolve(module: str, name: str) -> object:
    if not _stdlib(module):
        raise WireError(f"refused to import {module}")
    found: object = importlib.import_module(module)
    for part in filter(None, name.split(".")):
        found = getattr(found, part)
    return found


class Peer:
    """One side's end of the wire: its objects the other side holds handles to, and the
    request/answer loop (requests nest: a call may call back before it answers)."""

    def __init__(self, sock: socket.socket | None = None, *, strict: bool = False) -> None:
        self.sock = sock
        self.buffer = bytearray()
        #: The tests' side: what the other side names as a standard-library function still
        #: runs there (so no name the program binds makes this side exit or run commands).
        self.strict = strict
        self.objects: list[object] = []
        self.refs: dict[int, int] = {}
        self.twins: dict[tuple[str, type], type] = {}
        self.standins: dict[int, type] = {}
        #: Called with what the solution side printed during a request (the tests' side).
        self.printed: Callable[[str], None] | None = None
        #: Set on the solution side: capture what a request prints.
        self.capture = False

    # -- encoding -------------------------------------------------------------------------
    def export(self, obj: object) -> int:
        ref = self.refs.get(id(obj))
        if ref is None:
            ref = self.refs[id(obj)] = len(self.objects)
            self.objects.append(obj)
        return ref

    def identify(self, obj: object) -> tuple | None:
        """How `obj` crosses: None for by value, else a tuple naming a handle."""
        kind = type(obj)
        if kind in PLAIN or kind in BY_VALUE:
            return None
        if _numpy_value(kind) and not getattr(getattr(obj, "dtype", None), "hasobject", True):
            return None
        if kind is Remote:
            return ("r", object.__getattribute__(obj, "_ref"))
        if "__magicoder_twin__" in vars(kind):
            return ("r", obj.__dict__["__magicoder_ref__"])  # type: ignore[attr-defined]
        if isinstance(obj, type) and "__magicoder_ref__" in vars(obj):
            return ("r", vars(obj)["__magicoder_ref__"])
        if (
            isinstance(obj, type)
            and issubclass(obj, BaseException)
            and obj.__module__ != "builtins"
        ):
            builtin = next(k for k in obj.__mro__ if k.__module__ == "builtins")
            return ("x", self.export(obj), obj.__name__, builtin.__name__)
        named = _global_name(obj)
        if named is not None:
            return ("g", *named, self.export(obj))
        base = _plain_base(kind)
        if base is not None:
            return ("t", self.export(obj), kind.__name__, base(obj))  # type: ignore[call-arg]
        return ("p", self.export(obj), "coroutine" if isinstance(obj, types.CoroutineType) else "")

    def load(self, pid: tuple) -> object:
        """The object a handle names, on this side."""
        tag = pid[0] if isinstance(pid, tuple) and pid else None
        if tag == "r":
            return self._mine(pid[1])
        if tag == "p":
            remote = Remote(self, _ref(pid[1]))
            return _awaiting(remote) if pid[2:3] == ("coroutine",) else remote
        if tag == "g":
            if self.strict:  # only inert types are taken as this side's own: anything else
                # named (a module, a function, a class that builds code) stays a handle
                found = _inert(str(pid[1]), str(pid[2]))
                return Remote(self, _ref(pid[3])) if found is None else found
            return _resolve(str(pid[1]), str(pid[2]))
        if tag == "x":
            return self._standin(_ref(pid[1]), str(pid[2]), str(pid[3]))
        if tag == "t":
            return self._twin(_ref(pid[1]), str(pid[2]), pid[3])
        raise WireError(f"unknown handle {pid!r:.80}")

    def _mine(self, ref: object) -> object:
        if not isinstance(ref, int) or not 0 <= ref < len(self.objects):
            raise WireError(f"no object {ref!r:.40} on this side")
        return self.objects[ref]

    def _standin(self, ref: int, name: str, base: str) -> type:
        """A local exception class standing for one of the other side's, so that tests can
        catch it and raise it by the program's name."""
        found = self.standins.get(ref)
        if found is None:
            builtin = getattr(builtins, base, Exception)
            if not (isinstance(builtin, type) and issubclass(builtin, BaseException)):
                builtin = Exception
            if builtin in EXITS:
                builtin = Exception
            spec = {"__magicoder_ref__": ref, "__module__": "solution"}
            found = self.standins[ref] = type(name, (builtin,), spec)
        return found

    def _twin(self, ref: int, name: str, value: object) -> object:
        base = type(value)
        if base not in PLAIN or base in (bool, type(None), range, slice, type(Ellipsis)):
            raise WireError(f"no twin of {base.__name__}")
        klass = self.twins.get((name, base))
        if klass is None:
            klass = self.twins[(name, base)] = type(
                name, (base,), {"__magicoder_twin__": True, "__getattr__": _twin_getattr}
            )
        twin = klass(value)
        twin.__dict__["__magicoder_ref__"] = ref
        twin.__dict__["__magicoder_peer__"] = self
        return twin

    def dumps(self, message: object) -> bytes:
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=5)
        pickler.persistent_id = self.identify  # type: ignore[method-assign]
        pickler.dump(message)
        return buffer.getvalue()

    def loads(self, data: bytes) -> object:
        return _Unpickler(io.BytesIO(data), self).load()

    # -- transport ------------------------------------------------------------------------
    def send(self, message: object) -> None:
        data = self.dumps(message)
        assert self.sock is not None
        try:
            self.sock.sendall(struct.pack("!I", len(data)) + data)
        except OSError:
            raise Gone from None

    def receive(self) -> object:
        head = self._exactly(4)
        (size,) = struct.unpack("!I", head)
        if size > MAX_MESSAGE:
            raise WireError(f"a message of {size:,} bytes")
        return self.loads(self._exactly(size))

    def _exactly(self, size: int) -> bytes:
        """The next `size` bytes (one read a message, as a rule)."""
        assert self.sock is not None
        while len(self.buffer) < size:
            try:
                chunk = self.sock.recv(max(1 << 16, size - len(self.buffer)))
            except OSError:
                raise Gone from None
            if not chunk:
                raise Gone
            self.buffer += chunk
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def connect(self, sock: socket.socket | None) -> None:
        """Talk over another socket (a new solution side): nothing read from the old one is
        kept, and no object of the old one is named any more."""
        if self.sock is not None:
            self.sock.close()
        self.sock = sock
        self.buffer.clear()
        self.objects.clear()
        self.refs.clear()
        self.standins.clear()

    def request(self, name: str, *operands: object, **keywords: object) -> object:
        """Ask the other side to apply operation `name` to `operands`; serve its requests
        until it answers. Its exception is raised here, as a local one."""
        self.send(("op", name, operands, keywords))
        while True:
            message = self.receive()
            if not isinstance(message, tuple) or not message:
                raise WireError("a malformed message")
            if message[0] == "op":
                self.send(self.serve(message))
                continue
            return self._answer(message, operands if name == "call" else (), keywords)

    def _answer(self, message: tuple, operands: tuple, keywords: dict) -> object:
        tag = message[0]
        if tag == "ok" and len(message) == 4:
            _, value, copies, printed = message
            if printed and self.printed is not None:
                self.printed(printed)
            if operands:
                _copy_back(copies, operands, keywords)
            return value
        if tag == "raise" and len(message) == 4:
            _, klass, args, printed = message
            if printed and self.printed is not None:
                self.printed(printed)
            raise _rebuilt(klass, args)
        if tag == "exit" and len(message) == 3:
            raise Exited(str(message[1])[:200])
        raise WireError("a malformed answer")

    def serve(self, message: tuple) -> tuple:
        """Apply one request to this side's objects; the answer to send back."""
        if len(message) != 4:
            return ("raise", WireError, ("a malformed request",), "")
        _, name, operands, keywords = message
        if self.strict and name in ("getattr", "setattr", "delattr") and _private(operands):
            return ("raise", AttributeError, ("not reachable from the program",), "")
        capture = _Capture() if self.capture else None
        saved = sys.stdout, sys.stderr
        if capture is not None:
            sys.stdout = sys.stderr = capture
        try:
            value = OPERATIONS[name](*operands, **keywords)
            copies = _copies(name, operands, keywords)
            return ("ok", value, copies, capture.text() if capture else "")
        except EXITS as exc:
            return ("exit", f"{type(exc).__name__}({_exit_code(exc)!r})", "")
        except BaseException as exc:
            args = exc.args if all(type(a) in PLAIN for a in exc.args) else (str(exc),)
            return ("raise", type(exc), args, capture.text() if capture else "")
        finally:
            sys.stdout, sys.stderr = saved


def _private(operands: object) -> bool:
    """An attribute the program may not reach on the tests' objects (`__globals__`,
    `__code__`, `__dict__`, a frame...): any name that starts with an underscore."""
    if not isinstance(operands, tuple) or len(operands) < 2:
        return True
    return not isinstance(operands[1], str) or operands[1].startswith("_")


def _ref(value: object) -> int:
    if not isinstance(value, int) or value < 0:
        raise WireError("a malformed handle")
    return value


def _exit_code(exc: BaseException) -> object:
    return exc.code if isinstance(exc, SystemExit) else None


def _twin_getattr(self: object, name: str) -> object:
    if name.startswith("__magicoder"):
        raise AttributeError(name)
    peer = self.__dict__["__magicoder_peer__"]
    return peer.request("getattr", Remote(peer, self.__dict__["__magicoder_ref__"]), name)


def _rebuilt(klass: object, args: object) -> BaseException:
    """The exception an answer names, raised on this side."""
    if not isinstance(args, tuple):
        args = (str(args),)
    if isinstance(klass, type) and issubclass(klass, EXITS):
        return Exited(f"{klass.__name__}{args!r:.100}")
    if isinstance(klass, type) and issubclass(klass, BaseException):
        try:
            return klass(*args)
        except Exception:
            return Exception(*args)
    return Exception(f"{klass!r:.100}: {args!r:.200}")


MUTABLE = (list, dict, set, bytearray)


def _copies(name: str, operands: tuple, keywords: dict) -> list:
    """After a call, the final state of the mutable plain arguments it was given, so that the
    caller's own objects change as they would in one process (an in-place sort, say)."""
    if name != "call":
        return []
    found = [(i, a) for i, a in enumerate(operands[1:]) if type(a) in MUTABLE]
    return found + [(k, v) for k, v in keywords.items() if type(v) in MUTABLE]


def _copy_back(copies: object, operands: tuple, keywords: dict) -> None:
    if not isinstance(copies, list):
        return
    for key, value in copies:
        mine: Any = keywords.get(key) if isinstance(key, str) else _at(operands[1:], key)
        if type(mine) is not type(value) or mine is None:
            continue
        if isinstance(mine, list | bytearray):
            mine[:] = value
        elif isinstance(mine, dict | set):
            mine.clear()
            mine.update(value)


def _at(items: tuple, index: object) -> object:
    return items[index] if isinstance(index, int) and 0 <= index < len(items) else None


class _Capture(io.TextIOBase):
    """What a request prints, sent back with its answer (the tests may be capturing it); past
    1 MiB it goes straight to the job's output, whose cap the worker enforces."""

    LIMIT = 1 << 20

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def write(self, text: str) -> int:
        if self.size > self.LIMIT:
            return sys.__stdout__.write(text) if sys.__stdout__ else len(text)
        self.parts.append(text)
        self.size += len(text)
        return len(text)

    def text(self) -> str:
        return "".join(self.parts)


class _Unpickler(pickle.Unpickler):
    """Unpickles only plain values, the allowed value types, and handles."""

    def __init__(self, file: io.BytesIO, peer: Peer) -> None:
        super().__init__(file)
        self.peer = peer

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in REBUILD:
            return _resolve(module, name)
        if (module, name) in NUMPY:
            found: object = importlib.import_module(module)
            return getattr(found, name)
        raise WireError(f"refused to rebuild {module}.{name}")

    def persistent_load(self, pid: object) -> object:
        if not isinstance(pid, tuple):
            raise WireError("a malformed handle")
        return self.peer.load(pid)


def _call(function: object, *args: object, **kwargs: object) -> object:
    return function(*args, **kwargs)  # type: ignore[operator]


def _await(awaitable: object) -> object:
    """Run one of this side's coroutines to its end (the other side awaits its result)."""
    import asyncio

    async def wait() -> object:
        return await awaitable  # type: ignore[misc]

    return asyncio.run(wait())


OPERATIONS: dict[str, Callable[..., object]] = {
    "call": _call,
    "getattr": getattr,
    "setattr": setattr,
    "delattr": delattr,
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "matmul": operator.matmul,
    "truediv": operator.truediv,
    "floordiv": operator.floordiv,
    "mod": operator.mod,
    "pow": pow,
    "divmod": divmod,
    "lshift": operator.lshift,
    "rshift": operator.rshift,
    "and": operator.and_,
    "or": operator.or_,
    "xor": operator.xor,
    "neg": operator.neg,
    "pos": operator.pos,
    "abs": abs,
    "invert": operator.invert,
    "getitem": operator.getitem,
    "setitem": operator.setitem,
    "delitem": operator.delitem,
    "contains": operator.contains,
    "len": len,
    "iter": iter,
    "next": next,
    "reversed": reversed,
    "bool": bool,
    "str": str,
    "repr": repr,
    "format": format,
    "hash": hash,
    "int": int,
    "float": float,
    "complex": complex,
    "index": operator.index,
    "round": round,
    "dir": dir,
    "isinstance": isinstance,
    "issubclass": issubclass,
    "enter": lambda target: target.__enter__(),
    "exit": lambda target, *args: target.__exit__(*args),
    "await": _await,
}


class Remote:
    """An object of the other side: every use is a request to it. It equals only another
    handle (the other side compares them), never a plain value of this side."""

    __slots__ = ("_peer", "_ref")

    def __init__(self, peer: Peer, ref: int) -> None:
        object.__setattr__(self, "_peer", peer)
        object.__setattr__(self, "_ref", ref)

    def _ask(self, name: str, *operands: object, **keywords: object) -> object:
        return object.__getattribute__(self, "_peer").request(name, *operands, **keywords)

    def __getattr__(self, name: str) -> object:
        return self._ask("getattr", self, name)

    def __setattr__(self, name: str, value: object) -> None:
        self._ask("setattr", self, name, value)

    def __delattr__(self, name: str) -> None:
        self._ask("delattr", self, name)

    def __call__(self, *args: object, **kwargs: object) -> object:
        return self._ask("call", self, *args, **kwargs)

    def __eq__(self, other: object) -> bool:
        return self._ask("eq", self, other) if type(other) is Remote else NotImplemented  # type: ignore[return-value]

    def __ne__(self, other: object) -> bool:
        return self._ask("ne", self, other) if type(other) is Remote else NotImplemented  # type: ignore[return-value]

    def __hash__(self) -> int:
        value = self._ask("hash", self)
        if type(value) is not int:
            raise TypeError("unhashable")
        return value

    def __bool__(self) -> bool:
        return self._ask("bool", self) is True

    def __len__(self) -> int:
        return operator.index(self._ask("len", self))  # type: ignore[arg-type]

    def __iter__(self) -> object:
        return self._ask("iter", self)

    def __next__(self) -> object:
        return self._ask("next", self)

    def __reversed__(self) -> object:
        return self._ask("reversed", self)

    def __contains__(self, item: object) -> bool:
        return self._ask("contains", self, item) is True

    def __str__(self) -> str:
        return str(self._ask("str", self))

    def __repr__(self) -> str:
        return str(self._ask("repr", self))

    def __format__(self, spec: str) -> str:
        return str(self._ask("format", self, spec))

    def __instancecheck__(self, instance: object) -> bool:
        return self._ask("isinstance", instance, self) is True

    def __subclasscheck__(self, subclass: object) -> bool:
        return self._ask("issubclass", subclass, self) is True

    def __enter__(self) -> object:
        return self._ask("enter", self)

    def __exit__(self, *args: object) -> object:
        return self._ask("exit", self, *args)

    def __await__(self):  # type: ignore[no-untyped-def]
        return _awaiting(self).__await__()

    def __dir__(self) -> list[str]:
        found = self._ask("dir", self)
        return [str(name) for name in found] if isinstance(found, list) else []


async def _awaiting(remote: Remote) -> object:
    """A local coroutine for one of the other side's, which runs it there to its end."""
    return remote._ask("await", remote)


def _operator(name: str, reflected: bool = False):  # type: ignore[no-untyped-def]
    def method(self: Remote, *others: object) -> object:
        operands = (*others, self) if reflected else (self, *others)
        return self._ask(name, *operands)

    return method


for _name in ("lt", "le", "gt", "ge", "getitem", "setitem", "delitem", "neg", "pos", "abs"):
    setattr(Remote, f"__{_name}__", _operator(_name))
for _name in ("int", "float", "complex", "index", "round", "invert"):
    setattr(Remote, f"__{_name}__", _operator(_name))
for _name in ("add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "pow", "divmod"):
    setattr(Remote, f"__{_name}__", _operator(_name))
    setattr(Remote, f"__r{_name}__", _operator(_name, reflected=True))
for _name in ("lshift", "rshift", "and", "or", "xor"):
    setattr(Remote, f"__{_name}__", _operator(_name))
    setattr(Remote, f"__r{_name}__", _operator(_name, reflected=True))
del _name
