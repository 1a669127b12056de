"""Read SpeechBrain's ``hyperparams.yaml`` (HyperPyYAML) as plain data, without SpeechBrain.

HyperPyYAML extends YAML with tags that build objects when SpeechBrain loads the file. To import
a pretrained model only the *description* is needed, so here each tag becomes data:

* ``!new:pkg.Class`` (a mapping or a list of arguments) → :class:`Node` ``(kind="new", target, args, kwargs)``;
* ``!name:pkg.function`` → ``Node(kind="name", ...)``; ``!apply:pkg.function`` → ``Node(kind="apply", ...)``;
* ``!ref <key>`` → the value of ``key`` (``<a.b>`` / ``<a[b]>`` reach into mappings); a reference
  inside a longer string (``!ref <pretrained_path>/embedding_model.ckpt``) is substituted as text,
  and simple arithmetic on numbers (``!ref <emb_dim> * 2``) is evaluated;
* ``!copy <key>`` as ``!ref``; ``!tuple (a, b)`` → a list; ``!PLACEHOLDER`` → None; any other
  tag (``!include:``...) → a ``Node`` of that kind, left alone.

Example:
    >>> text = '''
    ... n_mels: 80
    ... path: /models/ecapa
    ... compute_features: !new:speechbrain.lobes.features.Fbank
    ...     n_mels: !ref <n_mels>
    ... ckpt: !ref <path>/embedding_model.ckpt
    ... double: !ref <n_mels> * 2
    ... act: !name:torch.nn.LeakyReLU
    ... '''
    >>> h = loads(text)
    >>> h["compute_features"].target, h["compute_features"].kwargs, h["ckpt"], h["double"]
    ('speechbrain.lobes.features.Fbank', {'n_mels': 80}, '/models/ecapa/embedding_model.ckpt', 160)
    >>> h["act"].kind, h["act"].target
    ('name', 'torch.nn.LeakyReLU')
"""

from __future__ import annotations

import ast
import operator
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class Node:
    """A tagged object description: ``!new:`` / ``!name:`` / ``!apply:`` with its arguments."""

    kind: str
    target: str
    args: list = field(default_factory=list)
    kwargs: dict = field(default_factory=dict)


@dataclass
class _Ref:
    expr: str


class _Loader(yaml.SafeLoader):
    pass


def _tagged(kind: str):
    def construct(loader: yaml.Loader, suffix: str, node: yaml.Node) -> Node:
        if isinstance(node, yaml.MappingNode):
            return Node(kind, suffix, kwargs=loader.construct_mapping(node, deep=True))
        if isinstance(node, yaml.SequenceNode):
            return Node(kind, suffix, args=loader.construct_sequence(node, deep=True))
        value = loader.construct_scalar(node)
        return Node(kind, suffix, args=[value] if value not in ("", None) else [])
    return construct


for _kind in ("new", "name", "apply"):
    _Loader.add_multi_constructor(f"!{_kind}:", _tagged(_kind))
# Any other tag (!include:, !module:, ...) is kept as a Node of that kind: entries the import
# does not read must not stop it.
_Loader.add_multi_constructor(
    "!", lambda loader, suffix, node: _tagged(suffix.partition(":")[0])(loader, suffix.partition(":")[2], node))
_Loader.add_constructor("!ref", lambda loader, node: _Ref(loader.construct_scalar(node)))
_Loader.add_constructor("!copy", lambda loader, node: _Ref(loader.construct_scalar(node)))
_Loader.add_constructor("!PLACEHOLDER", lambda loader, node: None)
_Loader.add_constructor(
    "!tuple", lambda loader, node: list(ast.literal_eval(loader.construct_scalar(node)))
    if isinstance(node, yaml.ScalarNode) else loader.construct_sequence(node, deep=True)
)

_REF = re.compile(r"<([^<>]+)>")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.FloorDiv: operator.floordiv, ast.Pow: operator.pow, ast.USub: operator.neg}


def _arith(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_arith(node.left), _arith(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_arith(node.operand))
    raise ValueError("not arithmetic")


def _lookup(root: dict, key: str, source: str) -> Any:
    value: Any = root
    for part in re.split(r"\.|\[|\]", key):
        if part == "":
            continue
        if isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise ValueError(f"{source}: !ref <{key}> names no key of the file")
    return value


def _resolve(value: Any, root: dict, source: str, depth: int = 0) -> Any:
    if depth > 50:
        raise ValueError(f"{source}: !ref chain too deep (a reference cycle?)")
    if isinstance(value, _Ref):
        expr = value.expr.strip()
        whole = _REF.fullmatch(expr)
        if whole:
            return _resolve(_lookup(root, whole[1], source), root, source, depth + 1)
        text = _REF.sub(lambda m: str(_resolve(_lookup(root, m[1], source), root, source, depth + 1)), expr)
        try:
            return _arith(ast.parse(text, mode="eval").body)
        except (ValueError, SyntaxError):
            return text
    if isinstance(value, dict):
        return {k: _resolve(v, root, source, depth) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, root, source, depth) for v in value]
    if isinstance(value, Node):
        return Node(value.kind, value.target, _resolve(value.args, root, source, depth),
                    _resolve(value.kwargs, root, source, depth))
    return value


def loads(text: str, source: str = "hyperparams.yaml") -> dict[str, Any]:
    """Parse HyperPyYAML text into plain data with :class:`Node` objects for the tags.

    Raises:
        ValueError: naming ``source`` for malformed YAML, a top level that is not a mapping, or a
            reference to a missing key.
    """
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        raise ValueError(f"{source}: cannot parse ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a mapping of hyperparameters at the top level")
    return _resolve(data, data, source)


def load(path: str | os.PathLike) -> dict[str, Any]:
    """:func:`loads` of a file. Raises ``ValueError`` naming the file when it cannot be read or parsed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: cannot read ({err})") from err
    return loads(text, str(path))
