//! Ward's command-line interface: operator, client and scanner commands.
