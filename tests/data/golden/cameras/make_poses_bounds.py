"""Regenerates poses_bounds.npy of the golden rig from hand-written LLFF rows (run once).

Each row is the row-major 3x5 [down | right | back | centre | (H, W, focal)] then (near, far).
"""

from pathlib import Path

import numpy as np

ROWS = [
    # cam 0: identity at the origin. down=(0,1,0) right=(1,0,0) back=(0,0,-1)
    [[0, 1, 0, 0, 96], [1, 0, 0, 0, 128], [0, 0, -1, 0, 100], [0.5, 10.0]],
    # cam 1: R_y(+90) at (1,0,0). down=(0,1,0) right=(0,0,-1) back=(-1,0,0)
    [[0, 0, -1, 1, 96], [1, 0, 0, 0, 128], [0, -1, 0, 0, 100], [0.75, 12.0]],
    # cam 2: R_x(+90) at (0,2,-1). down=(0,0,1) right=(1,0,0) back=(0,1,0)
    [[0, 1, 0, 0, 96], [0, 0, 1, 2, 128], [1, 0, 0, -1, 100], [1.0, 20.0]],
]

if __name__ == "__main__":
    arr = np.array([[v for part in r for v in part] for r in ROWS], dtype=np.float64)
    assert arr.shape == (3, 17)
    np.save(Path(__file__).with_name("poses_bounds.npy"), arr)
