"""Settings files, TOML or YAML, read by dynaconf into `{"section.key": value}`.

A settings file is a mapping of sections, each a mapping of keys whose values are
scalars or lists of scalars. A YAML file is checked for that shape before dynaconf
reads it: dynaconf copies every alias expansion, so a few lines of nested aliases
(a "billion laughs" file) would hang it, and YAML aliases are refused outright.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dynaconf import Dynaconf
from dynaconf.vendor.ruamel import yaml  # the parser dynaconf reads YAML with
from dynaconf.vendor.ruamel.yaml.error import MarkedYAMLError, MarkedYAMLFutureWarning

FORMATS = {".toml": "TOML", ".yaml": "YAML", ".yml": "YAML"}
# The file, its sections, a list value: anything deeper is not a settings value.
_MAX_DEPTH = 3


class UnreadableFile(ValueError):
    """The file is not valid TOML/YAML or not shaped like settings; `str()` is one line."""


def read_settings_file(path: Path) -> dict[str, Any]:
    """The file's values by dotted key; raises UnreadableFile. `path.suffix` must be in FORMATS."""
    kind = FORMATS[path.suffix]
    try:
        if kind == "YAML":
            _check_yaml_shape(path)
        # loaders=[] stops dynaconf reading os.environ: the loader applies the given environment.
        tree = Dynaconf(settings_files=[str(path)], loaders=[], core_loaders=[kind]).as_dict()
    except UnreadableFile:
        raise
    except OSError as error:
        raise UnreadableFile(f"a readable file ({_one_line(error)})") from None
    except (MarkedYAMLError, MarkedYAMLFutureWarning) as error:  # a duplicate key is a "future warning"
        raise UnreadableFile(f"valid YAML ({_yaml_problem(error)})") from None
    except (ValueError, yaml.YAMLError) as error:  # TOMLDecodeError, UnicodeDecodeError, unmarked YAML errors
        raise UnreadableFile(f"valid {kind} ({_one_line(error)})") from None
    except RecursionError:
        raise UnreadableFile(f"valid {kind} (nested deeper than a settings file needs)") from None
    return _flatten(tree)


def _check_yaml_shape(path: Path) -> None:
    depth = 0
    with path.open(encoding="utf-8") as stream:
        for event in yaml.parse(stream):
            if isinstance(event, yaml.AliasEvent):
                raise UnreadableFile(f"a YAML file without aliases (*{event.anchor} at {_where(event)})")
            if isinstance(event, (yaml.ScalarEvent, yaml.SequenceStartEvent)) and depth == 0:
                raise UnreadableFile("a YAML mapping of sections (trading:, risk:, ...) at the top level")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > _MAX_DEPTH:
                    raise UnreadableFile(f"values that are scalars or lists of scalars (nested at {_where(event)})")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1


def _flatten(tree: Mapping[Any, Any]) -> dict[str, Any]:
    # Two levels only: a mapping below a key is a value, which the key's rule then refuses.
    flat: dict[str, Any] = {}
    for section, values in tree.items():
        if isinstance(values, Mapping):
            flat.update({f"{section}.{name}".lower(): value for name, value in values.items()})
        else:
            flat[str(section).lower()] = values
    return flat


def _where(event: yaml.Event) -> str:
    return f"line {event.start_mark.line + 1}"


def _yaml_problem(error: MarkedYAMLError | MarkedYAMLFutureWarning) -> str:
    mark = error.problem_mark or error.context_mark
    where = f" at line {mark.line + 1}" if mark else ""
    return f"{error.problem or error.context}{where}"


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
