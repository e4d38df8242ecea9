"""Build plates: copies of parts arranged on a machine's bed, one program per plate.

    values.py   what a plan says (plates of placements, copies left unplaced): light, JSON
    arrange.py  where each copy goes: footprints in, plates out (pure; shapely, numpy, scipy)
    meshes.py   footprints of meshes, and the meshes placed as a plate says (trimesh)

Only the worker imports arrange.py and meshes.py (the web process loads no geometry library);
values.py is safe anywhere.
"""
