"""Design-for-manufacturing checks, one module per concern; production.pipeline.validation
puts them together into a report.

    reading       bytes -> triangles: file size, format, triangle count, coordinates
    integrity     triangles -> a closed, outward-facing mesh, repaired where that is safe
    edges         the edges and which faces they join, from one sort, for every check
    intersections faces that cross each other
    rays          ray casting against a mesh (wall thickness, inside/outside tests)
    thickness     wall thickness and gap width at sampled surface points
    orientation   stable print orientations and the one we choose
    fdm           printability on one FDM machine
    machining     stock size and 2.5D / 2D shape for CNC milling and laser cutting
    sections      the part's cross-sections as the mill or the laser sees them (shapely)
    reach         where a round tool of a radius cannot reach in a section
    tool_access   CNC: plate, inside corners, slots, pocket depth, thin walls, holding
    sheet_cutting laser: sheet thickness, kerf, webs, holding

Pure: no Django, no database, no network. The only clock is the time budget's.
"""
