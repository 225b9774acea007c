"""Flow math: log-dets against autograd Jacobians, exact inverses, densities that integrate to 1, the
u-hat constraint, the energies' normalizers, and the bundled planar flows' KLs (honest and consistent)."""
from __future__ import annotations

import math

import pytest
import torch

from engine import api, checkpoint
from engine.data import energies2d
from engine.models import planar, realnvp2d
from engine.nn.flows import AffineCoupling, Flow, PlanarFlow, PlanarLayer, planar_u_hat, root_monotone

D64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def planar_layer(seed: int = 0) -> PlanarLayer:
    """A planar layer with O(1) parameters (far from the identity), float64."""
    layer = PlanarLayer(2, init_scale=1.0, generator=gen(seed)).double()
    with torch.no_grad():
        layer.b.fill_(0.2)
    return layer


def coupling(mask=(1.0, 0.0), seed: int = 0) -> AffineCoupling:
    """An affine coupling with random (not zero) output weights, so s and t are far from 0."""
    torch.manual_seed(seed)
    layer = AffineCoupling(torch.tensor(mask), hidden=16, zero_init=False).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=gen(seed + 100), dtype=D64))
        layer.scale.fill_(1.5)
    return layer


def planar_stack(k: int = 6, seed: int = 0, scale: float = 1.0) -> PlanarFlow:
    flow = PlanarFlow(k, 2, init_scale=scale, generator=gen(seed)).double()
    with torch.no_grad():
        flow.b.copy_(torch.randn(k, generator=gen(seed + 1), dtype=D64))
    return flow


def realnvp_flow(seed: int = 0) -> Flow:
    return Flow([coupling((1.0, 0.0), seed), coupling((0.0, 1.0), seed + 1), coupling((1.0, 0.0), seed + 2)], 2)


MAPS = {"planar layer": planar_layer, "coupling (x1 kept)": coupling,
        "coupling (x2 kept)": lambda: coupling((0.0, 1.0), 3), "planar flow K=6": planar_stack,
        "coupling flow": realnvp_flow}


# --- log-determinants --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MAPS)
def test_logdet_matches_autograd_jacobian(name):
    f = MAPS[name]()
    z = 0.7 * torch.randn(6, 2, generator=gen(1), dtype=D64)
    x, logdet = f(z)
    z_back, inv_logdet = f.inverse(x)
    far_from_identity = 0.0
    for i in range(len(z)):
        jac = torch.autograd.functional.jacobian(lambda v: f(v[None])[0][0], z[i])
        far_from_identity = max(far_from_identity, (jac - torch.eye(2, dtype=D64)).abs().max().item())
        assert logdet[i].item() == pytest.approx(torch.linalg.slogdet(jac)[1].item(), abs=1e-10)
        jac_inv = torch.autograd.functional.jacobian(lambda v: f.inverse(v[None])[0][0], x[i])
        assert inv_logdet[i].item() == pytest.approx(torch.linalg.slogdet(jac_inv)[1].item(), abs=1e-8)
    assert far_from_identity > 0.3, "parameters too close to the identity for a meaningful test"


def test_gradcheck_planar_layer_and_coupling():
    layer = planar_layer(2)
    z = torch.randn(4, 2, generator=gen(3), dtype=D64, requires_grad=True)
    u, w, b = (p.detach().clone().requires_grad_(True) for p in (layer.u, layer.w, layer.b))
    from engine.nn.flows import planar_forward
    assert torch.autograd.gradcheck(lambda z, u, w, b: planar_forward(z, planar_u_hat(u, w), w, b), (z, u, w, b))
    c = coupling(seed=4)
    assert torch.autograd.gradcheck(lambda z: c(z), (z,))
    params = [p for p in c.parameters()]
    assert torch.autograd.gradcheck(lambda *ps: torch.func.functional_call(
        c, dict(zip([n for n, _ in c.named_parameters()], ps)), (z,)), tuple(p.detach().requires_grad_(True) for p in params))


# --- inverses ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MAPS)
def test_inverse_is_exact_in_float64_and_float32(name):
    f = MAPS[name]()
    z = 2.0 * torch.randn(500, 2, generator=gen(5), dtype=D64)
    with torch.no_grad():
        assert (f.inverse(f(z)[0])[0] - z).abs().max() < 1e-10
        f32 = f.float()
        assert (f32.inverse(f32(z.float())[0])[0] - z.float()).abs().max() < 1e-4


def test_planar_inverse_near_the_fold():
    """w^T u_hat close to -1: the layer almost folds the plane; the safeguarded root find still inverts it."""
    layer = PlanarLayer(2).double()
    with torch.no_grad():
        layer.w.copy_(torch.tensor([3.0, -1.0]))
        layer.u.copy_(-8.0 * layer.w / (layer.w @ layer.w))  # w^T u = -8 -> w^T u_hat = -1 + softplus(-8)
        layer.b.fill_(0.3)
    assert -1 < (layer.w @ layer.u_hat()).item() < -0.999
    z = 3 * torch.randn(2000, 2, generator=gen(6), dtype=D64)
    with torch.no_grad():
        assert (layer.inverse(layer(z)[0])[0] - z).abs().max() < 1e-10


def test_root_monotone_where_plain_newton_oscillates():
    """atan(t) = c from t = 0: Newton alone diverges for |c| large enough; the bracket keeps it converging."""
    c = torch.tensor([1.5, -1.5, 0.5], dtype=D64)
    t = root_monotone(lambda t, i: (torch.atan(t) - c[i], 1 / (1 + t * t)),
                      torch.full_like(c, -100.0), torch.full_like(c, 100.0))
    assert torch.allclose(torch.atan(t), c, atol=1e-12)


# --- densities ---------------------------------------------------------------------------------------
def grid_mass(flow, limit: float = 10.0, n: int = 801) -> float:
    r = torch.linspace(-limit, limit, n, dtype=D64)
    xx = torch.cartesian_prod(r, r)
    with torch.no_grad():
        return (flow.log_prob(xx).exp().sum() * (r[1] - r[0]) ** 2).item()


@pytest.mark.parametrize("name, limit", [("planar flow K=6", 8.0), ("coupling flow", 20.0)])
def test_density_integrates_to_one(name, limit):
    assert grid_mass(MAPS[name](), limit) == pytest.approx(1.0, abs=0.01)  # the coupling flow has wide tails


def test_u_hat_with_the_plain_norm_breaks_the_constraint():
    """With ||w|| instead of ||w||^2 in u_hat, w^T u_hat can fall below -1 (the map folds the plane and the
    change-of-variables density is wrong); with the squared norm it cannot."""
    w, u = torch.tensor([0.5, 0.0], dtype=D64), torch.tensor([-4.0, 0.0], dtype=D64)
    wu = w @ u
    wrong = u + (torch.nn.functional.softplus(wu) - 1 - wu) * w / w.norm()
    assert (w @ wrong).item() < -1
    assert (w @ planar_u_hat(u, w)).item() > -1


def test_u_hat_keeps_w_dot_u_above_minus_one():
    g = gen(7)
    u = torch.randn(1000, 2, generator=g, dtype=D64) * torch.logspace(-2, 2, 1000, dtype=D64)[:, None]
    w = torch.randn(1000, 2, generator=g, dtype=D64) * torch.logspace(2, -2, 1000, dtype=D64)[:, None]
    wu_hat = (w * planar_u_hat(u, w)).sum(-1)
    assert (wu_hat > -1).all()
    expected = torch.nn.functional.softplus((w * u).sum(-1)) - 1  # m(w^T u), exactly
    assert torch.allclose(wu_hat, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", ["planar flow K=6", "coupling flow"])
def test_sampling_path_log_q_equals_inverse_path_density(name):
    flow = MAPS[name]()
    with torch.no_grad():
        x, log_q = flow.sample_with_log_prob(300, generator=gen(8), dtype=D64)
        assert torch.allclose(log_q, flow.log_prob(x), atol=1e-9)
        points, logdets = flow.trace(torch.randn(50, 2, generator=gen(9), dtype=D64))
    assert len(points) == len(logdets) == len(flow.steps()) + 1
    assert torch.allclose(flow(points[0])[0], points[-1]) and torch.allclose(flow(points[0])[1], logdets[-1])


def test_realnvp_model_density_and_encode():
    model = api.build("realnvp2d", couplings=4, hidden=16)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen(10)))
        x = realnvp2d.draw("rings", 200, generator=gen(11))
        assert torch.allclose(model.decode(model.encode(x)), x, atol=1e-4)
    mass = (realnvp2d.density_grid(model, 401, 8.0)["log_p"].exp().sum() * (16 / 400) ** 2).item()
    assert mass == pytest.approx(1.0, abs=0.01)


# --- the energies ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", energies2d.NAMES)
def test_log_z_on_a_fine_grid(name):
    expected = {"u1": 1.878, "u2": 2.143, "u3": 2.703, "u4": 2.772}[name]  # the values
    value = energies2d.log_z(name)
    assert value == pytest.approx(expected, abs=0.002)
    assert energies2d.LOG_Z[name] == pytest.approx(value, abs=1e-4)
    assert energies2d.log_z(name, 1601, 8.0) == pytest.approx(value, abs=1e-4)  # converged in grid and extent


def test_energies_match_the_paper_and_the_wall():
    z = torch.tensor([[0.5, 0.7], [-1.2, 0.1], [4.0, 0.0]], dtype=D64)
    z1, z2 = z[:, 0], z[:, 1]
    w1 = torch.sin(2 * math.pi * z1 / 4)
    u2 = 0.5 * ((z2 - w1) / 0.4) ** 2
    assert torch.allclose(energies2d.energy("u2", z), u2)  # |z1| <= 4: the wall adds nothing
    far = torch.tensor([[4.5, 30.0], [-5.0, -40.0]], dtype=D64)
    for name in energies2d.NAMES:
        u = energies2d.energy(name, far)
        assert torch.isfinite(u).all()  # logsumexp: no log(0) far from the wave
    assert energies2d.wall(far).tolist() == pytest.approx([0.5 * (0.5 / 0.2) ** 2, 0.5 * (1 / 0.2) ** 2])


def test_annealing_schedule():
    model = api.build("planar", anneal_steps=100)
    assert model.beta() == pytest.approx(0.01)
    model.steps.fill_(50)
    assert model.beta() == pytest.approx(0.51)
    model.steps.fill_(500)
    assert model.beta() == 1.0


# --- the bundled planar flows ------------------------------------------------------------------------
BUNDLED = [f"planar-{t}-k{k}" for t in energies2d.NAMES for k in (2, 8, 32)]


@pytest.mark.parametrize("name", ["planar-u1-k8", "planar-u3-k32"])
def test_bundled_kl_is_honest_and_grid_agrees(name):
    model = checkpoint.load(api.resolve(name))
    mc = planar.free_energy_estimate(model, 40_000, seed=3)
    assert mc["free_energy"] + mc["log_z"] >= -3 * mc["stderr"]  # F >= -log Z, up to Monte-Carlo error
    grid = planar.grid_kl(model, 601, 8.0)
    assert grid["mass"] == pytest.approx(1.0, abs=0.01)
    assert abs(grid["kl"] - mc["kl"]) < 0.05


def test_bundled_cards_state_the_measured_kl():
    for name in BUNDLED:
        folder = api.resolve(name)
        metrics = checkpoint.read_metrics(folder)["reverse_kl"]
        assert f"{metrics['kl']:.3f}" in (folder / "README.md").read_text()
        assert abs(metrics["grid_kl"] - metrics["kl"]) < 0.05
