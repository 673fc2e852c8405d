"""The HTML report of a competition's runs (`outputs/report-<competition>.html`, written by kpull outputs): its
figures computed as plain data from the runs' stored outputs (figures), drawn with matplotlib (drawing), and
laid out as one self-contained page (page). Nothing here asks a backend: everything comes from outputs on disk."""
