"""The benchmark sets: which real images fill which class in each domain.

Each set is a function (imagery directory, domain) -> (class names, one list
of images per class, the domain's sensor function or None). The README's
"Benchmarks on real imagery" section describes each shift.
"""
import numpy as np

import imagery

# GIMP's photographic patterns by material. Domain A's instances make the
# source, B's the target of materials_instances (the same material, other
# photographs: a content shift); materials_sensor uses both lists in
# both domains.
MATERIALS = {
    "stone": (["Stone/granite1", "Stone/rock", "Stone/cracked", "Stone/slate"],
              ["Stone/stone33", "Stone/ground1", "Stone/Moonfoot", "Stone/brick"]),
    "marble": (["Stone/marble1", "Stone/pink_marble"], ["Stone/marble2", "Stone/marble3"]),
    "wood": (["Wood/wood1", "Wood/wood2", "Wood/walnut", "Wood/pine", "Wood/bark"],
             ["Wood/wood3", "Wood/wood4", "Wood/wood5", "Wood/burlwood", "Wood/parque1"]),
    "water": (["Water/pool", "Water/rain"], ["Water/ice"]),
    "paper": (["Paper/paper"], ["Paper/crinklepaper"]),
    "hide": (["Animal/leather", "Fabric/burlap"], ["Animal/leopard"]),
}

# Land-cover classes of Blue Marble Next Generation, by lon/lat boxes
# (lon0, lon1, lat0, lat1) of regions that are that class: the labels come
# from geography, not from the pixels' colours.
EARTH_COVER = {
    "water": [(-150, -130, -20, 0), (70, 90, -30, -10)],
    "ice": [(-45, -35, 70, 78), (30, 60, -80, -72)],
    "desert": [(0, 15, 20, 28), (125, 135, -28, -22), (45, 55, 18, 24)],
    "tropical_forest": [(-70, -55, -8, 0), (15, 25, -3, 3), (112, 117, -2, 3)],
    "boreal_forest": [(90, 110, 58, 64), (-120, -100, 55, 60)],
    "grassland": [(60, 75, 47, 52), (-102, -96, 36, 44), (-64, -58, -38, -33)],
}


def _patterns(root, names):
    return [imagery.read_gimp_pattern(f"{root}/{imagery.GIMP_PATTERNS}/{n}.pat") for n in names]


def materials_instances(root, domain):
    side = 0 if domain == "source" else 1
    return list(MATERIALS), [_patterns(root, pair[side]) for pair in MATERIALS.values()], None


def materials_sensor(root, domain):
    # The target sensor: half the ground resolution (every texture appears
    # at half the scale, each pixel the mean of four), another spectral
    # response (bands mixed, which per-band normalisation cannot undo) and
    # more read noise.
    pools = [_patterns(root, a + b) for a, b in MATERIALS.values()]
    if domain == "source":
        return list(MATERIALS), pools, None
    return list(MATERIALS), [[halve_resolution(p) for p in pool] for pool in pools], other_sensor


def earth_seasons(root, domain):
    # Source: July; target: January, when the northern grassland and boreal
    # forest are under snow and the southern hemisphere is in summer.
    month = 7 if domain == "source" else 1
    globe = imagery.read_raster_rgb(f"{root}/{imagery.BLUE_MARBLE.format(month=month)}")
    pools = [[imagery.lonlat_window(globe, *box) for box in boxes] for boxes in EARTH_COVER.values()]
    return list(EARTH_COVER), pools, None


SETS = {f.__name__: f for f in (materials_instances, materials_sensor, earth_seasons)}


def halve_resolution(image):
    """Each 2 x 2 block of pixels averaged into one (an odd last row or
    column dropped)."""
    rows, cols = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    x = image[:rows, :cols].astype(np.float64)
    x = (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]) / 4
    return np.rint(x).astype(np.uint8)


# Rows: the target's red, green and blue as mixtures of the source's bands.
SPECTRAL_RESPONSE = np.array([[0.55, 0.35, 0.10],
                              [0.25, 0.50, 0.25],
                              [0.10, 0.45, 0.45]])


def other_sensor(rng, image):
    """The band mixing of SPECTRAL_RESPONSE and read noise (sigma 6 levels),
    applied to a filled tile (the labels do not move)."""
    x = image.astype(np.float64) @ SPECTRAL_RESPONSE.T
    x += rng.normal(0.0, 6.0, x.shape)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)
