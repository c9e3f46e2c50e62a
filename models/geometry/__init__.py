"""Camera geometry (torch only): OpenCV cameras, ``c2w`` extrinsics, pixel centres at ``+0.5``.

See ``cameras`` for the full convention.
"""

from .alignment import apply_sim3, apply_sim3_to_poses, umeyama
from .cameras import (
    K_from_fov,
    c2w_to_w2c,
    camera_centers,
    invert_se3,
    is_rotation,
    look_at,
    make_K,
    make_se3,
    opencv_to_opengl,
    opengl_to_opencv,
    relative_pose,
    scale_K,
    w2c_to_c2w,
)
from .interpolation import interpolate_poses, slerp
from .metrics import ate_rmse, camera_precision, rotation_error_deg
from .plucker import plucker_rays
from .projection import (
    camera_directions,
    camera_rays,
    depth_to_ray_distance,
    pixel_grid,
    project,
    ray_distance_to_depth,
    unproject,
)
from .rotations import (
    axis_angle_to_matrix,
    matrix_to_quaternion,
    quaternion_to_matrix,
    random_rotation,
    rotation_angle_deg,
)

__all__ = [
    "K_from_fov",
    "apply_sim3",
    "apply_sim3_to_poses",
    "ate_rmse",
    "axis_angle_to_matrix",
    "c2w_to_w2c",
    "camera_centers",
    "camera_directions",
    "camera_precision",
    "camera_rays",
    "depth_to_ray_distance",
    "interpolate_poses",
    "invert_se3",
    "is_rotation",
    "look_at",
    "make_K",
    "make_se3",
    "matrix_to_quaternion",
    "opencv_to_opengl",
    "opengl_to_opencv",
    "pixel_grid",
    "plucker_rays",
    "project",
    "quaternion_to_matrix",
    "random_rotation",
    "ray_distance_to_depth",
    "relative_pose",
    "rotation_angle_deg",
    "rotation_error_deg",
    "scale_K",
    "slerp",
    "umeyama",
    "unproject",
    "w2c_to_c2w",
]
