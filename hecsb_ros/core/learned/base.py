"""The shared base of every learned codec model and the registry of learned models.

A learned model replaces part of the teacher (a *bottleneck*: HECS-B, SVB, CR+BQ, at the teacher's
split) or compresses its input (the neural input codecs). Each is a subclass of
:class:`LearnedModel`, itself CompressAI's :class:`~compressai.models.CompressionModel` (entropy
models, ``update()`` and ``aux_loss()``), and says how it is deployed:

- edge: :meth:`LearnedModel.edge` maps the image ``(N, C, H, W)`` (normalised for the teacher, or
  as pixels in [0, 1] when ``input_space == "pixels"``) to what its coder codes; the coder
  (:meth:`LearnedModel.make_coder`, a :class:`Coder`) turns one image's latent into payload bytes;
- server: the coder decodes the bytes, :meth:`LearnedModel.synthesize` maps the decoded latent to
  the teacher's split features (``target == "features"``: the teacher's tail, or a fine-tuned copy,
  runs next) or to pixels in [0, 1] (``target == "pixels"``: the whole teacher runs next).

:class:`~hecsb_ros.core.learned.split.Split` puts a model, its coder and the teacher together;
checkpoints are written and read once for all kinds (:func:`save_learned`, :func:`read_learned`).
Call order of a model: train, then ``update()`` once (the integer CDF tables become state-dict
buffers, so both ends code with the same tables), then save.

A new learned codec is one module with a :class:`LearnedModel` subclass (``kind`` set) plus one
line in :data:`BUILTIN_MODELS`; the codec registry then serves it under its ``kind``, and a recipe
(:mod:`hecsb_ros.core.training.recipes`) trains it.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import typing
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.models import CompressionModel
from torch import nn

from hecsb_ros.core.entropy.latent import LatentCoder
from hecsb_ros.core.store import metadata_value, read_tensors, write_tensors
from hecsb_ros.core.teachers.tail import split_tail_state, tail_state

#: Checkpoint formats: HECS-B bottlenecks have their own (the shipped levels use it); every other
#: learned model writes the baseline format, which names its ``kind``.
HECSB_FORMAT = "hecsb_ros.hecsb/1"
BASELINE_FORMAT = "hecsb_ros.baseline/1"
#: Learned model kinds: name -> module defining the model class (imported on first use).
BUILTIN_MODELS: dict[str, str] = {
    "hecsb": "hecsb_ros.core.learned.hecsb",
    "hecsb_light": "hecsb_ros.core.learned.hecsb",
    "svb": "hecsb_ros.core.learned.svb",
    "crbq": "hecsb_ros.core.learned.crbq",
    "factorized": "hecsb_ros.core.learned.neural",
    "hyperprior": "hecsb_ros.core.learned.neural",
}
_TABLE_BUFFERS = ("_quantized_cdf", "_offset", "_cdf_length", "scale_table")


class Coder(Protocol):
    """Entropy coding of one image's latent: ``payload(y) -> bytes``, ``decode(bytes) -> latent``.

    ``decode`` raises :class:`~hecsb_ros.core.payload.PayloadError` on bytes no encoder made and
    returns the latent the edge's rounding gave, bit for bit; ``quantize(y)`` is that latent
    without coding (``decode(payload(y))``, faster for evaluation).
    """

    def payload(self, y: torch.Tensor) -> bytes: ...
    def decode(self, data: bytes) -> torch.Tensor: ...
    def quantize(self, y: torch.Tensor) -> torch.Tensor: ...
    def max_payload_bytes(self) -> int: ...


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """A frozen config dataclass from its JSON dict (lists become the tuples the fields
    declare)."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            value = data[f.name]
            if isinstance(value, list) and "tuple" in str(hints.get(f.name, "")):
                value = tuple(value)
            kwargs[f.name] = value
    return cls(**kwargs)


class LearnedModel(CompressionModel):
    """Base of every learned codec model (see the module docstring).

    Subclasses set the class attributes and implement :meth:`edge`, :meth:`make_coder` and
    :meth:`synthesize`; ``config`` is a frozen dataclass of type ``config_type``.
    """

    kind: ClassVar[str] = ""
    #: one line, shown as the codec's description
    description: ClassVar[str] = ""
    #: manifest field naming the value that sets the rate (beta, channels, lmbda)
    rate_setting: ClassVar[str] = ""
    checkpoint_format: ClassVar[str] = BASELINE_FORMAT
    config_type: ClassVar[type]
    #: 'normalized' (the teacher's input tensor) or 'pixels' (in [0, 1])
    input_space: ClassVar[str] = "normalized"
    #: 'features' (the teacher's tail runs next) or 'pixels' (the whole teacher runs next)
    target: ClassVar[str] = "features"
    config: Any

    @classmethod
    def from_config(cls, config: Any) -> "LearnedModel":
        return cls(config)

    def config_dict(self) -> dict[str, Any]:
        to_json = getattr(self.config, "to_json", None)
        return json.loads(to_json()) if to_json else dataclasses.asdict(self.config)

    @property
    def teacher_bound(self) -> bool:
        """Trained for one teacher (a bottleneck at its split) rather than for its input images."""
        return self.target == "features"

    # -- deployment ----------------------------------------------------------------------------
    def edge(self, x: torch.Tensor) -> torch.Tensor:
        """Edge network: ``(N, C, H, W)`` -> the unquantised latents the coder codes ``(N,
        ...)``."""
        raise NotImplementedError

    def stem(self) -> nn.Module | None:
        """The teacher's own first layers the edge network starts with (None: it has none)."""
        return None

    def encode_after_stem(self, s: torch.Tensor) -> torch.Tensor:
        """The edge network after :meth:`stem`: stem outputs -> the unquantised latents (training
        with a frozen stem feeds it the teacher's cached split features instead of running the
        stem, when :meth:`stem_reaches_split`)."""
        raise NotImplementedError(f"{type(self).__name__} has no stem")

    def stem_reaches_split(self) -> bool:
        """:meth:`stem`'s output is the teacher's split features (true of every stem that is there,
        unless a model says otherwise)."""
        return self.stem() is not None

    def make_coder(self) -> Coder:
        """The coder of one image's latent (after ``update()``)."""
        raise NotImplementedError

    def synthesize(self, z: torch.Tensor) -> torch.Tensor:
        """Server network: decoded latents ``(N, ...)`` -> split features or pixels ``(N, C, H,
        W)``."""
        raise NotImplementedError

    # -- CompressionModel ----------------------------------------------------------------------
    def update(
        self,
        scale_table: torch.Tensor | None = None,
        force: bool = True,
        update_quantiles: bool = False,
    ) -> bool:
        """Recompute the integer CDF tables from the trained densities (always, by default)."""
        return super().update(scale_table, force=force, update_quantiles=update_quantiles)

    # type: ignore[override]
    def load_state_dict(self, state_dict: dict[str, torch.Tensor], strict: bool = True):
        """``nn.Module.load_state_dict`` after giving every CDF-table buffer the size in
        ``state_dict`` (tables of any length load, also into a model that has tables already)."""
        for name, module in self.named_modules():
            if isinstance(module, (EntropyBottleneck, GaussianConditional)):
                for buf in _TABLE_BUFFERS:
                    key = f"{name}.{buf}" if name else buf
                    if key in state_dict and hasattr(module, buf):
                        setattr(module, buf, torch.zeros_like(state_dict[key]))
        return nn.Module.load_state_dict(self, state_dict, strict=strict)

    def has_tables(self) -> bool:
        """Every entropy model has its CDF tables (``update()`` was called)."""
        return all(
            m._offset.numel() > 0
            for m in self.modules()
            if isinstance(m, (EntropyBottleneck, GaussianConditional))
        )


class FactorizedLatentModel(LearnedModel):
    """A bottleneck whose latent ``y`` is coded with a factorized prior (HECS-B, SVB).

    The model has an ``entropy_bottleneck`` (one density per latent channel) and a decoder
    ``g_phi`` to the teacher's split features; the latent is ``z = y + U(-1/2, 1/2)`` in training
    (eq. 14) and rounded around the prior's medians at inference, as CompressAI does. Subclasses
    implement :meth:`encode` and :meth:`encoder_parameters`; ``config.latent_shape`` is one image's
    ``(C, h, w)``.
    """

    entropy_bottleneck: EntropyBottleneck
    g_phi: nn.Module

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Edge network: image ``(N, C, H, W)`` -> unquantised latent ``(N, C_y, h, w)``."""
        raise NotImplementedError

    def encoder_parameters(self) -> list[nn.Parameter]:
        raise NotImplementedError

    def edge(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)

    def synthesize(self, z: torch.Tensor) -> torch.Tensor:
        return self.g_phi(z)

    def make_coder(self) -> LatentCoder:
        return LatentCoder(self.entropy_bottleneck, self.config.latent_shape)

    def quantize(self, y: torch.Tensor, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent ``z`` and its likelihoods under the prior (both shaped like ``y``).

        ``mode``: 'noise' (``y + U(-1/2, 1/2)``, eq. 14), 'round' (rounded, as at inference), or
        'ste' (rounded in the forward pass, identity gradient; likelihoods of the noisy latent so
        that the rate term keeps a useful gradient).
        """
        if mode == "noise":
            return self.entropy_bottleneck(y, training=True)
        z_round, lik_round = self.entropy_bottleneck(y, training=False)
        if mode == "round":
            return z_round, lik_round
        if mode == "ste":
            _, lik_noise = self.entropy_bottleneck(y, training=True)
            return y + (z_round - y).detach(), lik_noise
        raise ValueError(f"unknown quantisation mode {mode!r}")

    def forward(self, x: torch.Tensor, mode: str = "noise") -> tuple[torch.Tensor, torch.Tensor]:
        """``x (N, C, H, W)`` -> reconstructed split features and the latent's likelihoods."""
        z, likelihoods = self.quantize(self.encode(x), mode)
        return self.synthesize(z), likelihoods

    def project_(self) -> None:
        """Enforce the model's constraints after an optimiser step (none by default)."""

    def prior_parameters(self, aux: bool) -> list[nn.Parameter]:
        """Prior parameters: the quantiles (``aux=True``, trained by ``aux_loss``) or the
        densities."""
        return [
            p
            for n, p in self.entropy_bottleneck.named_parameters()
            if n.endswith("quantiles") == aux
        ]


def rate_bits(likelihoods: torch.Tensor) -> torch.Tensor:
    """Rate term ``-log2 p(z)`` summed per image: ``(N, ...)`` -> ``(N,)`` bits (eq. 13-14)."""
    return -torch.log2(likelihoods).flatten(1).sum(1)


def distortion(h: torch.Tensor, h_hat: torch.Tensor) -> torch.Tensor:
    """Distortion term ``1/2 ||h - g(z)||^2`` per image, divided by the feature size: ``(N,)``."""
    return 0.5 * (h - h_hat).pow(2).flatten(1).mean(1)


# -- registry -----------------------------------------------------------------------------------
_REGISTRY: dict[str, type[LearnedModel]] = {}


def register_model(cls: type[LearnedModel]) -> type[LearnedModel]:
    """Class decorator: make a learned model loadable by its ``kind``."""
    if not cls.kind:
        raise ValueError(f"{cls.__name__} has no kind")
    if _REGISTRY.get(cls.kind, cls) is not cls:
        raise ValueError(f"learned model {cls.kind!r} registered twice")
    _REGISTRY[cls.kind] = cls
    return cls


def model_class(kind: str) -> type[LearnedModel]:
    """The model class of ``kind``; ValueError lists the known kinds otherwise."""
    if kind not in _REGISTRY and kind in BUILTIN_MODELS:
        importlib.import_module(BUILTIN_MODELS[kind])
    if kind not in _REGISTRY:
        raise ValueError(
            f"unknown learned model {kind!r}; known: "
            f"{', '.join(sorted(set(BUILTIN_MODELS) | set(_REGISTRY)))}"
        )
    return _REGISTRY[kind]


def list_models() -> list[str]:
    """Kinds of all learned models, sorted."""
    return sorted(set(BUILTIN_MODELS) | set(_REGISTRY))


def build_learned(kind: str, config: Any) -> LearnedModel:
    """An untrained model of ``kind`` with ``config`` (a config dataclass or its dict)."""
    cls = model_class(kind)
    if isinstance(config, dict):
        config = config_from_dict(cls.config_type, config)
    return cls.from_config(config)


# -- checkpoints --------------------------------------------------------------------------------
TRAIN_COMMANDS = {
    "hecsb": "python -m hecsb_ros.cli.train_hecsb",
    "hecsb_light": "python -m hecsb_ros.cli.train_hecsb --head light",
}
_RESERVED = ("format", "kind", "config", "teacher_model_id")


def save_learned(
    path: Path | str,
    model: LearnedModel,
    teacher_model_id: str,
    facts: dict[str, Any] | None = None,
    tail: nn.Module | None = None,
) -> Path:
    """Write a trained model (after ``update()``): weights, CDF tables, config and facts.

    ``tail``: a fine-tuned copy of the teacher's tail to ship with it (keys ``tail.*``, metadata
    ``tail`` = ``fine-tuned``; see :mod:`hecsb_ros.core.teachers.tail`); the metadata's ``tail``
    follows it, whatever ``facts`` say. Facts that are not strings are stored as JSON.
    """
    if not model.has_tables():
        raise ValueError(
            "call model.update() before saving: the checkpoint must carry the CDF tables"
        )
    facts = dict(facts or {})
    clash = [k for k in facts if k in _RESERVED]
    if clash:
        raise ValueError(f"facts may not use the reserved keys {clash}")
    meta = {
        "format": model.checkpoint_format,
        "config": json.dumps(model.config_dict(), sort_keys=True),
        "teacher_model_id": teacher_model_id,
    }
    # a HECS-B file without it: hecsb
    if model.checkpoint_format == BASELINE_FORMAT or model.kind != "hecsb":
        meta["kind"] = model.kind
    meta.update({str(k): metadata_value(v) for k, v in facts.items() if k != "tail"})
    state = dict(model.state_dict())
    if tail is not None:
        state.update(tail_state(tail))
        meta["tail"] = "fine-tuned"
    return write_tensors(path, state, meta)


def read_learned(
    path: Path | str, kind: str | None = None, device: str = "cpu"
) -> tuple[LearnedModel, dict[str, str], dict[str, torch.Tensor]]:
    """Read a learned checkpoint (no unpickling): (model in eval mode, metadata, fine-tuned tail
    state).

    The tail state is empty when the checkpoint runs the teacher's own tail. ``kind``: refuse any
    other kind of model (a subclass of ``kind``'s model is that kind too: a ``hecsb_light``
    checkpoint loads as ``hecsb``, not the other way round).
    """
    path = Path(path)
    if not path.exists():
        command = TRAIN_COMMANDS.get(
            kind or "", f"python -m hecsb_ros.cli.train_baselines {kind or '<kind>'}"
        )
        raise FileNotFoundError(
            f"{kind or 'learned'} checkpoint {path} not found; train one with '{command}'"
        )
    state, meta = read_tensors(path)
    found = (
        meta.get("kind", "hecsb")
        if meta.get("format") == HECSB_FORMAT
        else meta.get("kind")
        if meta.get("format") == BASELINE_FORMAT
        else None
    )
    if found is not None and found not in list_models():
        found = None
    if found is None or (
        kind is not None
        and found != kind
        and not issubclass(model_class(found), model_class(kind))
    ):
        raise ValueError(
            f"{path}: not a {kind or 'learned'} checkpoint (format "
            f"{meta.get('format')!r}, "
            f"kind {meta.get('kind')!r})"
        )
    model = build_learned(found, json.loads(meta["config"]))
    state, tail = split_tail_state(state)
    model.load_state_dict(state)
    return model.to(device).eval(), meta, tail
