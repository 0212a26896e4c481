"""Golden values recorded from reference implementations (torch) so CI checks them without
installing those references."""
