// Translation unit for libnibble.so: its exported symbols (NIBBLE_API) come from nibble_api.
