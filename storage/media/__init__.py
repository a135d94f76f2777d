"""Media processing: formats, inspection, rendering and the rendition service."""
