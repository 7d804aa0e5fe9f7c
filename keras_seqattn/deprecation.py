"""Old spellings kept for one release: each use warns with a DeprecationWarning that names the new
spelling (the renames are listed in CHANGELOG.md and docs/naming.md). Pure Python: every backend."""

import functools
import inspect
import warnings


def warn(old, new, stacklevel=3):
    """Say once per call site that `old` is deprecated in favour of `new`."""
    warnings.warn(
        f"{old} is deprecated and will be removed in the next release: use {new}.",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def take_renamed(kwargs, old, new, value, owner):
    """The value of an argument renamed from `old` to `new`: `kwargs[old]` (removed from `kwargs`,
    with a warning) when given, else `value`, the new argument's own. Giving both is an error."""
    if old not in kwargs:
        return value
    old_value = kwargs.pop(old)
    warn(f"`{owner}({old}=...)`", f"`{new}=`", stacklevel=4)
    if value is not None:
        raise ValueError(
            f"Give `{new}` or its old name `{old}`, not both. Received: {new}={value!r}, {old}={old_value!r}"
        )
    return old_value


def legacy_arguments(positional=(), renamed=None):
    """Decorator for a function whose optional arguments became keyword-only, or were renamed.

    `positional`: the names that used to follow the function's remaining positional parameters, in
    their old order; a call that still passes them by position gets them by name, with a warning.
    `renamed`: `{old_name: new_name}`; a call that uses an old name gets the new one, with a warning.
    """
    renamed = dict(renamed or {})

    def decorate(function):
        parameters = inspect.signature(function).parameters.values()
        kept = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters)

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            name = function.__qualname__
            if len(args) > kept:
                extra = args[kept:]
                if len(extra) > len(positional):
                    raise TypeError(f"{name}() takes {kept} positional arguments but {len(args)} were given")
                names = positional[: len(extra)]
                warn(f"Passing {', '.join(f'`{n}`' for n in names)} to `{name}` by position", "keyword arguments")
                for key, value in zip(names, extra):
                    if key in kwargs:
                        raise TypeError(f"{name}() got multiple values for argument '{key}'")
                    kwargs[key] = value
                args = args[:kept]
            for old, new in renamed.items():
                if old in kwargs:
                    warn(f"`{name}({old}=...)`", f"`{new}=`")
                    if new in kwargs:
                        raise ValueError(
                            f"Give `{new}` or its old name `{old}`, not both. "
                            f"Received: {new}={kwargs[new]!r}, {old}={kwargs[old]!r}"
                        )
                    kwargs[new] = kwargs.pop(old)
            return function(*args, **kwargs)

        return wrapper

    return decorate


def deprecated_names(module_name, aliases):
    """A module `__getattr__` that serves `aliases` (`{old_name: (new_spelling, getter)}`), each with
    a warning naming its new spelling."""

    def __getattr__(name):
        if name in aliases:
            new, get = aliases[name]
            warn(f"`{module_name}.{name}`", f"`{new}`")
            return get()
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")

    return __getattr__


def renamed_attribute(old, new):
    """A property that serves attribute `new` under its old name `old`, with a warning."""

    def get(self):
        warn(f"`{type(self).__name__}.{old}`", f"`{new}`")
        return getattr(self, new)

    def set(self, value):
        warn(f"`{type(self).__name__}.{old}`", f"`{new}`")
        setattr(self, new, value)

    return property(get, set, doc=f"Deprecated: `{new}`.")
