"""Reading and rendering photos: metadata from file headers (metadata, with the HEIF box parser in heif
and the `journal inspect --json` form in inspectjson), and the web renditions made at import (renditions).

Plain modules: they know files and Pillow, never a database session, a request or the command line.
"""
