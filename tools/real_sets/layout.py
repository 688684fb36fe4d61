"""Label layouts and how imagery fills them.

A tile's labels are a warped Voronoi partition: a few seeds, each with a
class, and every pixel takes the class of its nearest seed after its
position is displaced by smooth random noise (irregular, natural-looking
borders). The labels come from this layout alone, never from the imagery's
colours. Each region is then filled with a texture of its class: a random
window of one of the class's images, mirrored where the window runs past the
image's edge (no seams, any image size), at a random quarter turn.

This is how texture-segmentation benchmarks such as the Prague texture
segmentation data generator build mosaics of real textures.
"""
import numpy as np


def smooth_noise(rng, size, cells):
    """A smooth random field in [-1, 1]: bilinear interpolation of a coarse
    grid of (cells + 1) x (cells + 1) uniform values."""
    grid = rng.uniform(-1.0, 1.0, (cells + 1, cells + 1))
    t = np.linspace(0.0, cells, size, endpoint=False)
    i = t.astype(int)
    f = t - i
    rows = grid[i] * (1 - f)[:, None] + grid[i + 1] * f[:, None]
    return rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]


def voronoi_layout(rng, size, classes, seeds_range=(3, 6), warp=0.25):
    """(labels, regions), both [size, size]: a warped Voronoi partition into
    regions (the index of the nearest seed) and each region's class in
    [0, classes). Seeds draw their classes without repeats while classes
    remain, so most tiles show several classes."""
    n = int(rng.integers(seeds_range[0], seeds_range[1] + 1))
    points = rng.uniform(0, size, (n, 2))
    seed_classes = np.concatenate([rng.permutation(classes) for _ in range(n // classes + 1)])[:n]
    y, x = np.mgrid[0:size, 0:size].astype(float)
    y = y + warp * size * smooth_noise(rng, size, 3)
    x = x + warp * size * smooth_noise(rng, size, 3)
    distance = (y[None] - points[:, 0, None, None]) ** 2 + (x[None] - points[:, 1, None, None]) ** 2
    regions = np.argmin(distance, axis=0)
    return seed_classes[regions].astype(np.uint8), regions


def mirrored_window(rng, image, size):
    """A random size x size window of `image` (any size), reflected at its
    edges, turned by a random multiple of 90 degrees."""
    rows, cols = image.shape[:2]
    y = _mirror(rng.integers(0, 2 * rows) + np.arange(size), rows)
    x = _mirror(rng.integers(0, 2 * cols) + np.arange(size), cols)
    return np.rot90(image[y][:, x], int(rng.integers(0, 4)))


def _mirror(index, length):
    period = index % (2 * length)
    return np.where(period < length, period, 2 * length - 1 - period)


def fill(rng, labels, regions, pools):
    """An image [size, size, 3] whose every region, of class c, shows a window
    of one image of pools[c] (a list of [rows, cols, 3] arrays) chosen at
    random."""
    size = labels.shape[0]
    image = np.zeros((size, size, 3), np.uint8)
    for region in np.unique(regions):
        mask = regions == region
        pool = pools[int(labels[mask][0])]
        window = mirrored_window(rng, pool[int(rng.integers(0, len(pool)))], size)
        image[mask] = window[mask]
    return image
