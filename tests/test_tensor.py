"""hepnn.Tensor: construction and dtype rules, factories, conversions, devices (CPU always, CUDA
when available), DLPack round trips with NumPy and torch, seeding, and error messages."""
import numpy as np
import pytest

import hepnn


# ---- construction and dtype rules ----
def test_python_data_follows_torch_dtype_rules():
    assert hepnn.tensor([1.5, 2.0]).dtype == np.float32
    assert hepnn.tensor(3.0).dtype == np.float32 and hepnn.tensor(3.0).shape == ()
    assert hepnn.tensor([[1, 2], [3, 4]]).dtype == np.int64
    assert hepnn.tensor([True, False]).dtype == np.bool_
    assert hepnn.tensor([1, 2.5]).dtype == np.float32


def test_numpy_arrays_keep_their_dtype_unless_given():
    for dt in (np.float64, np.float32, np.int32, np.int64, np.uint8):
        assert hepnn.tensor(np.zeros(3, dtype=dt)).dtype == dt
    assert hepnn.tensor(np.zeros(3), dtype="float32").dtype == np.float32
    assert hepnn.tensor([1, 2], dtype=hepnn.float64).dtype == np.float64
    assert hepnn.tensor(np.float64(2.0)).dtype == np.float64


def test_tensor_copies_its_input():
    a = np.arange(4.0)
    t = hepnn.tensor(a)
    a[0] = 99.0
    assert t.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_facts_and_conversions():
    t = hepnn.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert t.shape == (2, 3) and t.ndim == 2 and t.device == "cpu" and len(t) == 2
    assert t.is_leaf and t.requires_grad and t.grad is None and t.numel() == 6
    assert isinstance(t.numpy(), np.ndarray) and t.numpy() is t.data
    assert t.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert hepnn.tensor([7.5]).item() == 7.5 and float(hepnn.tensor(2.0)) == 2.0
    assert t.float().dtype == np.float32 and t.float().double().dtype == np.float64
    assert t.to("cpu") is t and t.cpu() is t
    assert t.to(dtype=np.float32).dtype == np.float32
    assert np.asarray(t.detach()).shape == (2, 3)
    with pytest.raises(ValueError, match=r"\[item\]"):
        t.item()
    with pytest.raises(TypeError):
        len(hepnn.tensor(1.0))


def test_data_is_settable_and_zero_():
    t = hepnn.ones(3)
    t.data = np.full(3, 2.0, dtype=np.float32)
    assert t.tolist() == [2.0, 2.0, 2.0]
    assert t.zero_() is t and t.tolist() == [0.0, 0.0, 0.0]


def test_repr():
    assert repr(hepnn.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert "dtype=float64" in repr(hepnn.tensor([1.0], dtype="float64"))
    assert "requires_grad=True" in repr(hepnn.ones(1, requires_grad=True))


# ---- factories ----
def test_factories():
    assert hepnn.zeros(2, 3).tolist() == [[0.0] * 3] * 2
    assert hepnn.zeros((2, 3)).shape == (2, 3) and hepnn.zeros(2, 3).dtype == np.float32
    assert hepnn.ones(4, dtype="float64").dtype == np.float64
    assert hepnn.full((2,), 1.5).tolist() == [1.5, 1.5]
    assert hepnn.full((2,), 3).dtype == np.int64
    assert hepnn.empty(5).shape == (5,)
    assert hepnn.arange(4).tolist() == [0, 1, 2, 3] and hepnn.arange(4).dtype == np.int64
    assert hepnn.arange(0.0, 1.0, 0.25).dtype == np.float32
    base = hepnn.ones(2, 3, dtype="float64")
    assert hepnn.zeros_like(base).dtype == np.float64 and hepnn.ones_like(base).shape == (2, 3)
    assert hepnn.randn(3, 4).shape == (3, 4) and hepnn.rand(5).dtype == np.float32
    w = hepnn.zeros(3, requires_grad=True)
    assert w.requires_grad


def test_manual_seed_reproduces_randn_rand_and_dropout():
    draws = []
    for _ in range(2):
        hepnn.manual_seed(42)
        draws.append((hepnn.randn(7).tolist(), hepnn.rand(3, dtype="float64").tolist(),
                      hepnn.nn.functional.dropout(hepnn.ones(20), 0.5).tolist()))
    assert draws[0] == draws[1]
    hepnn.manual_seed(43)
    assert hepnn.randn(7).tolist() != draws[0][0]
    u = hepnn.rand(10000).numpy()
    assert 0.0 <= u.min() and u.max() < 1.0 and abs(u.mean() - 0.5) < 0.02
    n = hepnn.randn(10000, dtype="float64").numpy()
    assert abs(n.mean()) < 0.05 and abs(n.std() - 1.0) < 0.05
    with pytest.raises(ValueError, match="seed"):
        hepnn.manual_seed(-1)


# ---- devices ----
def test_cuda_query_functions():
    assert isinstance(hepnn.cuda.is_available(), bool)
    assert hepnn.cuda.device_count() >= 0
    if not hepnn._core.cuda_built():
        assert hepnn.cuda.device_count() == 0 and not hepnn.cuda.is_available()


def test_tf32_switch():
    assert hepnn.cuda.allow_tf32() is False  # off by default
    with pytest.raises(TypeError, match=r"\[set_allow_tf32\]"):
        hepnn.cuda.set_allow_tf32(1)
    if not hepnn._core.cuda_built():
        with pytest.raises(ValueError, match=r"\[set_allow_tf32\] hepnn was built without CUDA"):
            hepnn.cuda.set_allow_tf32(True)
    else:
        hepnn.cuda.set_allow_tf32(True)
        assert hepnn.cuda.allow_tf32() is True
    hepnn.cuda.set_allow_tf32(False)
    assert hepnn.cuda.allow_tf32() is False


def test_moving_to_cuda_without_cuda_says_why():
    if hepnn.cuda.is_available():
        pytest.skip("CUDA is available here")
    reason = hepnn.cuda.unavailable_reason()
    assert reason
    for make in (lambda: hepnn.ones(2).cuda(), lambda: hepnn.ones(2).to("cuda"),
                 lambda: hepnn.zeros(2, device="cuda"), lambda: hepnn.randn(2, device="cuda"),
                 lambda: hepnn.tensor([1.0], device="cuda")):
        with pytest.raises(RuntimeError, match="cannot use a CUDA device") as info:
            make()
        assert reason in str(info.value)


def test_bad_device_name():
    with pytest.raises(ValueError, match="unknown device"):
        hepnn.zeros(2, device="tpu")


@pytest.mark.skipif(not hepnn.cuda.is_available(), reason="needs a CUDA device and CuPy")
def test_cuda_round_trip_and_ops():
    import cupy

    x = hepnn.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    g = x.cuda()
    assert g.device == "cuda" and isinstance(g.data, cupy.ndarray)
    y = ((g * 2.0 + 1.0) ** 2).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4.0 * (2.0 * x.numpy() + 1.0))
    assert g.cpu().tolist() == x.tolist()
    assert hepnn.zeros(3, device="cuda").device == "cuda"
    hepnn.manual_seed(3)
    a = hepnn.randn(5, device="cuda").cpu().tolist()
    hepnn.manual_seed(3)
    assert hepnn.randn(5, device="cuda").cpu().tolist() == a
    with pytest.raises(TypeError, match="cpu"):
        g.numpy()


# ---- DLPack ----
def test_dlpack_numpy_round_trip_is_zero_copy():
    a = np.arange(6.0).reshape(2, 3)
    t = hepnn.from_dlpack(a)
    t.data[0, 0] = -1.0
    assert a[0, 0] == -1.0
    b = np.from_dlpack(t)
    b[1, 2] = 42.0
    assert t.data[1, 2] == 42.0 and a[1, 2] == 42.0
    assert t.__dlpack_device__()[0] == 1  # kDLCPU


def test_dlpack_torch_round_trip():
    torch = pytest.importorskip("torch")
    src = torch.arange(5, dtype=torch.float32)
    t = hepnn.from_dlpack(src)
    t.data[0] = 10.0
    assert src[0].item() == 10.0
    back = torch.from_dlpack(hepnn.tensor([1.0, 2.0], dtype="float64"))
    assert back.dtype == torch.float64 and back.tolist() == [1.0, 2.0]
    shared = hepnn.ones(3)
    view = torch.from_dlpack(shared)
    view += 1
    assert shared.tolist() == [2.0, 2.0, 2.0]
    assert hepnn.tensor(torch.ones(2, dtype=torch.float64)).dtype == np.float64


def test_from_dlpack_rejects_non_producers():
    with pytest.raises(TypeError, match="DLPack"):
        hepnn.from_dlpack([1, 2, 3])


# ---- threads ----
def test_num_threads():
    n = hepnn.get_num_threads()
    hepnn.set_num_threads(1)
    assert hepnn.get_num_threads() == 1
    hepnn.set_num_threads(n)
    with pytest.raises(ValueError):
        hepnn.set_num_threads(0)


# ---- comparisons and logic produce constant tensors ----
def test_comparisons():
    x = hepnn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    m = (x > 1.5) & (x <= 3.0)
    assert m.dtype == np.bool_ and m.tolist() == [False, True, True] and not m.requires_grad
    assert (~m).tolist() == [True, False, False]
    assert (x == 2.0).tolist() == [False, True, False]
    assert {x: 1}[x] == 1  # tensors hash by identity even though == is elementwise
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(x > 0)


def test_import_without_cupy_does_not_import_it():
    import subprocess
    import sys

    code = ("import sys; sys.modules['cupy'] = None; import hepnn; "
            "assert not hepnn.cuda.is_available(); print((hepnn.ones(2) * 2).tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__('os').environ})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[2.0, 2.0]"


# ---- every docstring example of the Python layer runs ----
@pytest.mark.parametrize("module", ["hepnn", "hepnn.tensor", "hepnn.autograd", "hepnn._ops_math",
                                    "hepnn._ops_shape", "hepnn._ops_kernel", "hepnn._ops_data", "hepnn._ops_trig",
                                    "hepnn._factories", "hepnn.random",
                                    "hepnn.cuda", "hepnn.nn.functional"])
def test_docstring_examples(module):
    import doctest
    import importlib

    mod = importlib.import_module(module)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


STANDIN_CHECK = r"""
import numpy as np
from tests.cupy_standin import install
cp = install()
import hepnn
import hepnn.nn.functional as F

assert hepnn.cuda.is_available()
rng = np.random.default_rng(5)
arrays = {"x": rng.standard_normal((6, 5)), "w": rng.standard_normal((4, 5)),
          "b": rng.standard_normal(4), "v": rng.standard_normal((5, 3))}
labels = rng.integers(0, 4, 6)
weights = rng.random(6) + 0.5

def run(device):
    hepnn.manual_seed(11)
    t = {k: hepnn.tensor(a, device=device, requires_grad=True) for k, a in arrays.items()}
    x = t["x"]
    assert x.device == device and (device == "cpu") == (type(x.data) is np.ndarray)
    h = F.linear(x, t["w"], t["b"], activation="gelu")
    loss = F.cross_entropy(h, labels, event_weight=weights)
    y = (x @ t["v"]).tanh().softmax(1)
    loss = loss + (y[y.detach() > 0.3] ** 2).sum() + x[[0, 0, 3], 1:].max(dim=1).sum()
    loss = loss + hepnn.cat([x, x * 2.0], 1).mean() + hepnn.stack([x, x]).abs().sum() * 0.1
    loss = loss + hepnn.where(x > 0, x, 0.0).clamp(max=1.0).sum() + F.dropout(x, 0.3).sum()
    loss = loss + F.mse_loss(x.relu().log_softmax(1), x.detach().sigmoid())
    loss = loss + F.binary_cross_entropy_with_logits(h, (h.detach() > 0).float().double())
    z = x.cpu().cuda() if device == "cuda" else x
    loss = loss + (z.float().double() * 0.5).sum()
    loss.backward()
    assert loss.device == device and t["w"].grad.device == device
    grads = {k: v.grad.cpu().numpy() for k, v in t.items()}
    return loss.item(), grads

cpu_loss, cpu_grads = run("cpu")
gpu_loss, gpu_grads = run("cuda")
assert abs(cpu_loss - gpu_loss) < 1e-12, (cpu_loss, gpu_loss)
for k in cpu_grads:
    np.testing.assert_allclose(gpu_grads[k], cpu_grads[k], rtol=1e-12, atol=1e-12)
g = hepnn.zeros(3, device="cuda")
assert g.device == "cuda" and hepnn.randn(2, device="cuda").device == "cuda"
assert hepnn.tensor(cp.asarray([1.0])).device == "cuda"
assert hepnn.from_dlpack(np.ones(2)).device == "cpu"
try:
    hepnn.ones(2) + hepnn.ones(2, device="cuda")
except RuntimeError as exc:
    assert "different devices" in str(exc)
else:
    raise AssertionError("mixing devices did not raise")
print("ok")
"""


def test_cuda_code_paths_with_a_cupy_standin():
    """The CUDA branches of the Python layer (array module, moves, streams, scatter-add, random)
    run against a NumPy-backed CuPy stand-in and must give the CPU run's loss and gradients."""
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", STANDIN_CHECK], capture_output=True, text=True,
                         cwd=root, env=os.environ.copy())
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")
