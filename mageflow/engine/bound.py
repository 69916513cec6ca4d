"""Bound inputs checked when a signature is made, not when it runs.

``sign(price, nosuch=1)`` or ``sign(price, quantity="lots")`` would only
fail (or, for an unknown field, be silently dropped) when the run validates
its input, far from the line to fix. A :class:`BoundCheck` looks at the
bound kwargs alone, as the JSON data that will be stored, against the task's
input model:

- a key the model does not read is refused, unless the model accepts extra
  fields (``extra="allow"``, as Hatchet's ``EmptyModel`` does);
- a bound value is validated against its own field's type, constraints
  included, just as the run will (lax, or strict if the model is); the
  field's and model's own validators are not run, since they may need the
  rest of the input;
- a field that is not bound is fine, required or not: the message may bring
  it.

A key is what the model reads: a field's alias when it has one (and its name
too when the model populates by name), so the check and the run agree.

The partial model is built once per task (see :func:`check_for`); checking a
signature is then one validation of its bound kwargs.
"""

from __future__ import annotations

import dataclasses
import typing
import warnings
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, cast

import typing_extensions
from hatchet_sdk.runnables.workflow import Standalone
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    PydanticUserError,
    RootModel,
    ValidationError,
    create_model,
)
from pydantic.fields import FieldInfo

from mageflow.errors import InputValidationError

_SHOWN = 60
"""How much of a refused value's repr a message shows."""

_TYPED_DICT_WRAPPERS: tuple[object, ...] = (
    typing_extensions.Required,
    typing_extensions.NotRequired,
    typing_extensions.ReadOnly,
)


@dataclasses.dataclass(frozen=True)
class BoundCheck:
    """Checks the kwargs bound to one task's signatures; see the module doc."""

    model: str
    """The input model's name, for messages."""
    validate: Callable[[dict[str, Any]], object]
    """Validates bound kwargs; raises :class:`pydantic.ValidationError`."""
    reads: tuple[str, ...] = ()
    """The keys the model reads, in declaration order (empty: any key)."""
    aliases: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Field name -> the alias it is read under, when the name is not read."""

    def problems(self, bound: dict[str, Any]) -> list[dict[str, Any]]:
        """One entry per refused field (``loc``, ``msg``, ``type``)."""
        try:
            self.validate(bound)
        except ValidationError as exc:
            return [
                {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False)
            ]
        return []

    def refuse(self, task_name: str, bound: dict[str, Any]) -> None:
        """Raise if ``bound`` cannot be bound to ``task_name``.

        :raises InputValidationError: naming every refused field.
        """
        problems = self.problems(bound)
        if problems:
            raise InputValidationError(
                self._message(task_name, bound, problems),
                task_name=task_name,
                errors=problems,
            )

    def _message(
        self, task_name: str, bound: dict[str, Any], problems: list[dict[str, Any]]
    ) -> str:
        unknown: list[str] = []
        refused: dict[str, list[str]] = {}
        for problem in problems:
            loc = [str(part) for part in problem["loc"]]
            key = loc[0] if loc else ""
            if problem["type"] == "extra_forbidden" and len(loc) == 1:
                unknown.append(self._unknown(key))
                continue
            where = ".".join(loc)
            msg = str(problem["msg"])
            refused.setdefault(key, []).append(
                msg if len(loc) == 1 else f"{where}: {msg}"
            )
        parts = unknown + [
            f"field {key!r} is bound to {_shown(bound.get(key))}, which "
            f"{self.model} refuses: {'; '.join(msgs)}"
            for key, msgs in refused.items()
        ]
        advice = []
        if unknown:
            advice.append(
                "Bind only fields the input reads (or let the model accept any "
                "field: extra='allow' in its config)"
            )
        if refused:
            advice.append(
                "bind a value of the field's type, or leave it unbound for the "
                "message to bring"
            )
        todo = "; ".join(advice)
        return (
            f"cannot sign {task_name!r}: {'; '.join(parts)}. "
            f"{todo[0].upper()}{todo[1:]}. Nothing was stored."
        )

    def _unknown(self, key: str) -> str:
        text = f"{key!r} is not a field of its input {self.model}"
        alias = self.aliases.get(key)
        if alias is not None:
            return (
                f"{text}: that field is read under its alias {alias!r} (bind "
                f"**{{{alias!r}: ...}})"
            )
        return f"{text} (its fields: {', '.join(self.reads) or 'none'})"


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def check_for(standalone: Standalone[Any, Any]) -> BoundCheck | None:
    """The check of ``standalone``'s bound inputs; ``None`` when any bound
    input goes (the model accepts every field and declares none) or the
    model cannot be checked piecewise (a root model, something unknown, or
    annotations that do not resolve): such a task is checked when it runs,
    as before."""
    model: object = standalone.input_validator_type
    if _is_dict(model):
        adapter = standalone.input_validator
        return BoundCheck(_name(model), adapter.validate_python)
    found = _fields(model)
    if found is None:
        return None
    fields, config, allow_extra = found
    if allow_extra and not fields:
        return None
    try:
        partial = _partial_model(_name(model), fields, config, allow_extra)
    except (PydanticUserError, NameError, TypeError):
        return None
    if not partial.__pydantic_complete__:
        return None
    reads: list[str] = []
    aliases: dict[str, str] = {}
    for name, info in fields.items():
        keys = _keys_of(name, info, config)
        reads.append(" / ".join(keys))
        if name not in keys:
            aliases[name] = keys[0]
    return BoundCheck(
        _name(model),
        partial.model_validate,
        reads=tuple(reads),
        aliases=aliases,
    )


def _keys_of(name: str, info: FieldInfo, config: ConfigDict) -> list[str]:
    """The top-level keys a field is read from: its alias (each choice of
    an ``AliasChoices``, the first step of an ``AliasPath``) and, when the
    model validates by name or the field has no alias, its name."""
    alias = info.validation_alias or info.alias
    keys: list[str] = []
    if alias is not None and config.get("validate_by_alias", True):
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
        for choice in choices:
            key = choice if isinstance(choice, str) else str(choice.path[0])
            if key not in keys:
                keys.append(key)
    by_name = config.get("validate_by_name") or config.get("populate_by_name")
    if not keys or (by_name and name not in keys):
        keys.append(name)
    return keys


_Fields = tuple[dict[str, FieldInfo], ConfigDict, bool]
"""A model's fields, its pydantic config, and whether it accepts extras."""


def _fields(model: object) -> _Fields | None:
    if isinstance(model, type) and issubclass(model, BaseModel):
        if issubclass(model, RootModel):
            return None
        config = model.model_config
        return dict(model.model_fields), config, config.get("extra") == "allow"
    if isinstance(model, type) and dataclasses.is_dataclass(model):
        return _dataclass_fields(model)
    if typing_extensions.is_typeddict(model):
        return _typed_dict_fields(model)
    return None


def _config_of(model: object) -> ConfigDict:
    config = getattr(model, "__pydantic_config__", None)
    return cast(ConfigDict, dict(config)) if isinstance(config, Mapping) else {}


def _dataclass_fields(model: type[Any]) -> _Fields | None:
    config = _config_of(model)
    allow_extra = config.get("extra") == "allow"
    declared: object = getattr(model, "__pydantic_fields__", None)
    if isinstance(declared, dict):  # a pydantic dataclass
        fields = {
            name: info for name, info in declared.items() if info.init is not False
        }
        return fields, config, allow_extra
    try:
        hints = typing.get_type_hints(model, include_extras=True)
    except (NameError, TypeError):
        return None
    fields = {}
    for name, field in model.__dataclass_fields__.items():
        hint = hints.get(name, field.type)
        if typing.get_origin(hint) is ClassVar or not field.init:
            continue
        if isinstance(hint, dataclasses.InitVar):
            hint = hint.type
        if isinstance(field.default, FieldInfo):
            fields[name] = FieldInfo.from_annotated_attribute(hint, field.default)
        else:
            fields[name] = FieldInfo.from_annotation(hint)
    return fields, config, allow_extra


def _typed_dict_fields(model: Any) -> _Fields | None:
    config = _config_of(model)
    extra_items = getattr(model, "__extra_items__", typing_extensions.NoExtraItems)
    allow_extra = config.get("extra") == "allow" or (
        extra_items is not typing_extensions.NoExtraItems
        and not getattr(model, "__closed__", False)
    )
    try:
        hints = typing_extensions.get_type_hints(model, include_extras=True)
    except (NameError, TypeError):
        return None
    fields = {}
    for name, hint in hints.items():
        while typing.get_origin(hint) in _TYPED_DICT_WRAPPERS:
            (hint,) = typing.get_args(hint)
        fields[name] = FieldInfo.from_annotation(hint)
    return fields, config, allow_extra


def _partial_model(
    name: str, fields: dict[str, FieldInfo], config: ConfigDict, allow_extra: bool
) -> type[BaseModel]:
    """A model of ``fields`` where every field may be missing and nothing
    else is read (unless ``allow_extra``); no validators are carried over."""
    optional = {
        field: (
            info.annotation,
            FieldInfo.merge_field_infos(
                info, default=None, default_factory=None, validate_default=False
            ),
        )
        for field, info in fields.items()
    }
    partial_config = ConfigDict()
    partial_config.update(config)
    partial_config["extra"] = "allow" if allow_extra else "forbid"
    partial_config["validate_default"] = False
    partial_config["defer_build"] = False
    with warnings.catch_warnings():
        # Field names that shadow BaseModel attributes warned on the model.
        warnings.simplefilter("ignore")
        partial: type[BaseModel] = create_model(  # type: ignore[call-overload]
            f"{name}BoundInputs", __config__=partial_config, **optional
        )
    return partial


def _is_dict(model: object) -> bool:
    return model is dict or typing.get_origin(model) is dict


def _name(model: object) -> str:
    return model.__name__ if isinstance(model, type) else str(model)
