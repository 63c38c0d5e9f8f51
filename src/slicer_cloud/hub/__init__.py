"""Many users: ``slicer-cloud hub`` runs JupyterHub, which spawns one ``slicer-cloud`` single-user
server (the portal, the viewer, the desktop and the API behind the hub's login) per user."""
