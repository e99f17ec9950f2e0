"""Poisson2d-C of PINNacle (Hao et al. 2024): class Poisson2D_Classic in src/pde/poisson.py.

    u_xx + u_yy = 0       on the square [-1/2, 1/2]^2 less four disks of radius 0.1
                          centred at (+-0.3, +-0.3)
    u = 1 on the sides of the square,   u = 0 on the four circles

Reference: PINNacle's COMSOL solution ref/poisson1_cg_data.dat (x, y, u at
1246 mesh nodes, the circles' nodes among them), read when the file is loaded.
Published L2RE (PINNacle's main table): PINN not found in a source we could
read; best PINN-NTK 1.23e-2 (pinnbal/bench/pinnacle_published.py).
Points: PINNacle's defaults are 8192 interior and 2048 boundary points;
here 8192 interior, 1024 on the square and 1024 on the circles.
"""
import pinnbal as pb

FILE = "poisson1_cg_data.dat"
R = 0.1
holes = (pb.Disk(x=0.3, y=0.3, radius=R) | pb.Disk(x=-0.3, y=0.3, radius=R)
         | pb.Disk(x=0.3, y=-0.3, radius=R) | pb.Disk(x=-0.3, y=-0.3, radius=R))


def laplace(p):
    return p.u_xx + p.u_yy


def comsol_reference():
    path = pb.find_data(FILE, env="PINNBAL_PINNACLE_DIR",
                        source="the ref/ folder of a PINNacle checkout (github.com/i207M/PINNacle)")
    table = pb.read_comsol(path)
    return pb.ScatteredReference(points=table[:, :2], values=table[:, 2:3])


problem = pb.Problem(
    name="poisson2d_c",
    domain=pb.Box(x=(-0.5, 0.5), y=(-0.5, 0.5)) - holes,
    outputs=["u"],
    terms=[
        pb.Residual("pde", laplace, points=8192),
        pb.Boundary("square", on=pb.Face("x", "y"), value=1.0, points=1024),
        pb.Boundary("circles", on=holes, value=0.0, points=1024),
    ],
    reference=comsol_reference(),
)
