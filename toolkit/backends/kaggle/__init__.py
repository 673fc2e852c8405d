"""The Kaggle backend: every call through the official kaggle 2.2.5 client (backend), its credentials as the
client finds them (credentials), its failures as typed errors (errors), its replies made plain (replies), and
`kpull data`, a competition downloaded with fastkaggle's setup_comp (download)."""
