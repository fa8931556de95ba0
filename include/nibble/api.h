// NIBBLE_API marks the symbols libnibble exports; everything else is hidden.
#pragma once

#if defined(NIBBLE_BUILDING)
#define NIBBLE_API __attribute__((visibility("default")))
#else
#define NIBBLE_API
#endif
