"""The volume branch: trilinear splat/read-back, gradients against finite differences, mirror symmetry, reach."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import trimesh

from aero_opt.core.errors import AeroOptError
from surrogate.graph import build_graph, mirror_y
from surrogate.splinecnn import PressureSplineCNN, SurrogateConfig
from surrogate.volume import GRID_LO, GRID_NODES, SPACING, VolumeUNet, gather, splat, trilinear

HI = tuple(GRID_LO[a] + SPACING * (GRID_NODES[a] - 1) for a in range(3))
N_NODES = GRID_NODES[0] * GRID_NODES[1] * GRID_NODES[2]


def _inside(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    lo, hi = torch.tensor(GRID_LO).double(), torch.tensor(HI).double()
    return lo + (hi - lo) * torch.rand(n, 3, generator=g, dtype=torch.float64)


def _node_positions() -> torch.Tensor:
    axes = [GRID_LO[a] + SPACING * torch.arange(GRID_NODES[a], dtype=torch.float64) for a in range(3)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)  # flat node order


def test_read_back_is_exact_for_linear_fields_and_clamps_outside() -> None:
    p = _inside(300, 0)
    idx, w = trilinear(p)
    assert (w >= 0).all() and torch.allclose(w.sum(1), torch.ones(300, dtype=w.dtype))
    field = _node_positions() @ torch.tensor([0.3, -1.2, 2.0]).double() + 0.7
    assert torch.allclose(gather(field.unsqueeze(1), idx, w)[:, 0], p @ torch.tensor([0.3, -1.2, 2.0]).double() + 0.7)
    outside = torch.tensor([[9.0, -3.0, 9.0]]).double()  # beyond x, below y = 0, above the top
    nearest = torch.tensor([[HI[0], GRID_LO[1], HI[2]]]).double()
    i_o, w_o = trilinear(outside)
    assert torch.allclose(gather(field.unsqueeze(1), i_o, w_o), gather(field.unsqueeze(1), *trilinear(nearest)))


def test_splat_keeps_the_total_and_the_centre_of_mass() -> None:
    p = _inside(200, 1)
    mass = torch.rand(200, 1, dtype=torch.float64)
    idx, w = trilinear(p)
    grid = splat(mass, idx, w, N_NODES)
    assert torch.allclose(grid.sum(), mass.sum())
    assert torch.allclose((grid * _node_positions()).sum(0), (mass * p).sum(0))  # trilinear keeps first moments


def test_volume_features_have_the_finite_difference_gradient() -> None:
    torch.manual_seed(0)
    net = VolumeUNet((3, 4), 2).double()
    p = _inside(12, 2).requires_grad_(True)
    n = torch.nn.functional.normalize(torch.randn(12, 3, dtype=torch.float64), dim=1).requires_grad_(True)
    area = torch.rand(12, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(net, (p, n, area), eps=1e-6, atol=1e-6)


def _car_like() -> tuple[torch.Tensor, torch.Tensor]:
    m = trimesh.creation.icosphere(subdivisions=3)
    m.apply_scale([2.0, 0.8, 0.6])
    m.apply_translation([2.0, 0.13, 0.8])  # off the symmetry plane: asymmetric on purpose
    v = torch.as_tensor(m.vertices, dtype=torch.float64)
    v[:, 1] += 0.05 * torch.sin(7.0 * v[:, 0])
    return v, torch.as_tensor(m.faces)


VOLUME = SurrogateConfig(width=8, blocks=2, global_context=False, volume_grid=(3, 3, 3, 3), volume_features=3)


def test_a_volume_model_predicts_the_mirror_image_mirrored_and_ignores_vertex_order() -> None:
    torch.manual_seed(1)
    v, f = _car_like()
    model = PressureSplineCNN(VOLUME).double()
    y = model(model.graph(v, f, 0.5))
    vm, fm = mirror_y(v, f)
    expected = y.clone()
    expected[:, 2] = -expected[:, 2]
    assert torch.allclose(model(model.graph(vm, fm, 0.5)), expected, atol=1e-9)
    perm = torch.randperm(len(v))
    assert torch.allclose(model(model.graph(v[perm], torch.argsort(perm)[f], 0.5)), y[perm], atol=1e-9)


def test_the_volume_branch_reaches_across_the_car_and_is_differentiable() -> None:
    """Without the global term the small model's SplineConv layers see 7 rings; the volume branch (four levels:
    the coarsest cell 1.1 m) carries a dent at the back to the front, and gradients reach the vertices."""
    torch.manual_seed(2)
    v, f = _car_like()
    front, back = int(v[:, 0].argmax()), int(v[:, 0].argmin())
    v2 = v.clone()
    v2[back, 0] += 0.1
    for cfg, reaches in ((VOLUME, True), (SurrogateConfig(width=8, blocks=2, global_context=False), False)):
        model = PressureSplineCNN(cfg).double()
        y, y2 = model(build_graph(v, f, 0.5, True)), model(build_graph(v2, f, 0.5, True))
        assert bool((y[front] - y2[front]).abs().max() > 0) == reaches  # out of reach: exactly the same
    vg = v.clone().requires_grad_(True)
    model = PressureSplineCNN(VOLUME).double()
    model(model.graph(vg, f, 0.5))[:, 0].sum().backward()
    assert vg.grad is not None and torch.isfinite(vg.grad).all()


@pytest.mark.parametrize("kwargs,key", [({"volume_grid": (4, 4), "mirror_canonical": False}, "mirror_canonical"),
                                        ({"volume_grid": (4, 4, 4, 4, 4)}, "volume_grid"),
                                        ({"volume_grid": (4, 0)}, "volume_grid"),
                                        ({"volume_grid": (4,), "volume_features": 0}, "volume_features")])
def test_a_bad_volume_configuration_names_the_key(kwargs: dict, key: str) -> None:
    with pytest.raises(AeroOptError, match=f"surrogate.{key}"):
        PressureSplineCNN(SurrogateConfig(**kwargs))


def test_a_volume_model_saves_and_loads_to_the_same_predictions(tmp_path: Path) -> None:
    from surrogate.model import Surrogate

    torch.manual_seed(3)
    v, f = _car_like()
    v = v.float()
    sur = Surrogate(PressureSplineCNN(VOLUME), 0.5)
    sur.save(tmp_path / "model.pt")
    back = Surrogate.load(tmp_path)
    assert back.model.cfg == VOLUME and back.model.volume is not None
    assert torch.equal(back.coefficients(v, f), sur.coefficients(v, f))


@pytest.mark.parametrize("added", [{"volume_grid": (3, 3, 3, 3), "volume_features": 3},
                                   {"coarse_grid": (4, 2)},
                                   {"volume_grid": (3, 3), "coarse_grid": (4, 2)}])
def test_a_trained_model_extended_by_a_branch_computes_the_same_function(added: dict) -> None:
    from dataclasses import replace

    from surrogate.splinecnn import extend_state

    torch.manual_seed(4)
    v, f = _car_like()
    old_cfg = SurrogateConfig(width=8, blocks=2)
    old = PressureSplineCNN(old_cfg).double()
    with torch.no_grad():
        for p in old.parameters():
            p.normal_(0.0, 0.3)  # a "trained" model: no zero biases or context terms
    new_cfg = replace(old_cfg, **added)
    new = PressureSplineCNN(new_cfg).double()
    new.load_state_dict(extend_state(old.state_dict(), old_cfg, new_cfg))
    assert torch.allclose(new(new.graph(v, f, 0.5)), old(old.graph(v, f, 0.5)), atol=1e-12)
    if "volume_grid" in added:  # the branch's own weights are random, and its outputs can be trained to matter
        assert new.volume is not None and any(p.abs().sum() > 0 for p in new.volume.parameters())
    with pytest.raises(AeroOptError, match="cannot be extended"):
        extend_state(old.state_dict(), old_cfg, replace(new_cfg, kernel_size=2))
