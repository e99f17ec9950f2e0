"""Networks and the PINN model that wraps them.

- ``mlp``: a fully connected network, Xavier-normal weights, zero biases
  (Glorot & Bengio 2010), the PINN default since Raissi et al. 2019.
- ``fourier``: random Fourier-feature embedding [cos(2π B x), sin(2π B x)],
  B ~ N(0, σ²), before the MLP (Tancik et al. 2020; Wang, Wang & Perdikaris
  2021 for PINNs).
- ``modified``: the modified MLP of Wang, Teng & Perdikaris 2021 (eq. 43):
  U = φ(X W_U), V = φ(X W_V), H¹ = φ(X W¹), Z^l = φ(H^l W^l),
  H^{l+1} = (1 − Z^l) ⊙ U + Z^l ⊙ V, output H^L W.
- ``--rwf mean=μ,std=σ`` (any of them): random weight factorisation (Wang,
  Wang, Seidman & Perdikaris 2022, "Random weight factorization improves the
  training of continuous neural representations"; the jaxpi default is
  μ = 1, σ = 0.1): every dense layer's W = diag(exp(s)) V with
  s ~ N(μ, σ) per output neuron and V = W / exp(s), so the network computes
  the same function at initialisation and Adam/quasi-Newton train s and V.

:class:`PINNModel` maps box coordinates to [−1, 1] before the network, adds
the problem's unknown coefficients as parameters and applies the optional
output transform (hard constraints).
"""

from __future__ import annotations

import math
import weakref
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from .errors import OptionError, ProblemError
from .points import Points

ACTIVATIONS = {"tanh": nn.Tanh, "sin": None, "gelu": nn.GELU, "silu": nn.SiLU, "relu": nn.ReLU}
ARCHITECTURES = ("mlp", "fourier", "modified")


class Sine(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise OptionError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return Sine() if name == "sin" else ACTIVATIONS[name]()


def dense(n_in: int, n_out: int) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    nn.init.xavier_normal_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class MLP(nn.Module):
    """``depth`` hidden layers of ``width``; with ``dropout`` p > 0, dropout after each activation
    (active while training with Adam; off for L-BFGS, evaluation and pictures)."""

    def __init__(self, n_in: int, n_out: int, width: int, depth: int, act: str, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        sizes = [n_in] + [width] * depth
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [dense(a, b), activation(act)] + ([nn.Dropout(dropout)] if dropout else [])
        layers.append(dense(sizes[-1], n_out))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class FourierFeatures(nn.Module):
    """[cos(2π x B), sin(2π x B)] with a fixed Gaussian matrix B (d × features/2)."""

    def __init__(self, n_in: int, features: int, sigma: float):
        super().__init__()
        self.register_buffer("B", torch.randn(n_in, features // 2) * sigma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        proj = 2 * math.pi * x @ self.B
        return torch.cat([torch.cos(proj), torch.sin(proj)], dim=1)


class ModifiedMLP(nn.Module):
    """Wang, Teng & Perdikaris 2021, eq. (43): gates mixing two input encoders."""

    def __init__(self, n_in: int, n_out: int, width: int, depth: int, act: str):
        super().__init__()
        self.encode_u, self.encode_v = dense(n_in, width), dense(n_in, width)
        self.hidden = nn.ModuleList([dense(n_in, width)] + [dense(width, width) for _ in range(depth - 1)])
        self.out = dense(width, n_out)
        self.act = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, v = self.act(self.encode_u(x)), self.act(self.encode_v(x))
        h = x
        for layer in self.hidden:
            z = self.act(layer(h))
            h = (1 - z) * u + z * v
        return self.out(h)


class FactorizedLinear(nn.Linear):
    """A dense layer with W = diag(exp(s)) V (random weight factorisation): ``scale`` s (out,), ``direction``
    V (out × in), ``bias``; made from a layer whose function it keeps (V = W / exp(s))."""

    def __init__(self, layer: nn.Linear, mean: float, std: float):
        super().__init__(layer.in_features, layer.out_features, device=layer.weight.device, dtype=layer.weight.dtype)
        del self.weight  # computed from scale and direction (the property below)
        s = mean + std * torch.randn(layer.out_features, dtype=layer.weight.dtype, device=layer.weight.device)
        self.scale = nn.Parameter(s)
        self.direction = nn.Parameter(layer.weight.detach() / torch.exp(s)[:, None])
        self.bias = nn.Parameter(layer.bias.detach().clone())

    @property
    def weight(self) -> torch.Tensor:
        return torch.exp(self.scale)[:, None] * self.direction


def factorize(network: nn.Module, mean: float, std: float) -> nn.Module:
    """``network`` with every ``nn.Linear`` replaced by a :class:`FactorizedLinear` of the same function."""
    for name, child in network.named_children():
        if type(child) is nn.Linear:
            setattr(network, name, FactorizedLinear(child, mean, std))
        else:
            factorize(child, mean, std)
    return network


def parse_rwf(spec: str) -> tuple[float, float] | None:
    """``--rwf``: "" (off), ``on`` (μ = 1, σ = 0.1) or ``mean=μ,std=σ`` (either may be left out)."""
    if not spec:
        return None
    values = {"mean": 1.0, "std": 0.1}
    for item in filter(None, (x.strip() for x in ("" if spec == "on" else spec).split(","))):
        key, eq, value = item.partition("=")
        try:
            if not eq or key not in values:
                raise ValueError
            values[key] = float(value)
        except ValueError:
            raise OptionError(f"--rwf {spec!r}: {item!r}; give on, or mean=M,std=S (e.g. --rwf mean=1,std=0.1)") from None
    if not (math.isfinite(values["mean"]) and math.isfinite(values["std"]) and values["std"] >= 0):
        raise OptionError(f"--rwf {spec!r}: need a finite mean and a finite std >= 0")
    return values["mean"], values["std"]


def build_network(n_in: int, n_out: int, arch: str = "mlp", width: int = 64, depth: int = 4,
                  act: str = "tanh", fourier_features: int = 64, fourier_sigma: float = 1.0,
                  dropout: float = 0.0, rwf: str = "") -> nn.Module:
    """The network named ``arch``; options as on the CLI (``--width``, ``--depth``, ``--dropout``,
    ``--fourier-scale``, ``--rwf``)."""
    network = plain_network(n_in, n_out, arch, width, depth, act, fourier_features, fourier_sigma, dropout)
    factors = parse_rwf(rwf)
    return network if factors is None else factorize(network, *factors)


def plain_network(n_in: int, n_out: int, arch: str, width: int, depth: int, act: str, fourier_features: int,
                  fourier_sigma: float, dropout: float) -> nn.Module:
    if width < 1 or depth < 1:
        raise OptionError(f"network width and depth must be >= 1, got width={width}, depth={depth}")
    if not 0.0 <= dropout < 1.0:
        raise OptionError(f"--dropout {dropout}: need 0 <= dropout < 1")
    if arch == "mlp":
        return MLP(n_in, n_out, width, depth, act, dropout)
    if arch == "modified":
        if dropout:
            raise OptionError("--dropout: available for --arch mlp and fourier, not modified")
        return ModifiedMLP(n_in, n_out, width, depth, act)
    if arch == "fourier":
        if fourier_features < 2:
            raise OptionError(f"fourier_features must be >= 2, got {fourier_features}")
        if not (math.isfinite(fourier_sigma) and fourier_sigma > 0):
            raise OptionError(f"--fourier-scale {fourier_sigma}: need a positive number")
        return nn.Sequential(FourierFeatures(n_in, fourier_features, fourier_sigma),
                             MLP(2 * (fourier_features // 2), n_out, width, depth, act, dropout))
    raise OptionError(f"unknown network {arch!r}; choose one of {', '.join(ARCHITECTURES)}")


class Windowed(nn.Module):
    """One network per time window (``--time-windows N``): a point goes to the network of its window, which
    sees the time feature rescaled to [−1, 1] over that window.

    The time column ``column`` of the features (already in [−1, 1] over the whole interval) is cut into
    ``N`` equal windows; window i covers [e_i, e_{i+1}) (the last one includes its end) and its network sees
    ẑ = (z − m_i) / h_i, m_i and h_i the window's centre and half-width.  While a window trains
    (``active`` = i) every point goes to its network; otherwise (evaluation, pictures) each point is routed.
    Why one network per window rather than one network with a window input: each window's network starts
    from the previous one's weights and only has to represent its own slice, and a window already trained
    is never disturbed (Krishnapriyan et al. 2021, "Characterizing possible failure modes in PINNs",
    sequence-to-sequence learning; the time-marching of jaxpi, Wang et al. 2023, "An expert's guide")."""

    def __init__(self, nets: list[nn.Module], column: int):
        super().__init__()
        self.nets = nn.ModuleList(nets)
        self.column = column
        self.active: int | None = None

    @property
    def current(self) -> nn.Module:
        """The network of the window in training (the first one before training starts)."""
        return self.nets[self.active or 0]

    def local(self, z: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The (scale, shift) per feature column that maps window ``i``'s time feature to [−1, 1]."""
        n = len(self.nets)
        scale = torch.ones(z.shape[1], dtype=z.dtype, device=z.device)
        shift = torch.zeros_like(scale)
        scale[self.column] = n
        shift[self.column] = n - 1 - 2 * i  # z ∈ [−1 + 2i/n, −1 + 2(i+1)/n] → [−1, 1]
        return scale, shift

    def window_of(self, z: torch.Tensor) -> torch.Tensor:
        n = len(self.nets)
        return ((z[:, self.column] + 1) * n / 2).floor().clamp(0, n - 1).long()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.active is not None:
            scale, shift = self.local(z, self.active)
            return self.nets[self.active](z * scale + shift)
        index = self.window_of(z)
        parts = []
        for i in range(len(self.nets)):
            rows = (index == i).nonzero()[:, 0]
            if len(rows):
                scale, shift = self.local(z, i)
                parts.append((rows, self.nets[i](z[rows] * scale + shift)))
        out = parts[0][1].new_zeros(z.shape[0], parts[0][1].shape[1])
        for rows, value in parts:
            out = out.index_copy(0, rows, value)
        return out


@contextmanager
def routed(network: nn.Module):
    """Within: a :class:`Windowed` network routes every point to its window's network (evaluation, pictures),
    whichever window is in training; other networks are unchanged."""
    if not isinstance(network, Windowed):
        yield network
        return
    active, network.active = network.active, None
    try:
        yield network
    finally:
        network.active = active


def active_network(network: nn.Module) -> nn.Module:
    """The network training changes: the window in training of a :class:`Windowed`, else ``network``."""
    return network.current if isinstance(network, Windowed) else network


def time_feature(problem) -> int:
    """The column of ``problem``'s time coordinate among the model's features (a periodic coordinate before it
    takes two columns)."""
    names, periodic = problem.domain.names, problem.domain.periodic
    i = names.index(problem.time)
    return sum(2 if n in periodic else 1 for n in names[:i])


def network_for(problem, train: dict) -> nn.Module:
    """The network a run's training settings (``config.json``'s ``train``) build for ``problem``."""
    def one() -> nn.Module:
        return build_network(problem.domain.features, len(problem.outputs), train["arch"], train["width"],
                             train["depth"], train["activation"], fourier_sigma=train.get("fourier_scale", 1.0),
                             dropout=train.get("dropout", 0.0), rwf=train.get("rwf", ""))

    windows = train.get("time_windows", 1)
    return one() if windows <= 1 else Windowed([one() for _ in range(windows)], time_feature(problem))


class PINNModel(nn.Module):
    """Coordinates (N, d) → outputs (N, m): scale box to [−1, 1] (periodic coordinates to their
    cos/sin pair), network, transform."""

    def __init__(self, problem, network: nn.Module):
        super().__init__()
        self.problem = problem
        low = torch.as_tensor(np.asarray(problem.domain.low), dtype=torch.float32)
        high = torch.as_tensor(np.asarray(problem.domain.high), dtype=torch.float32)
        self.register_buffer("center", (high + low) / 2)
        self.register_buffer("half_width", (high - low) / 2)
        self.periodic = [problem.domain.names.index(n) for n in problem.domain.periodic]
        # id of a batch tensor -> (a weak reference to it, its normals); tensors compare elementwise, so no weak dict
        self._normals: dict[int, tuple[weakref.ref, torch.Tensor]] = {}
        self.network = network
        self.unknowns = nn.ParameterDict(
            {k: nn.Parameter(torch.tensor(float(v))) for k, v in problem.unknowns.items()}
        )

    def unknown_values(self) -> dict[str, torch.Tensor]:
        """The unknowns by name.  A comprehension, not ``dict(self.unknowns)``: under ``torch.compile`` of
        ``functional_call`` dynamo iterates that ParameterDict as key-value pairs and fails on the names (the
        one-graph gradient of a problem with unknowns then ran eagerly)."""
        return {name: value for name, value in self.unknowns.items()}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Coordinates scaled to [−1, 1]; a periodic coordinate x̂ becomes (cos πx̂, sin πx̂)."""
        z = (x - self.center) / self.half_width
        if not self.periodic:
            return z
        columns = []
        for i in range(z.shape[1]):
            zi = z[:, i: i + 1]
            columns += [torch.cos(math.pi * zi), torch.sin(math.pi * zi)] if i in self.periodic else [zi]
        return torch.cat(columns, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.network(self.features(x))
        if self.problem.transform is not None:
            p = Points(x, self.problem.domain.names, [], None, self.unknown_values(), where="transform")
            u = self.problem.transform(p, u)
            want = (x.shape[0], len(self.problem.outputs))
            if not isinstance(u, torch.Tensor) or tuple(u.shape) != want:
                got = tuple(u.shape) if isinstance(u, torch.Tensor) else type(u).__name__
                raise ProblemError(f"transform: returned {got}; need shape {want}, one row per point and one "
                                   f"column per output ({', '.join(self.problem.outputs)})")
        return u

    def linear_layers(self) -> list[nn.Linear]:
        """The dense layers training changes (of a time-windowed network: the window in training's)."""
        return [m for m in active_network(self.network).modules() if isinstance(m, nn.Linear)]

    def output_layer(self) -> list[nn.Parameter]:
        """The trainable parameters of the last linear layer (what ``params=last`` balancers differentiate)."""
        last = self.linear_layers()[-1]
        return [p for p in last.parameters() if p.requires_grad]

    def weight_matrices(self) -> list[nn.Parameter]:
        """The trainable weight matrices of the linear layers: no biases, no unknowns (``params=weights``, what
        the authors' LRA code differentiates)."""
        matrices = []
        for m in active_network(self.network).modules():
            if isinstance(m, FactorizedLinear):  # W = diag(exp(s)) V: its parameters are s and V
                matrices += [p for p in (m.scale, m.direction) if p.requires_grad]
            elif isinstance(m, nn.Linear) and m.weight.requires_grad:
                matrices.append(m.weight)
        return matrices

    def points(self, x: torch.Tensor, where: str, on_boundary: bool = False,
               normals: torch.Tensor | None = None) -> Points:
        """The ``p`` of a term evaluated at ``x``; on boundary points ``p.nx`` and ``p.u_n`` are available (from
        ``normals`` when given: a compiled loss takes them as an input rather than look them up)."""
        supply = (lambda: normals) if normals is not None else (lambda: self.normals_at(x)) if on_boundary else None
        return Points(x, self.problem.domain.names, self.problem.outputs, self, self.unknown_values(), where, supply)

    def normals_at(self, x: torch.Tensor) -> torch.Tensor:
        """The domain's outward unit normal at the boundary points ``x``, computed once per batch tensor."""
        held = self._normals.get(id(x))
        if held is None or held[0]() is not x:
            self._normals = {k: v for k, v in self._normals.items() if v[0]() is not None}  # batches redrawn since
            n = self.problem.domain.normal(x.detach().cpu().double().numpy())
            held = self._normals[id(x)] = (weakref.ref(x), torch.as_tensor(n, dtype=x.dtype, device=x.device))
        return held[1]
