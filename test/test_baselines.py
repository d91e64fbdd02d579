"""Baselines: guarded entropy coding and framing, SVB (with the HECS-B distiller), CR+BQ, neural
input codecs."""

from __future__ import annotations

import random

import pytest
import torch
from compressai.entropy_models import EntropyBottleneck
from torch import nn

from hecsb_ros.core import store
from hecsb_ros.core.entropy import LatentCoder
from hecsb_ros.core.entropy.tables import (
    TableCoder,
    channel_indexes,
    frame_two,
    read_varint,
    unframe_two,
    write_varint,
)
from hecsb_ros.core.learned import Split, read_learned, save_learned
from hecsb_ros.core.learned.crbq import (
    CrbqBottleneck,
    CrbqConfig,
    dequantize_8bit,
    pack,
    quantize_8bit,
    unpack,
)
from hecsb_ros.core.learned.neural import NeuralConfig, build, crop, pad, table_indexes
from hecsb_ros.core.learned.svb import SvbBottleneck, SvbConfig
from hecsb_ros.core.payload import PayloadError
from hecsb_ros.core.store import model_id_of
from hecsb_ros.core.training.data import TensorSource
from hecsb_ros.core.training.loops import head_distill, train_rd

pytestmark = [pytest.mark.slow]

torch.set_num_threads(1)
SVB_CFG = SvbConfig(1, (28, 28), 32, (14, 14), latent_channels=4)


def _mutations(data: bytes, seed: int = 0, n: int = 40):
    """Truncations, bit flips, appended bytes and random strings derived from ``data``."""
    rng = random.Random(seed)
    yield b""
    yield data[:-1]
    for _ in range(n):
        kind = rng.randrange(4)
        if kind == 0:
            yield data[: rng.randrange(len(data))]
        elif kind == 1:
            b = bytearray(data)
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
            yield bytes(b)
        elif kind == 2:
            yield data + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
        else:
            yield bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3 * len(data) + 9)))


def _check_mutations(data: bytes, decode, reencode=None, n: int = 40) -> None:
    """Mutations of ``data`` raise PayloadError, or (the arithmetic code has little redundancy) are
    themselves the canonical payload of another input (``reencode(bad) == bad``); most are
    rejected."""
    total = rejected = 0
    for bad in _mutations(data, n=n):
        if bad == data:
            continue
        total += 1
        try:
            decode(bad)
        except PayloadError:
            rejected += 1
            continue
        if reencode is not None:
            assert reencode(bad) == bad
    assert rejected >= total // 2


# -- entropy coding and framing -------------------------------------------------------------------
def test_varint_and_two_stream_framing():
    for n in (0, 1, 127, 128, 300, 16383, 16384, (1 << 21) - 1):
        enc = write_varint(n)
        assert read_varint(enc + b"xyz") == (n, len(enc))
    with pytest.raises(ValueError):
        write_varint(1 << 21)
    with pytest.raises(PayloadError):
        read_varint(b"\x80\x80\x80\x01")  # longer than 3 bytes
    with pytest.raises(PayloadError):
        read_varint(b"\x81\x00")  # non-minimal
    data = frame_two(b"abcd" * 3, b"12345678")
    assert unframe_two(data, 12, 8) == (b"abcd" * 3, b"12345678")
    with pytest.raises(PayloadError, match="truncated"):
        unframe_two(data[:8], 12, 8)
    with pytest.raises(PayloadError):
        unframe_two(data, 11, 8)  # first stream above its bound
    with pytest.raises(PayloadError):
        unframe_two(data + b"9", 12, 8)  # second stream above its bound


def test_table_coder_round_trip_and_hostile_bytes():
    torch.manual_seed(0)
    eb = EntropyBottleneck(3)
    eb.update(force=True)
    coder = TableCoder.of(eb)
    latent = LatentCoder(eb, (3, 5, 5))
    idx = channel_indexes((3, 5, 5))
    y = torch.randn(3, 5, 5) * 4
    s = latent.symbols(y)
    data = coder.encode(s, idx)
    assert torch.equal(coder.decode(data, idx), s)
    assert 1 <= len(data) <= TableCoder.max_bytes(75) == 151
    # the same symbols as CompressAI's own (rANS) coder on in-range symbols
    z = latent.dequantize(s)
    assert torch.equal(eb.decompress(eb.compress(z[None]), (5, 5))[0], z)
    _check_mutations(
        data, lambda b: coder.decode(b, idx), lambda b: coder.encode(coder.decode(b, idx), idx)
    )
    # a symbol far outside the tables is clamped, never escaped
    huge = torch.full((3, 5, 5), 10_000.0)
    s2 = latent.symbols(huge)
    assert bool((s2 <= coder.hi[idx.long()]).all())
    assert torch.equal(coder.decode(coder.encode(s2, idx), idx), s2)

    # indexes bound once give the same stream and symbols as a tensor of indexes on every call
    bound = coder.bind(idx)
    assert coder.bind(bound) is bound and bound.flat == idx.reshape(-1).tolist()
    assert coder.encode(s, bound) == data and torch.equal(coder.decode(data, bound), s)
    raw = torch.round(huge - eb._get_medians().detach().reshape(-1, 1, 1)).to(torch.int64)
    assert torch.equal(coder.clamp(raw, bound), s2) and torch.equal(coder.clamp(raw, idx), s2)


def test_table_coder_checks_tables_once_and_indexes_when_bound():
    cdf = torch.tensor([[0, 30000, 60000, 65536]], dtype=torch.int32)
    TableCoder(cdf, torch.tensor([4]), torch.tensor([0]))
    with pytest.raises(ValueError, match="16-bit CDF"):
        TableCoder(
            torch.tensor([[0, 30000, 60000, 65535]], dtype=torch.int32),
            torch.tensor([4]),
            torch.tensor([0]),
        )
    coder = TableCoder(cdf, torch.tensor([4]), torch.tensor([0]))
    for bad in (torch.tensor([[1]]), torch.tensor([[-1]])):
        with pytest.raises(ValueError, match="outside 0..0"):
            coder.bind(bad)
        with pytest.raises(ValueError, match="outside 0..0"):
            coder.encode(torch.tensor([[0]]), bad)


def test_frozen_gdn_gives_the_layers_outputs():
    from compressai.layers import GDN

    from hecsb_ros.core.learned.gdn import FrozenGDN, freeze_gdn_

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 6, 3), GDN(6), nn.Sequential(GDN(6, inverse=True)))
    with torch.no_grad():  # move the parameters away from their initial values
        for p in net.parameters():
            p.add_(0.1 * torch.rand_like(p))
    x = torch.randn(2, 1, 9, 9)
    with torch.no_grad():
        want = net(x)
        assert freeze_gdn_(net) == 2
        assert (
            isinstance(net[1], FrozenGDN)
            and isinstance(net[2][0], FrozenGDN)
            and net[2][0].inverse
        )
        assert torch.allclose(net(x), want, rtol=1e-5, atol=1e-6)
    assert freeze_gdn_(net) == 0


# -- SVB
# ---------------------------------------------------------------------------------------------
def test_svb_shapes_and_modes():
    model = SvbBottleneck(SVB_CFG)
    h, lik = model(torch.randn(2, 1, 28, 28))
    assert h.shape == (2, 32, 14, 14) and lik.shape == (2, 4, 7, 7)
    assert SVB_CFG.latent_shape == (4, 7, 7)
    model.update()
    with torch.no_grad():
        y = model.encode(torch.randn(2, 1, 28, 28))
        z, _ = model.quantize(y, "round")
    med = model.entropy_bottleneck._get_medians().detach().reshape(1, -1, 1, 1)
    assert float(((z - med) - torch.round(z - med)).abs().max()) < 1e-5
    with pytest.raises(ValueError):
        model.quantize(y, "floor")
    with pytest.raises(ValueError):
        SvbConfig(1, (28, 28), 32, (10, 10))


@pytest.fixture(scope="module")
def shipped_teacher():
    from hecsb_ros.core.teachers import load_teacher

    return load_teacher(None)


def _tiny_source(n: int = 16, seed: int = 0) -> TensorSource:
    g = torch.Generator().manual_seed(seed)
    return TensorSource(
        torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)
    )


def test_svb_trains_with_the_hecsb_distiller_and_codes_exactly(shipped_teacher, tmp_path):
    from hecsb_ros.core.training.distill import DistillConfig, Distiller

    torch.manual_seed(0)
    before = {k: v.clone() for k, v in SvbBottleneck(SVB_CFG).state_dict().items()}
    torch.manual_seed(0)
    cfg = DistillConfig(beta=0.01, stage1_epochs=1, stage2_epochs=1, batch_size=8)
    model = Distiller(
        SvbBottleneck(SVB_CFG), shipped_teacher, _tiny_source(), cfg, None, progress=False
    ).run()
    assert model.entropy_bottleneck._offset.numel() == 4  # update() ran: CDF tables exist
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items() if k in before)
    path = save_learned(
        tmp_path / "svb_fmnist_r0.safetensors", model, shipped_teacher.model_id, {"beta": 0.01}
    )
    again, meta, _ = read_learned(path)
    assert meta["kind"] == "svb" and meta["beta"] == "0.01"
    split = Split.load(path, shipped_teacher)
    x = torch.randn(3, 1, 28, 28)
    payloads = split.encode(x)
    logits = torch.stack([split.decode(p) for p in payloads])
    assert torch.allclose(logits, split.logits_rounded(x), atol=1e-5)
    _check_mutations(
        payloads[0],
        split.decode,
        lambda b: split.coder.encode_symbols(split.coder.decode_symbols(b)),
    )
    with pytest.raises(ValueError, match="not a crbq checkpoint"):
        read_learned(path, "crbq")


# -- CR+BQ
# -------------------------------------------------------------------------------------------
def test_crbq_quantiser_error_and_payload_format():
    torch.manual_seed(0)
    y = torch.randn(2, 3, 7, 7) * 5
    q, lo, hi = quantize_8bit(y)
    back = dequantize_8bit(q, lo, hi)
    step = (hi - lo) / 255
    assert q.dtype == torch.uint8
    assert bool(((back - y).abs().flatten(1).max(1).values <= step / 2 + 1e-5).all())
    cfg = CrbqConfig(1, (28, 28), 32, (14, 14), channels=3)
    data = pack(q[0], float(lo[0]), float(hi[0]))
    assert len(data) == cfg.payload_bytes == 8 + 3 * 49
    assert torch.equal(unpack(data, cfg), back[0])
    const = torch.full((1, 3, 7, 7), 2.5)  # hi == lo: every value decodes to lo
    assert torch.equal(dequantize_8bit(*quantize_8bit(const)), const)
    with pytest.raises(PayloadError, match="truncated"):
        unpack(data[:-1], cfg)
    with pytest.raises(PayloadError):
        unpack(data + b"\0", cfg)
    import struct

    for lo_, hi_ in ((float("nan"), 1.0), (0.0, float("inf")), (2.0, 1.0)):
        with pytest.raises(PayloadError, match="decode_error"):
            unpack(struct.pack("<ff", lo_, hi_) + data[8:], cfg)


def test_crbq_head_distillation_reduces_distortion(shipped_teacher, tmp_path):
    torch.manual_seed(0)
    cfg = CrbqConfig(1, (28, 28), 32, (14, 14), channels=2)
    model = CrbqBottleneck(cfg)
    src = _tiny_source(32)
    with torch.no_grad():
        h = shipped_teacher.model.head(src.x)
        d0 = float((model.eval()(src.x) - h).pow(2).mean())
    head_distill(
        model,
        shipped_teacher,
        src,
        epochs=3,
        batch_size=8,
        lr=5e-3,
        progress=False,
        log=lambda m: None,
    )
    with torch.no_grad():
        d1 = float((model(src.x) - h).pow(2).mean())
    assert d1 < d0
    path = save_learned(
        tmp_path / "crbq_fmnist_r0.safetensors", model, shipped_teacher.model_id, {"channels": 2}
    )
    split = Split.load(path, shipped_teacher)
    payloads = split.encode(src.x[:4])
    assert {len(p) for p in payloads} == {cfg.payload_bytes}
    logits = torch.stack([split.decode(p) for p in payloads])
    assert torch.allclose(logits, split.logits_rounded(src.x[:4]), atol=1e-4)
    with torch.no_grad():  # what the payload carries is what the training forward pass quantises
        assert torch.allclose(logits, shipped_teacher.model.tail(model(src.x[:4])), atol=1e-4)


# -- neural input codecs
# -----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["factorized", "hyperprior"])
def test_neural_input_codec_round_trip_and_hostile_bytes(kind, shipped_teacher, tmp_path):
    torch.manual_seed(0)
    cfg = NeuralConfig(kind, N=8, M=8)
    pixels = torch.rand(16, 1, 28, 28)
    model = train_rd(
        build(cfg),
        cfg,
        pixels,
        lmbda=0.01,
        epochs=1,
        batch_size=8,
        progress=False,
        log=lambda m: None,
    )
    assert model.entropy_bottleneck._offset.numel() > 0
    path = save_learned(
        tmp_path / f"{kind}_fmnist_r0.safetensors",
        model,
        shipped_teacher.model_id,
        {"lmbda": 0.01},
    )
    split = Split.load(path, shipped_teacher)
    assert cfg.latent_shape == (8, 4, 4) and cfg.hyper_shape == (8, 1, 1)
    x = pixels[:1]
    spec = shipped_teacher.spec
    # the edge takes the teacher's normalised input
    data = split.encode((x - spec.mean[0]) / spec.std[0])[0]
    assert 1 <= len(data) <= split.max_payload_bytes()
    rec = split.decode_features(data)
    assert rec.shape == (1, 1, 28, 28) and float(rec.min()) >= 0 and float(rec.max()) <= 1
    # the same reconstruction as CompressAI's own (rANS) compress / decompress (no symbol was
    # clamped)
    with torch.no_grad():
        ref = model.compress(pad(x, cfg))
        ref_rec = crop(model.decompress(ref["strings"], ref["shape"])["x_hat"], cfg)
    assert torch.allclose(rec, ref_rec, atol=1e-6)
    assert torch.equal(split.decode_features(data), rec)  # deterministic
    if kind == "hyperprior":  # the vectorised table choice equals CompressAI's build_indexes
        gc = model.gaussian_conditional
        scales = torch.cat(
            [
                torch.exp(torch.randn(1, 16, 2, 2) * 3),
                gc.scale_table[:16].view(1, 16, 1, 1).expand(1, 16, 2, 2),
            ],
            1,
        )
        assert torch.equal(table_indexes(gc, scales), gc.build_indexes(scales))
    _check_mutations(data, split.decode_features, n=30)


def test_levels_and_paths(tmp_path):
    for lv in (2, 0, 11):
        (tmp_path / f"svb_fmnist_r{lv}.safetensors").write_bytes(b"")
    (tmp_path / "svb_fmnist_rx.safetensors").write_bytes(b"")
    assert store.list_levels("svb", "fmnist", tmp_path) == [0, 2, 11]
    assert store.list_levels("svb", "resnet50", tmp_path) == []
    assert store.level_path("crbq", "fmnist", 3, tmp_path).name == "crbq_fmnist_r3.safetensors"
    with pytest.raises(FileNotFoundError, match="train_baselines svb"):
        read_learned(tmp_path / "missing.safetensors", "svb")
    with pytest.raises(FileNotFoundError, match="train_hecsb"):
        read_learned(tmp_path / "missing.safetensors", "hecsb")


# -- the registered codecs
# -------------------------------------------------------------------------
def _untrained_checkpoint(kind: str, teacher, folder):
    """A small untrained checkpoint of ``kind`` with CDF tables (enough for the codec contract)."""
    torch.manual_seed(0)
    path = folder / f"{kind}_fmnist_r0.safetensors"
    if kind == "svb":
        model = SvbBottleneck(SVB_CFG)
        model.update()
        return save_learned(path, model.eval(), teacher.model_id)
    if kind == "crbq":
        return save_learned(
            path, CrbqBottleneck(CrbqConfig(1, (28, 28), 32, (14, 14), 2)).eval(), teacher.model_id
        )
    cfg = NeuralConfig(kind, N=8, M=8)
    model = build(cfg)
    model.update(force=True)
    return save_learned(path, model.eval(), teacher.model_id)


@pytest.mark.parametrize("kind", ["svb", "crbq", "factorized", "hyperprior"])
def test_registered_codec_contract(kind, shipped_teacher, tmp_path):
    import numpy as np

    from hecsb_ros.core.codecs.base import (
        CodecSettings,
        create_codec,
        list_codecs,
        validate_payload,
    )

    assert kind in list_codecs()
    path = _untrained_checkpoint(kind, shipped_teacher, tmp_path)
    codec = create_codec(kind, CodecSettings(quality=0, checkpoint=str(path), threads=1))
    assert codec.model_id == model_id_of(path) and len(codec.model_id) == 16
    image = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    frame = codec.encode(image, "mono8")
    assert frame.shape == () and set(frame.timings_ms) == {"preprocess", "encode", "entropy"}
    validate_payload(codec, kind, codec.model_id, 0, frame.shape, len(frame.data), 1 << 20)
    out = codec.decode(frame.data, frame.shape)
    assert out.logits.shape == (10,) and set(out.timings_ms) == {"decode", "infer"}
    assert torch.equal(codec.decode(frame.data, ()).logits, out.logits)
    with pytest.raises(PayloadError, match="bad_shape"):
        codec.decode(frame.data, (1,))
    with pytest.raises(PayloadError, match="too_large"):
        codec.decode(bytes(codec.max_payload_bytes() + 1), ())
    with pytest.raises(PayloadError):
        codec.decode(frame.data[:-4] if len(frame.data) > 4 else b"", ())
    rgb = np.stack([image] * 3, axis=-1)
    assert len(codec.encode(rgb, "rgb8").data) > 0  # colour frames are converted on the edge


def test_train_baselines_cli_continues_an_svb_from_init(tmp_path, capsys):
    """``--init`` continues stage 2 of a trained SVB; the manifest records where it started."""
    from hecsb_ros.cli import train_baselines
    from hecsb_ros.core.datasets import DatasetNotFound, load_fashion_mnist

    try:
        load_fashion_mnist("test")
    except DatasetNotFound as exc:
        pytest.fail(f"Fashion-MNIST is installed by scripts/setup.sh: {exc}")
    common = [
        "svb",
        "--beta",
        "0.01",
        "--latent-channels",
        "4",
        "--limit-train",
        "64",
        "--limit-test",
        "32",
        "--batch-size",
        "16",
        "--no-progress",
    ]
    assert (
        train_baselines.main(
            [*common, "--stage1-epochs", "1", "--stage2-epochs", "0", "--out", str(tmp_path / "a")]
        )
        == 0
    )
    first = tmp_path / "a" / "svb_fmnist_r0.safetensors"
    assert train_baselines.main([*common, "--init", str(first), str(first)]) == 2  # a usage error
    assert "init needs one checkpoint per value" in capsys.readouterr().err
    crbq = ["crbq", "--channels", "2", "--init", str(first), "--out", str(tmp_path / "c")]
    assert train_baselines.main(crbq) == 2
    assert "crbq trains from scratch" in capsys.readouterr().err
    assert (
        train_baselines.main(
            [
                *common,
                "--stage1-epochs",
                "0",
                "--stage2-epochs",
                "1",
                "--ema",
                "0.9",
                "--init",
                str(first),
                "--out",
                str(tmp_path / "b"),
            ]
        )
        == 0
    )
    m = store.read_manifest(tmp_path / "b" / "svb_fmnist_r0.safetensors")
    earlier = m["earlier_training"]
    assert earlier[-1]["model_id"] == model_id_of(first)
    assert m["distill"]["ema"] == 0.9 and m["config"]["latent_channels"] == 4
    assert m["model_id"] != earlier[-1]["model_id"]


def test_large_latents_use_rans_and_refuse_hostile_streams():
    """Above RANS_MIN_SYMBOLS symbols (camera-scale latents) the stream is CompressAI's rANS code:
    the same symbols back, and truncated, flipped or random bytes refused (never read out of
    bounds)."""
    from hecsb_ros.core.entropy.tables import RANS_MIN_SYMBOLS

    torch.manual_seed(0)
    eb = EntropyBottleneck(8)
    eb.update(force=True)
    coder = LatentCoder(eb, (8, 28, 28))
    assert coder.num_symbols > RANS_MIN_SYMBOLS and TableCoder.uses_rans(coder.num_symbols)
    y = torch.randn(8, 28, 28) * 4
    data = coder.payload(y)
    assert len(data) % 4 == 0 and len(data) <= coder.max_payload_bytes()
    assert torch.equal(coder.decode(data), coder.quantize(y))
    # the same stream CompressAI's own entropy bottleneck writes for these (in-range) symbols
    assert eb.compress(coder.quantize(y)[None])[0] == data
    _check_mutations(data, coder.decode, lambda b: coder.encode_symbols(coder.decode_symbols(b)))
    for bad in (b"", b"\x00" * 4, data[:-1], bytes(range(256)) * 3):
        with pytest.raises(PayloadError):
            coder.decode(bad)
